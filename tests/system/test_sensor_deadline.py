"""``airflow dags test`` of a DAG whose deferrable backlog sensor sees no backlog: it ends, skipped, soon after
its timeout. Airflow's inline trigger runner ignores the defer timeout, so before the trigger had a deadline of
its own such a run never ended."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from airflow_env import AirflowEnv, make_airflow_env
from kafka_helpers import create_topic
from live import wait_for_task_state
from test_sensors_live import sensed_run

DAG_FILE = """
from datetime import datetime, timezone

from airflow_provider_logtap.compat import DAG
from airflow_provider_logtap.sensors.kafka import KafkaBacklogSensor

with DAG("logtap_idle_sensor", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False):
    KafkaBacklogSensor(
        task_id="wait_for_backlog",
        topic={topic!r},
        group_id="logtap-idle",
        min_records=1,
        deferrable=True,
        poll_interval=2,
        timeout=10,
        soft_fail=True,
    )
"""


def test_dags_test_of_an_idle_deferrable_sensor_ends_skipped_after_its_timeout(
    tmp_path: Path, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "idle_sensor.py").write_text(DAG_FILE.format(topic=topic_name))
    airflow = make_airflow_env(
        tmp_path / "home",
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint="http://127.0.0.1:9",  # unused: the DAG only talks to Kafka
        taps_file=tmp_path / "taps.yaml",
        dags_folder=dags,
    )
    airflow.fork_server = True  # the command's seconds are its own, not those of importing Airflow
    try:
        airflow.start_fork_server()  # it imports Airflow before the clock starts
        began = time.monotonic()
        run = airflow.run("dags", "test", "logtap_idle_sensor", timeout=240)  # hung forever before
        took = time.monotonic() - began
    finally:
        airflow.stop_fork_server()
    assert took < 180, took
    output = run.stdout + run.stderr
    assert "not met within the sensor's timeout (10s)" in output
    assert "Trigger cancelled due to timeout" not in output
    [run_id] = airflow.run_ids("logtap_idle_sensor")
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        states = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            ("logtap_idle_sensor", run_id),
        ).fetchall()
    assert states == [("wait_for_backlog", "skipped")]


def test_an_idle_deferred_sensor_in_a_running_airflow_skips_without_an_error_line(
    live_airflow: AirflowEnv, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    """A real triggerer: the trigger ends at its own deadline, before Airflow's defer timeout would cancel it
    (which the triggerer logs as "ERROR Trigger cancelled due to timeout"); the run's sensor is skipped, said
    at INFO in its task log."""
    dag_id, run = sensed_run(
        live_airflow, kafka_bootstrap, topic_name, bucket, "sensed_idle", wait_timeout_seconds=10
    )
    assert (
        wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", {"skipped", "failed"}) == "skipped"
    )
    logs = {p: p.read_text(errors="replace") for p in live_airflow.home.rglob("*.log") if p.is_file()}
    task_logs = [text for path, text in logs.items() if f"dag_id={dag_id}" in str(path)]
    assert any("not met within the sensor's timeout (10s)" in text for text in task_logs), list(logs)
    assert not [path for path, text in logs.items() if "Trigger cancelled due to timeout" in text]
    trigger_logs = [
        text for path, text in logs.items() if f"dag_id={dag_id}" in str(path) and ".trigger." in path.name
    ]
    assert trigger_logs and all("'status': 'timeout'" in text for text in trigger_logs)
    assert not [text for text in trigger_logs if '"level":"error"' in text]
