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


def sensed_run(
    airflow: AirflowEnv, kafka_bootstrap: str, topic: str, bucket: str, name: str, **settings: Any
) -> tuple[str, str]:
    """Declare an S3 archive tap (prefix = ``name``) on a new empty topic, trigger its DAG; its id and the run's."""
    write_taps(
        airflow,
        {
            "name": name,
            "topic": topic,
            "schedule": None,
            **settings,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": name},
        },
    )
    create_topic(kafka_bootstrap, topic)
    dag_id = f"logtap_{name}"
    wait_for_dag(airflow, dag_id)
    return dag_id, trigger(airflow, dag_id)


@pytest.mark.parametrize("mode", ["deferrable", "reschedule", "poke"])
def test_the_backlog_sensor_waits_for_records_in_each_mode(
    mode: str, live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    name = f"sensed_{mode}"
    dag_id, run = sensed_run(
        live_airflow, kafka_bootstrap, topic_name, bucket, name, sensor_mode=mode, wait_timeout_seconds=300
    )
    waiting = {"deferrable": {"deferred"}, "reschedule": {"up_for_reschedule"}, "poke": {"running"}}[mode]
    assert wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", waiting) in waiting
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(25)])
    assert wait_for_run(live_airflow, dag_id, run) == "success"
    assert wait_for_task_state(live_airflow, dag_id, run, "commit", {"success"}) == "success"
    keys = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/")["KeyCount"]
    assert keys == 1


def test_a_sensor_timeout_skips_the_run(
    live_airflow: AirflowEnv, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    dag_id, run = sensed_run(
        live_airflow, kafka_bootstrap, topic_name, bucket, "sensed_timeout", wait_timeout_seconds=10
    )
    assert (
        wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", {"skipped", "failed"}) == "skipped"
    )
    assert (
        wait_for_task_state(live_airflow, dag_id, run, "plan", {"skipped", "failed", "success"}) == "skipped"
    )


@pytest.mark.airflow2
def test_a_deferred_sensor_survives_a_triggerer_crash(
    live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    """The trigger is rebuilt from its serialized class path and kwargs by the next triggerer."""
    dag_id, run = sensed_run(
        live_airflow, kafka_bootstrap, topic_name, bucket, "sensed_crash", wait_timeout_seconds=400
    )
    assert wait_for_task_state(live_airflow, dag_id, run, "wait_for_backlog", {"deferred"}) == "deferred"
    live_airflow.crash_component("triggerer")
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(7)])
    live_airflow.start_components("triggerer")
    assert wait_for_run(live_airflow, dag_id, run) == "success"
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="sensed_crash/")["KeyCount"] == 1
