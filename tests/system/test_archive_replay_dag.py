"""The "uh oh" story through the shipped DAGs (``airflow dags test``): an S3 archive tap and an event-time HDFS tap
load a topic; Kafka then deletes the first records of each partition (as retention would); the replay DAG's dry
run says how much comes from the archive and how much from Kafka, and the replay with ``source: archive``
rebuilds the whole range into a new target equal, line for line and hour for hour, to what the live tap wrote."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow_env import AirflowEnv
from confluent_kafka.admin import AdminClient
from conftest import write_taps
from devstack.loggen import generate
from hdfs_helpers import hdfs_tree
from holdings import hdfs_holdings
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap.sources.archive import list_objects

PARTITIONS = 2
LINES = 400
DELETED = 90  # Kafka's new log start in each partition


@pytest.mark.airflow2
def test_a_range_retention_deleted_is_replayed_from_the_archive_through_the_replay_dag(
    airflow: AirflowEnv,
    kafka_bootstrap: str,
    bucket: str,
    s3_client: Any,
    hdfs_client: Any,
    hdfs_base: str,
    topic_name: str,
) -> None:
    base = f"{hdfs_base}/hours"
    write_taps(
        airflow,
        {
            "name": "sys_vault",
            "topic": topic_name,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "raw", "max_records_per_object": 60},
        },
        {"name": "sys_hours", "topic": topic_name, "target": {"type": "hdfs_event_time", "base_path": base}},
    )
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    lines = [
        g.line for g in generate(LINES, seed=41, start=datetime(2026, 9, 1, tzinfo=timezone.utc), days=1)
    ]
    ends = {
        p: produce(kafka_bootstrap, topic_name, p, lines[p::PARTITIONS])[-1] + 1 for p in range(PARTITIONS)
    }
    airflow.run("dags", "test", "logtap_sys_vault")
    airflow.run("dags", "test", "logtap_sys_hours")
    live, _runs = hdfs_holdings(hdfs_client, base)
    assert sum(live.values()) == LINES
    live_files = hdfs_tree(hdfs_client, base)

    for p in range(PARTITIONS):
        delete_records(kafka_bootstrap, topic_name, p, DELETED)
    replay = {"tap": "sys_hours", "from": "earliest", "to": "latest", "target_name": "restored"}

    # Kafka alone can no longer serve it; the dry run of auto says where each part comes from.
    dry = airflow.run("dags", "test", "logtap_replay", "-c", json.dumps({**replay, "source": "auto"}))
    out = dry.stdout + dry.stderr
    archived = re.search(r"dry run total from the archive: (\d+) records", out)
    kafka = re.search(r"dry run total from Kafka: (\d+) records", out)
    assert archived and kafka, out[-3000:]
    assert int(archived.group(1)) == DELETED * PARTITIONS
    assert int(kafka.group(1)) == sum(ends.values()) - DELETED * PARTITIONS
    assert hdfs_client.status(f"{base}/_replays/restored", strict=False) is None  # a dry run writes nothing

    airflow.run(
        "dags", "test", "logtap_replay", "-c", json.dumps({**replay, "source": "archive", "dry_run": False})
    )
    restored, _runs = hdfs_holdings(hdfs_client, f"{base}/_replays/restored")
    assert restored == live  # every line once, in the hour (or dead letters) the live tap put it
    after = {p: data for p, data in hdfs_tree(hdfs_client, base).items() if not p.startswith("_replays/")}
    assert after == live_files  # the live tree untouched beside it

    if airflow.version == "2":
        return  # the rest exercises logtap's planning and sinks, the same on both versions: Airflow 3 only (time)

    # The live tap's own partitions rebuilt in place from the archive (from Kafka they can no longer be: each
    # partition's first write starts below the log start): the same lines in the same hours, every write
    # rewritten by the rebuild's run.
    rebuild = {
        "tap": "sys_hours",
        "from": "earliest",
        "to": "committed",
        "overwrite_partitions": ["dt=2026-09-01"],
        "source": "archive",
        "dry_run": False,
    }
    airflow.run("dags", "test", "logtap_replay", "-c", json.dumps(rebuild))
    rebuilt = hdfs_tree(hdfs_client, base)
    manifests = [p for p in rebuilt if "/_logtap/" in p and not p.startswith("_replays/")]
    assert manifests and all(
        json.loads(rebuilt[p])["run"] != json.loads(live_files[p])["run"] for p in manifests
    )

    def data(tree: dict[str, bytes]) -> dict[str, bytes]:
        return {p: v for p, v in tree.items() if not p.startswith("_replays/") and "/_logtap/" not in p}

    assert data(rebuilt) == data(live_files)

    # The topic deleted by hand altogether: the archive alone still describes and serves it.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_topics([topic_name], operation_timeout=30).values():
        future.result()
    gone = {**replay, "source": "archive", "dry_run": False, "target_name": "after-deletion"}
    airflow.run("dags", "test", "logtap_replay", "-c", json.dumps(gone))
    assert hdfs_holdings(hdfs_client, f"{base}/_replays/after-deletion")[0] == live

    # An object deleted from the archive: the plan names the gap and nothing is written.
    (doomed, *_rest) = list_objects(s3_client, bucket, "raw", topic_name, 1)[1:]
    s3_client.delete_object(Bucket=bucket, Key=doomed.key)
    holed = {**gone, "target_name": "with-gap"}
    failed = airflow.run("dags", "test", "logtap_replay", "-c", json.dumps(holed), check=False)
    assert f"holds no object for offsets [{doomed.start}, {doomed.end})" in failed.stdout + failed.stderr
    assert hdfs_client.status(f"{base}/_replays/with-gap", strict=False) is None
