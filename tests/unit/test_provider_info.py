from __future__ import annotations

import importlib
from importlib.metadata import entry_points

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
