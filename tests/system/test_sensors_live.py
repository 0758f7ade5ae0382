"""The shipped tap DAGs' sensors in a running Airflow: deferred to a real triggerer (no worker slot while
waiting), rescheduled, or poking; released by new records; still released after the triggerer crashed and
another took over; skipped on timeout (soft fail)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from kafka_helpers import create_topic, produce
from live import trigger, wait_for_dag, wait_for_run, wait_for_task_state


@pytest.mark.parametrize("mode", ["deferrable", "reschedule", "poke"])
def test_the_backlog_sensor_waits_for_records_in_each_mode(
    mode: str, live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    name = f"sensed_{mode}"
    write_taps(
        live_airflow,
        {
            "name": name,
            "topic": topic_name,
            "schedule": None,
            "sensor_mode": mode,
            "wait_timeout_seconds": 300,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": mode},
        },
    )
    create_topic(kafka_bootstrap, topic_name)
    dag_id = f"logtap_{name}"
    wait_for_dag(live_airflow, dag_id)
    run = trigger(live_airflow, dag_id)
    waiting = {"deferrable": {"deferred"}, "reschedule": {"up_for_reschedule"}, "poke": {"running"}}[mode]
    assert wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", waiting) in waiting
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(25)])
    assert wait_for_run(live_airflow, dag_id, run) == "success"
    assert wait_for_task_state(live_airflow, dag_id, run, "commit", {"success"}) == "success"
    keys = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{mode}/")["KeyCount"]
    assert keys == 1


def test_a_sensor_timeout_skips_the_run(
    live_airflow: AirflowEnv, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    write_taps(
        live_airflow,
        {
            "name": "sensed_timeout",
            "topic": topic_name,
            "schedule": None,
            "wait_timeout_seconds": 10,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "timeout"},
        },
    )
    create_topic(kafka_bootstrap, topic_name)
    dag_id = "logtap_sensed_timeout"
    wait_for_dag(live_airflow, dag_id)
    run = trigger(live_airflow, dag_id)
    assert (
        wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", {"skipped", "failed"}) == "skipped"
    )
    assert (
        wait_for_task_state(live_airflow, dag_id, run, "plan", {"skipped", "failed", "success"}) == "skipped"
    )


def test_a_deferred_sensor_survives_a_triggerer_crash(
    live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    """The trigger is rebuilt from its serialized class path and kwargs by the next triggerer."""
    write_taps(
        live_airflow,
        {
            "name": "sensed_crash",
            "topic": topic_name,
            "schedule": None,
            "wait_timeout_seconds": 400,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "crash"},
        },
    )
    create_topic(kafka_bootstrap, topic_name)
    dag_id = "logtap_sensed_crash"
    wait_for_dag(live_airflow, dag_id)
    run = trigger(live_airflow, dag_id)
    assert wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", {"deferred"}) == "deferred"
    live_airflow.crash_component("triggerer")
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(7)])
    live_airflow.start_components("triggerer")
    assert wait_for_run(live_airflow, dag_id, run) == "success"
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="crash/")["KeyCount"] == 1
