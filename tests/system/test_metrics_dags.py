"""logtap's metrics from a real DAG run, as a StatsD server receives them: ``airflow dags test`` of an S3 tap with
Airflow's StatsD backend (``[metrics] statsd_on``) pointed at a UDP socket of the test, on each Airflow version."""

from __future__ import annotations

import re
import socket

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from kafka_helpers import create_topic, produce
from statsd_helpers import received

pytest.importorskip("statsd", reason="Airflow's StatsD backend needs the statsd package")


@pytest.mark.airflow2
def test_a_dag_run_sends_the_load_counters_to_statsd(
    airflow: AirflowEnv, statsd_server: socket.socket, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    write_taps(
        airflow,
        {
            "name": "sys_metrics",
            "topic": topic_name,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "metrics"},
        },
    )
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(30)])
    produce(kafka_bootstrap, topic_name, 1, [b"line %d" % i for i in range(12)])
    statsd = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_server.getsockname()[1]),
    }
    airflow.run("dags", "test", "logtap_sys_metrics", extra_env=statsd)
    topic = re.sub(r"[^A-Za-z0-9_-]", "_", topic_name)
    counts: dict[str, int] = {}
    for line in received(statsd_server):
        name, value = line.split(":", 1)
        counts[name] = counts.get(name, 0) + int(value.split("|", 1)[0])
    assert counts.get(f"airflow.logtap.records.{topic}.0.s3") == 30, counts
    assert counts.get(f"airflow.logtap.records.{topic}.1.s3") == 12, counts
    assert counts.get(f"airflow.logtap.written.{topic}.0.s3") == 30, counts
