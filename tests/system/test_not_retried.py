"""A failure no retry can fix fails the task at once, whatever the tap's retries (a real ``airflow dags test``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from airflow_env import AirflowEnv
from conftest import write_taps


def test_a_wrong_date_format_fails_the_load_without_retries(
    airflow: AirflowEnv, kafka_bootstrap: str, hdfs_client: Any, hdfs_base: str, topic_name: str
) -> None:
    """Apache lines read as ISO-8601: every line is bad, the bad-line ratio is exceeded, nothing is written,
    and the load is tried once (not ``retries + 1`` times, re-reading the range each time)."""
    from devstack import loggen

    write_taps(
        airflow,
        {
            "name": "sys_wrong_format",
            "topic": topic_name,
            "retries": 2,
            "retry_delay_seconds": 0,
            "target": {"type": "hdfs_event_time", "base_path": f"{hdfs_base}/t", "date_format": "iso8601"},
        },
    )
    loggen.create_topic(kafka_bootstrap, topic_name, 1)
    loggen.produce(kafka_bootstrap, topic_name, loggen.generate(200, seed=5, days=0.1))
    result = airflow.run("dags", "test", "logtap_sys_wrong_format", check=False)
    with sqlite3.connect(Path(airflow.home) / "airflow.db") as db:
        rows = db.execute(
            "SELECT state, try_number FROM task_instance WHERE dag_id = ? AND task_id = 'load'",
            ("logtap_sys_wrong_format",),
        ).fetchall()
    assert rows == [("failed", 1)], (rows, result.stdout[-3000:], result.stderr[-3000:])
    output = result.stdout + result.stderr
    assert "not retried, a retry cannot fix this" in output
    assert "BadLineRatioError" in output
    base = f"{hdfs_base}/t"
    exists = hdfs_client.status(base, strict=False) is not None
    written = [name for _root, _dirs, files in hdfs_client.walk(base) for name in files] if exists else []
    assert written == []
