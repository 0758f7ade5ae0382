"""The daily reconcile DAG of a topic through real Airflow (``airflow dags test``): two taps (S3 archive, HDFS raw)
load a topic through their own DAGs; the reconcile DAG then succeeds and says nothing is missing; an archive
object and a raw file are deleted; the reconcile run fails, not retried, naming both ranges; triggered with
``repair`` it replays them (the raw file from the archive, the archive's object from Kafka) and succeeds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from kafka_helpers import create_topic, produce

from airflow_provider_logtap.holdings import hdfs_raw_spans, s3_spans

PARTITIONS = 2
LINES = 300  # per partition
PER_FILE = 50


@pytest.mark.airflow2
def test_the_reconcile_dag_reports_fails_on_a_gap_and_repairs_it(
    airflow: AirflowEnv,
    kafka_bootstrap: str,
    bucket: str,
    s3_client: Any,
    hdfs_client: Any,
    hdfs_base: str,
    topic_name: str,
) -> None:
    from devstack.loggen import generate

    base = f"{hdfs_base}/raw"
    write_taps(
        airflow,
        {
            "name": "sys_rc_vault",
            "topic": topic_name,
            "target": {
                "type": "s3_archive",
                "bucket": bucket,
                "prefix": "raw",
                "max_records_per_object": PER_FILE,
            },
        },
        {
            "name": "sys_rc_raw",
            "topic": topic_name,
            "target": {"type": "hdfs_raw", "base_path": base, "max_records_per_file": PER_FILE},
        },
    )
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    lines = [g.line for g in generate(LINES * PARTITIONS, seed=41)]
    for p in range(PARTITIONS):
        produce(kafka_bootstrap, topic_name, p, lines[p::PARTITIONS])
    airflow.run("dags", "test", "logtap_sys_rc_vault")
    airflow.run("dags", "test", "logtap_sys_rc_raw")
    dag_id = f"logtap_reconcile_{topic_name}"

    healthy = airflow.run("dags", "test", dag_id)
    out = healthy.stdout + healthy.stderr
    assert "reconcile: 2 targets checked, nothing missing, nothing doubled" in out

    s3_client.delete_object(
        Bucket=bucket, Key=f"raw/{topic_name}/partition=1/{topic_name}+1+{100:020d}.log.gz"
    )
    hdfs_client.delete(f"{base}/{topic_name}/partition=0/{topic_name}+0+{250:020d}.log")
    failed = airflow.run("dags", "test", dag_id, check=False)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert f"{topic_name}[1]: MISSING: [100, 150) (50 offsets)" in out
    assert f"{topic_name}[0]: MISSING: [250, 300) (50 offsets)" in out
    assert "not retried, a retry cannot fix this" in out

    repaired = airflow.run("dags", "test", dag_id, "-c", json.dumps({"repair": True}))
    out = repaired.stdout + repaired.stderr
    assert f"repaired sys_rc_vault {topic_name}[1] [100, 150) from kafka" in out
    assert f"repaired sys_rc_raw {topic_name}[0] [250, 300) from auto" in out
    assert "reconcile: 2 targets checked, nothing missing, nothing doubled" in out
    for p in range(PARTITIONS):
        assert sum(s.size for s in s3_spans(s3_client, bucket, "raw", topic_name, p)) == LINES
        assert sum(s.size for s in hdfs_raw_spans(hdfs_client, base, topic_name, p)) == LINES
