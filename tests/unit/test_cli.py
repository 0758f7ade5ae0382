"""``logtap init-dags``: writes the shipped DAG files and starter taps file, never overwrites without --force."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_logtap.cli import dag_files, main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (ROOT / "dags").iterdir() if p.suffix in (".py", ".yaml"))


def test_the_dag_files_are_the_repos_dags() -> None:
    assert sorted(dag_files()) == SHIPPED
    assert {"logtap_taps.py", "logtap_tap_errors.py", "logtap_replay.py", "logtap_taps.yaml"} <= set(SHIPPED)


def test_init_dags_writes_the_files_and_says_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "airflow" / "dags"
    assert main(["init-dags", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == SHIPPED
    for name in SHIPPED:
        assert (folder / name).read_bytes() == (ROOT / "dags" / name).read_bytes()
    out = capsys.readouterr().out
    assert all(f"wrote {folder / name}" in out for name in SHIPPED)
    assert "LOGTAP_TAPS_FILE" in out and str(folder / "logtap_taps.yaml") in out
    # The connections and DAGs of the starter taps file, by name.
    for conn_id in ("kafka_default", "aws_default", "webhdfs_default", "opensearch_default"):
        assert f"airflow connections add {conn_id} --conn-type" in out
    assert "airflow dags unpause logtap_weblogs_s3_archive" in out
    assert "airflow dags list-import-errors" in out


def test_init_dags_refuses_to_overwrite_changed_files_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init-dags", str(tmp_path)]) == 0
    taps = tmp_path / "logtap_taps.yaml"
    taps.write_text("taps: []\n")
    (tmp_path / "logtap_replay.py").unlink()
    capsys.readouterr()

    assert main(["init-dags", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not overwriting logtap_taps.yaml" in err and "--force" in err
    assert taps.read_text() == "taps: []\n"
    assert not (tmp_path / "logtap_replay.py").exists()  # all or nothing

    assert main(["init-dags", str(tmp_path), "--force"]) == 0
    out = capsys.readouterr().out
    assert f"overwrote {taps}" in out and f"wrote {tmp_path / 'logtap_replay.py'}" in out
    assert f"unchanged {tmp_path / 'logtap_taps.py'}" in out
    assert taps.read_bytes() == (ROOT / "dags" / "logtap_taps.yaml").read_bytes()


def test_init_dags_into_a_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert main(["init-dags", str(tmp_path / "f")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "init-dags" in capsys.readouterr().err


def test_init_dags_imports_no_airflow(tmp_path: Path) -> None:
    code = (
        "import sys; from airflow_provider_logtap.cli import main; "
        "assert main(['init-dags', sys.argv[1]]) == 0; "
        "airflow = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]; "
        "assert not airflow, airflow"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60, capture_output=True)


def test_settings_reference_prints_the_generated_reference(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_logtap.cli import main
    from airflow_provider_logtap.reference import render

    assert main(["settings-reference"]) == 0
    out = capsys.readouterr().out
    assert out == render() and out.startswith("# logtap settings reference")
