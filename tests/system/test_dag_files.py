"""Every shipped DAG file imports without errors and builds the DAGs its taps declare."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def dagbag(dags: Path = ROOT / "dags"):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dags))


def test_shipped_dags_import_cleanly() -> None:
    bag = dagbag()
    assert bag.import_errors == {}
    taps = yaml.safe_load((ROOT / "dags" / "logtap_taps.yaml").read_text())["taps"]
    assert sorted(bag.dag_ids) == sorted(f"logtap_{t['name']}" for t in taps)
    for dag_id in bag.dag_ids:
        dag = bag.dags[dag_id]
        assert {t.task_id for t in dag.tasks} == {"plan", "load", "commit"}
        assert dag.max_active_runs == 1


def test_a_bad_taps_file_names_tap_field_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taps = tmp_path / "taps.yaml"
    taps.write_text(
        yaml.safe_dump({"taps": [{"name": "broken", "topic": "weblogs", "target": {"type": "s3_archive"}}]})
    )
    monkeypatch.setenv("LOGTAP_TAPS_FILE", str(taps))
    errors = dagbag().import_errors
    [message] = errors.values()
    assert "tap 'broken': field 'target.bucket' is required. Fix: add target.bucket to the tap" in message
