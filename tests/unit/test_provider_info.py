from __future__ import annotations

import hashlib
import importlib
import re
from importlib.metadata import entry_points, metadata
from pathlib import Path

import tomllib

import airflow_provider_logtap
from airflow_provider_logtap import get_provider_info


def test_entry_point_is_registered() -> None:
    eps = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_logtap")
    ]
    assert [ep.load() for ep in eps] == [get_provider_info]


def test_provider_info_names_importable_modules() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-logtap"
    assert info["versions"] == [airflow_provider_logtap.__version__]
    modules = [m for kind in ("hooks", "operators") for entry in info[kind] for m in entry["python-modules"]]
    assert modules
    for module in modules:
        importlib.import_module(module)


def test_core_imports_neither_airflow_nor_clients() -> None:
    import ast
    from pathlib import Path

    core = Path(airflow_provider_logtap.__file__).parent / "core"
    for path in core.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        forbidden = {n for n in names if n.split(".")[0] in {"airflow", "confluent_kafka", "boto3", "hdfs"}}
        assert not forbidden, f"{path.name} imports {forbidden}"


ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_version_and_urls_are_pyprojects() -> None:
    info = get_provider_info()
    assert airflow_provider_logtap.__version__ == PYPROJECT["version"]
    urls = PYPROJECT["urls"]
    assert urls["Documentation"] == airflow_provider_logtap.DOCUMENTATION_URL
    assert {i["external-doc-url"] for i in info["integrations"]} == {urls["Documentation"]}
    assert all(url.startswith("https://") for url in urls.values())
    # The installed distribution (editable here) says the same.
    installed = metadata("airflow-provider-logtap")
    assert installed["Version"] == PYPROJECT["version"]
    assert dict(u.split(", ", 1) for u in installed.get_all("Project-URL") or []) == urls


def test_classifiers_match_the_supported_pythons() -> None:
    classifiers = PYPROJECT["classifiers"]
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression only
    assert PYPROJECT["license"] == "Apache-2.0"
    pythons = sorted(c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*:: Python :: 3\.\d+", c))
    assert PYPROJECT["requires-python"] == f">={pythons[0]},<3.{int(pythons[-1].split('.')[1]) + 1}"


def test_the_logtap_command_is_an_entry_point() -> None:
    assert PYPROJECT["scripts"] == {"logtap": "airflow_provider_logtap.cli:main"}
    [ep] = [ep for ep in entry_points(group="console_scripts") if ep.name == "logtap"]
    assert ep.value == "airflow_provider_logtap.cli:main"


def test_license_is_the_full_apache_2_text_and_the_package_is_typed() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    # The SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt (Debian's common-licenses/Apache-2.0).
    assert (
        hashlib.sha256(text).hexdigest() == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    )
    assert PYPROJECT["license-files"] == ["LICENSE"]
    assert (Path(airflow_provider_logtap.__file__).parent / "py.typed").is_file()
