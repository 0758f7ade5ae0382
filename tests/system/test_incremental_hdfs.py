"""The shipped DAG with HDFS targets (raw and by event time), run by real ``airflow`` commands."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from hdfs_helpers import hdfs_tree as hdfs_files

PARTITIONS = 3


@pytest.mark.airflow2
def test_hdfs_raw_and_event_time_taps_exactly_once(
    airflow: AirflowEnv, kafka_bootstrap: str, hdfs_client: Any, hdfs_base: str, topic_name: str
) -> None:
    from devstack import loggen

    write_taps(
        airflow,
        {
            "name": "sys_raw",
            "topic": topic_name,
            "target": {"type": "hdfs_raw", "base_path": f"{hdfs_base}/raw"},
        },
        {
            "name": "sys_by_time",
            "topic": topic_name,
            "target": {"type": "hdfs_event_time", "base_path": f"{hdfs_base}/by_time"},
        },
    )
    airflow.register_dags()  # Airflow 2's `dags test` records dataset events only for datasets the DB knows
    loggen.create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent: list[loggen.Sent] = []

    def produce(count: int, seed: int) -> None:
        sent.extend(loggen.produce(kafka_bootstrap, topic_name, loggen.generate(count, seed=seed, days=1.5)))

    def run_both(**env: str) -> None:
        for dag_id in ("logtap_sys_raw", "logtap_sys_by_time"):
            airflow.run("dags", "test", dag_id, extra_env=env, check=not env)

    produce(1500, seed=21)
    run_both()
    produce(1200, seed=22)
    run_both(LOGTAP_TEST_FAIL_TASK="commit")  # written, never committed
    produce(800, seed=23)
    run_both()

    files = hdfs_files(hdfs_client, hdfs_base)
    assert not [p for p in files if p.rsplit("/", 1)[1].startswith(".")], "a temporary file is visible"
    # Raw: per partition, the files in name order hold every record exactly once, in offset order.
    for p in range(PARTITIONS):
        prefix = f"raw/{topic_name}/partition={p}/"
        lines = [
            line for path in sorted(files) if path.startswith(prefix) for line in files[path].splitlines()
        ]
        assert lines == [s.line for s in sorted(sent, key=lambda s: s.offset) if s.partition == p]
    # By event time: each dt/hour holds exactly the lines of that hour (an independent count from the
    # generator's own record of event times), nothing twice, no dead letters.
    expected = Counter((s.event_utc.strftime("dt=%Y-%m-%d/hour=%H"), s.line) for s in sent)
    got: Counter[tuple[str, bytes]] = Counter()
    for path, data in files.items():
        if path.startswith(f"by_time/{topic_name}/dt="):
            hour = path[len(f"by_time/{topic_name}/") :].rsplit("/", 1)[0]
            got.update((hour, line) for line in data.splitlines())
    assert got == expected
    assert not [p for p in files if "_dead_letter" in p]
    # Airflow recorded asset events carrying the event-time partitions that changed: as partition keys on
    # Airflow 3, in the dataset events' extra on Airflow 2 (datasets have no partition keys there).
    with sqlite3.connect(Path(airflow.home) / "airflow.db") as db:
        if airflow.version == "2":
            keys = {
                key
                for (extra,) in db.execute("SELECT extra FROM dataset_event")
                for key in json.loads(extra).get("partitions", ())
            }
        else:
            keys = {
                row[0]
                for row in db.execute("SELECT partition_key FROM asset_event WHERE partition_key IS NOT NULL")
            }
    assert {hour for hour, _ in expected} <= keys
