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
    reconciles = sorted({f"logtap_reconcile_{t['topic']}" for t in taps})
    assert sorted(bag.dag_ids) == sorted(
        [*(f"logtap_{t['name']}" for t in taps), "logtap_replay", *reconciles]
    )
    for dag_id in reconciles:  # one daily check per topic, of every tap of it
        assert {t.task_id for t in bag.dags[dag_id].tasks} == {"reconcile"}
    replay = bag.dags["logtap_replay"]
    assert {t.task_id for t in replay.tasks} == {"plan", "load", "finish"}
    assert replay.params["tap"] == taps[0]["name"]
    # The form as it opens is valid and safe: a dry run, no name to share with another replay (the UI takes an
    # empty string for a missing value, so no default may be one).
    defaults = replay.params.dump()
    assert defaults["dry_run"] is True and defaults["target_name"] is None
    assert not [name for name, param in defaults.items() if param == ""]
    replay.params.validate()
    # Airflow's form marks a field required when its schema's type has no "null" (airflow/ui: a type list
    # without "null"): only the fields that always have a value are.
    required = {
        name
        for name, param in replay.params.items()
        if (kind := param.schema.get("type")) and (not isinstance(kind, list) or "null" not in kind)
    }
    assert required == {"tap", "from", "to", "source", "dry_run"}
    for dag_id in set(bag.dag_ids) - {"logtap_replay", *reconciles}:
        dag = bag.dags[dag_id]
        assert {t.task_id for t in dag.tasks} == {
            "wait_for_backlog",
            "retention_risk",
            "plan",
            "load",
            "commit",
        }
        assert dag.get_task("wait_for_backlog").deferrable
        # The retention check runs beside the load once there is a backlog, gating nothing.
        assert dag.get_task("retention_risk").upstream_task_ids == {"wait_for_backlog"}
        assert dag.get_task("retention_risk").downstream_task_ids == set()
        assert dag.get_task("plan").upstream_task_ids == {"wait_for_backlog"}
        assert dag.max_active_runs == 1


def test_a_bad_tap_is_an_import_error_and_the_others_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taps = tmp_path / "taps.yaml"
    good = {"name": "good", "topic": "weblogs", "target": {"type": "s3_archive", "bucket": "b"}}
    broken = {"name": "broken", "topic": "weblogs", "target": {"type": "s3_archive"}}
    typo = {
        "name": "typo",
        "topic": "weblogs",
        "mode": "intervall",
        "target": {"type": "hdfs_raw", "base_path": "/x"},
    }
    cron = {**good, "name": "cron", "schedule": "0 25 * * *"}  # once made logtap_taps.py an import error
    taps.write_text(yaml.safe_dump({"taps": [good, broken, typo, cron]}))
    monkeypatch.setenv("LOGTAP_TAPS_FILE", str(taps))
    bag = dagbag()
    assert sorted(bag.dag_ids) == ["logtap_good", "logtap_reconcile_weblogs", "logtap_replay"]
    [(path, message)] = bag.import_errors.items()
    assert path.endswith("logtap_tap_errors.py")
    assert "tap 'broken': field 'target.bucket' is required. Fix: add target.bucket: <a string>" in message
    assert "tap 'typo': field 'mode' must be one of" in message
    assert "tap 'cron': field 'schedule' is not a schedule Airflow accepts" in message


def test_interval_mode_taps_get_a_data_interval_timetable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taps = tmp_path / "taps.yaml"
    tap = {
        "name": "hourly",
        "topic": "weblogs",
        "mode": "interval",
        "schedule": "@hourly",
        "target": {"type": "hdfs_event_time", "base_path": "/data/x"},
    }
    taps.write_text(yaml.safe_dump({"taps": [tap]}))
    monkeypatch.setenv("LOGTAP_TAPS_FILE", str(taps))
    bag = dagbag()
    assert bag.import_errors == {}
    dag = bag.dags["logtap_hourly"]
    assert {t.task_id for t in dag.tasks} == {"plan", "load"}  # the plan waits for completeness itself
    assert dag.get_task("plan").wait_for_completeness and not dag.get_task("plan").upstream_task_ids
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
