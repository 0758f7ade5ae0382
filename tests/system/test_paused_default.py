"""The README's backfill on an Airflow left at its default ``dags_are_paused_at_creation = True``.

Every other live test runs an Airflow whose new DAGs start unpaused. Here a new tap's DAG starts paused, as
on a fresh deployment: ``airflow backfill create`` is accepted (exit 0) and creates the backfill and its
runs, but they stay queued while the DAG is paused; ``airflow dags unpause`` lets the scheduler run them,
and they load exactly the records of their days.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from live import backfill, lines_under, running_airflow, runs, wait_for_backfills, wait_for_dag

# Long enough for many scheduler loops (heartbeat 1s) to have had the chance to start a queued run.
PAUSED_WATCH_SECONDS = 20


@pytest.fixture(scope="module")
def default_airflow(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, s3_endpoint: str
) -> Iterator[AirflowEnv]:
    """A running Airflow (PostgreSQL, LocalExecutor, all components) with Airflow's default of new DAGs
    paused at creation."""
    with running_airflow(
        tmp_path_factory.mktemp("paused-airflow"),
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
        dags_paused_at_creation=True,
    ) as airflow:
        assert "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION" not in airflow.env
        yield airflow


def test_a_backfill_waits_while_the_new_dag_is_paused_and_loads_once_unpaused(
    default_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    from kafka_helpers import create_topic, produce

    airflow = default_airflow
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    stamps = [today - 4 * day + timedelta(hours=4 * i) for i in range(18)]  # 3 days, every 4 hours
    values = [f"line {s.isoformat()}".encode() for s in stamps]
    produce(kafka_bootstrap, topic_name, 0, values, [int(s.timestamp() * 1000) for s in stamps])
    expected = {0: [v for v, s in zip(values, stamps, strict=True) if today - 4 * day <= s < today - 2 * day]}
    assert len(expected[0]) == 12
    write_taps(
        airflow,
        {
            "name": "paused_daily",
            "topic": topic_name,
            "mode": "interval",
            "schedule": "@daily",
            "start_date": (today - 10 * day).isoformat(),
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "paused"},
        },
    )
    dag_id = "logtap_paused_daily"
    wait_for_dag(airflow, dag_id)
    assert airflow.api("GET", f"/dags/{dag_id}")["is_paused"] is True  # Airflow's default for a new DAG

    # The README's command on the paused DAG: accepted, and the backfill's runs are created...
    created = backfill(airflow, dag_id, today - 4 * day, today - 3 * day)
    assert created.returncode == 0
    (created_backfill,) = airflow.api("GET", f"/backfills?dag_id={dag_id}")["backfills"]
    assert created_backfill["completed_at"] is None and created_backfill["is_paused"] is False
    # ...but none of them starts while the DAG is paused: they stay queued and nothing is loaded.
    time.sleep(PAUSED_WATCH_SECONDS)
    waiting = runs(airflow, dag_id)
    assert [(r["run_type"], r["state"]) for r in waiting] == [("backfill", "queued")] * 2
    assert lines_under(s3_client, bucket, f"paused/{topic_name}/") == {}
    assert airflow.api("GET", f"/backfills/{created_backfill['id']}")["completed_at"] is None

    airflow.run("dags", "unpause", dag_id)
    wait_for_backfills(airflow, dag_id)
    done = [r for r in runs(airflow, dag_id) if r["run_type"] == "backfill"]
    assert [r["state"] for r in done] == ["success"] * 2
    # The very runs that had waited.
    assert [r["dag_run_id"] for r in done] == [r["dag_run_id"] for r in waiting]
    loaded = lines_under(s3_client, bucket, f"paused/{topic_name}/")
    everything = [(r["run_type"], r["data_interval_start"], r["state"]) for r in runs(airflow, dag_id)]
    assert loaded == expected, (  # their two days, once each
        f"extra {sorted(set(loaded.get(0, [])) - set(expected[0]))}, "
        f"missing {sorted(set(expected[0]) - set(loaded.get(0, [])))}, runs {everything}"
    )
