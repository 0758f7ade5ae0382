"""logtap's metrics as a StatsD server receives them: a UDP socket, and Airflow's own StatsD backend pointed
at it through ``[metrics]`` settings in a separate process (``Stats`` set up as the task runner does)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kafka_helpers import create_topic, produce
from statsd_helpers import received

# Airflow's StatsD backend needs the statsd client (apache-airflow's "statsd" extra); without it Airflow falls
# back to discarding every metric.
pytest.importorskip("statsd", reason="Airflow's StatsD backend needs the statsd package (dev dependency)")

# In the child: Stats initialised as airflow.sdk.execution_time.task_runner.main does, then the real backlog
# check (sensors/checks.py, against Kafka) and the counters of a load with operators/load.py's tags.
CHILD = """
import sys

from airflow.sdk.configuration import conf
from airflow.sdk.observability import stats
from airflow.sdk.observability.metrics import stats_utils

stats.initialize(
    factory=stats_utils.get_stats_factory(),
    export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
)

from airflow_provider_logtap.metrics import incr
from airflow_provider_logtap.sensors.checks import check

topic, group = sys.argv[1], sys.argv[2]
check("backlog", {"topic": topic, "group_id": group, "min_records": 1})
for sink in ("s3", "search"):
    tags = {"topic": topic, "partition": 1, "sink": sink}
    incr("records", 40 if sink == "s3" else 41, **tags)
    incr("written", 39, **tags)
    incr("dead_letters", 0, **tags)  # zero: not sent
"""


def run_child(
    tmp_path: Path, sock: socket.socket, kafka_bootstrap: str, topic: str, group: str, **metrics: str
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}
        ),
        **{f"AIRFLOW__METRICS__{k.upper()}": v for k, v in metrics.items()},
    }
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    proc = subprocess.run(
        [sys.executable, str(script), topic, group], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_plain_statsd_gets_one_name_per_partition_total_tap_and_sink(
    tmp_path: Path, statsd_server: socket.socket, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"a"] * 3)
    produce(kafka_bootstrap, topic_name, 1, [b"b"] * 5)
    group = "logtap-web.logs:s3"  # '.' and ':' would break a StatsD name
    run_child(tmp_path, statsd_server, kafka_bootstrap, topic_name, group)
    lines = received(statsd_server)
    g, t = "logtap-web_logs_s3", topic_name  # topic_name is weblogs-<hex>: already StatsD-safe
    assert sorted(lines) == sorted(
        [
            f"airflow.logtap.lag.{g}.{t}.0:3|g",
            f"airflow.logtap.lag.{g}.{t}.1:5|g",
            f"airflow.logtap.lag.{g}.{t}.all:8|g",
            f"airflow.logtap.records.{t}.1.s3:40|c",
            f"airflow.logtap.written.{t}.1.s3:39|c",
            f"airflow.logtap.records.{t}.1.search:41|c",
            f"airflow.logtap.written.{t}.1.search:39|c",
        ]
    )


def test_statsd_with_influxdb_tags_keeps_the_bare_name_and_the_tags(
    tmp_path: Path, statsd_server: socket.socket, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    produce(kafka_bootstrap, topic_name, 0, [b"a"] * 2)
    run_child(
        tmp_path, statsd_server, kafka_bootstrap, topic_name, "logtap-x", statsd_influxdb_enabled="True"
    )
    lines = received(statsd_server)
    assert f"airflow.logtap.lag,topic={topic_name},partition=0,group=logtap-x:2|g" in lines
    assert f"airflow.logtap.lag,topic={topic_name},group=logtap-x:2|g" in lines
    assert f"airflow.logtap.records,topic={topic_name},partition=1,sink=s3:40|c" in lines
