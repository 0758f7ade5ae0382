"""What a ``pip install`` user gets: the wheel built from this tree (through its sdist, as ``pip install`` from a
source release builds it), installed with its ``hdfs`` and ``search`` extras into a fresh virtualenv, with the
lock's versions and nothing of the repo on the path: once into an Airflow 3 environment (``uv.lock``) and once
into an Airflow 2.11 one (``dev/airflow2/uv.lock``, whose opensearch provider is the newest that supports 2.11).
Its ``logtap init-dags`` writes DAG files that a fresh
Airflow (SQLite) lists with no import errors, its provider is registered, and the wheel carries py.typed,
LICENSE and the DAG files.

The install takes seconds on a warm uv cache (dev/install.sh's ``uv sync`` fills it with the same versions); a
cold cache downloads Airflow and builds gssapi from source (minutes; ``libkrb5-dev``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

import pytest
import tomllib
import yaml
from airflow_env import cli_json

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DAG_FILES = sorted(p.name for p in (ROOT / "dags").iterdir() if p.suffix in (".py", ".yaml"))

pytestmark = pytest.mark.xdist_group("wheel_install")  # one build and install for the whole module


@dataclass
class Installed:
    work: Path
    wheel: Path
    venv: Path
    env: dict[str, str]
    version: str  # the Airflow major version installed with it
    seconds: dict[str, float] = field(default_factory=dict)

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, step: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A command of the user's virtualenv, from a directory outside the repo."""
        started = time.monotonic()
        proc = subprocess.run(
            args, env=self.env, cwd=self.work, capture_output=True, text=True, timeout=timeout
        )
        if step:
            self.seconds[step] = round(time.monotonic() - started, 1)
        with (self.work / "commands.log").open("a") as log:
            log.write(f"\n$ {' '.join(args)}  (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}\n")
        assert proc.returncode == 0, (
            f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
        return proc


# The lock each install takes its versions from, by Airflow major version.
LOCKS = {"3": ROOT, "2": ROOT / "dev" / "airflow2"}


def _base_env() -> dict[str, str]:
    """This process's environment without anything of Airflow, logtap, Python paths or a virtualenv."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "LOGTAP", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))
    }


def _uv(seconds: dict[str, float], step: str, cwd: Path, *args: str) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build and install the wheel (dev/install.sh installs it)"
    # The kernel's crates, compiled once for the repo's own install (dev/install.sh), serve the wheel's build too.
    env = {**_base_env(), "CARGO_TARGET_DIR": str(ROOT / "native" / "target")}
    started = time.monotonic()
    proc = subprocess.run([uv, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds[step] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, f"uv {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The wheel, built once for both installs, and the seconds its build took."""
    work = tmp_path_factory.mktemp("wheel-build")
    seconds: dict[str, float] = {}
    # `uv build` without --wheel builds the sdist, then the wheel from the unpacked sdist.
    _uv(seconds, "build", work, "build", "--quiet", "--out-dir", str(work / "dist"), str(ROOT))
    [wheel] = (work / "dist").glob("*.whl")
    return wheel, seconds["build"]


@pytest.fixture(scope="module", params=sorted(LOCKS, reverse=True), ids=lambda v: f"airflow{v}")
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, built: tuple[Path, float]
) -> Iterator[Installed]:
    version = str(request.param)
    work = tmp_path_factory.mktemp("wheel-install")
    base_env = _base_env()
    venv = work / "venv"
    env = {
        **base_env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{base_env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONWARNINGS": "ignore",
    }
    wheel, build_seconds = built
    box = Installed(work=work, wheel=wheel, venv=venv, env=env, version=version)
    box.seconds["build (once for both)"] = build_seconds

    def uv_run(step: str, *args: str) -> None:
        _uv(box.seconds, step, work, *args)

    constraints = work / "constraints.txt"
    uv_run(
        "export",
        "export",
        "--quiet",
        "--frozen",
        "--no-dev",
        "--all-extras",
        "--no-hashes",
        "--no-emit-project",
        "--no-emit-package",
        "airflow-provider-logtap",  # the Airflow 2.11 environment's own dependency on this tree
        "--project",
        str(LOCKS[version]),
        "-o",
        str(constraints),
    )
    uv_run("venv", "venv", "--quiet", "--python", sys.executable, str(venv))
    uv_run(
        "install",
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",  # as pip does
        "--python",
        str(venv / "bin" / "python"),
        f"{box.wheel}[hdfs,search]",
        "-c",
        str(constraints),
    )
    yield box
    print(f"\nwheel install test, seconds per step: {box.seconds}")
    (work / "seconds.json").write_text(json.dumps(box.seconds))


def test_the_wheel_carries_the_dags_license_types_and_metadata(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        info = f"airflow_provider_logtap-{PYPROJECT['version']}.dist-info"
        assert "airflow_provider_logtap/py.typed" in names
        assert "airflow_provider_logtap/cli.py" in names
        assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("airflow_provider_logtap/_dags/"))
        assert shipped == DAG_FILES
        for name in DAG_FILES:
            assert wheel.read(f"airflow_provider_logtap/_dags/{name}") == (ROOT / "dags" / name).read_bytes()
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        # The compiled kernel (native/), one module for every CPython >= 3.10 of the platform, and its types.
        kernel = {"airflow_provider_logtap/_kernel.abi3.so", "airflow_provider_logtap/_kernel.pyi"}
        assert kernel <= set(names)
        assert "-cp310-abi3-" in installed.wheel.name, installed.wheel.name
        meta = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert meta["Version"] == PYPROJECT["version"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("Classifier") == PYPROJECT["classifiers"]
    assert dict(u.split(", ", 1) for u in meta.get_all("Project-URL")) == PYPROJECT["urls"]
    assert "logtap = airflow_provider_logtap.cli:main" in entry_points
    assert "provider_info = airflow_provider_logtap:get_provider_info" in entry_points


def test_the_installed_package_imports_no_airflow_and_is_typed(installed: Installed) -> None:
    code = (
        "import sys, airflow_provider_logtap as p; print(p.__file__); "
        "print([m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')])"
    )
    where, airflow = installed.run(installed.bin("python"), "-c", code).stdout.splitlines()
    assert Path(where).is_relative_to(installed.venv), where  # the wheel's copy, not the repo's
    assert airflow == "[]"
    # A user's mypy reads the package's annotations (without py.typed it would skip the package, "missing library
    # stubs or py.typed marker"): here it finds the wrong type of a use.
    (installed.work / "use.py").write_text(
        "from airflow_provider_logtap import get_provider_info\n\ninfo: int = get_provider_info()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", installed.bin("python"), "use.py"],
        cwd=installed.work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'expression has type "dict[str, Any]", variable has type "int"' in proc.stdout, proc.stdout


def test_init_dags_gives_airflow_the_dags_of_the_starter_taps_file(installed: Installed) -> None:
    dags = installed.work / "dags"
    out = installed.run(installed.bin("logtap"), "init-dags", str(dags), step="init-dags").stdout
    assert sorted(p.name for p in dags.iterdir()) == DAG_FILES
    assert "Next:" in out and "airflow dags unpause logtap_" in out
    taps = yaml.safe_load((dags / "logtap_taps.yaml").read_text())["taps"]
    reconciles = {f"logtap_reconcile_{t['topic']}" for t in taps}
    expected = sorted(["logtap_replay", *(f"logtap_{t['name']}" for t in taps), *reconciles])

    providers = cli_json(installed.run(installed.bin("airflow"), "providers", "list", "-o", "json").stdout)
    [logtap] = [p for p in providers if p["package_name"] == "airflow-provider-logtap"]
    assert logtap["version"] == PYPROJECT["version"]

    installed.run(installed.bin("airflow"), "db", "migrate", step="db migrate")
    local = ("--local",) if installed.version == "3" else ()  # Airflow 2 lists the DAG files' DAGs anyway
    listed = installed.run(
        installed.bin("airflow"), "dags", "list", *local, "-o", "json", step="dags list"
    ).stdout
    errors = installed.run(installed.bin("airflow"), "dags", "list-import-errors", *local, "-o", "json")
    assert cli_json(errors.stdout) == []
    dag_list = cli_json(listed)
    assert sorted(d["dag_id"] for d in dag_list) == expected
    assert {Path(d["fileloc"]).parent for d in dag_list} == {dags}
