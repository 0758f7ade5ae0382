"""The shipped incremental DAG, run by real ``airflow`` commands against real Kafka and S3."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml
from airflow_env import make_airflow_env

from airflow_provider_logtap.core import claims
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.offsets import committed_offsets
from airflow_provider_logtap.sinks.archive import read_lines

PARTITIONS = 3


def archive_by_partition(
    s3_client, bucket: str, prefix: str, topic: str
) -> dict[int, list[tuple[int, int, list[bytes]]]]:  # type: ignore[no-untyped-def]
    """``{partition: [(start, end, lines), ...]}`` in key order, from the objects and their metadata."""
    out: dict[int, list[tuple[int, int, list[bytes]]]] = {}
    for p in range(PARTITIONS):
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/{topic}/partition={p}/"
        )
        for key in sorted(o["Key"] for page in pages for o in page.get("Contents", ())):
            obj = s3_client.get_object(Bucket=bucket, Key=key)
            meta = obj["Metadata"]
            out.setdefault(p, []).append(
                (
                    int(meta["logtap-start-offset"]),
                    int(meta["logtap-end-offset"]),
                    read_lines(obj["Body"].read(), "gzip"),
                )
            )
    return out


def assert_exactly_once(
    archive: dict[int, list[tuple[int, int, list[bytes]]]],
    sent: dict[int, list[bytes]],
) -> None:
    for p, values in sent.items():
        objects = archive.get(p, [])
        # Coverage tiles [0, len(values)) with no gap and no overlap...
        assert objects[0][0] == 0
        for (_, end, _), (start, _, _) in itertools.pairwise(objects):
            assert end == start, f"partition {p}: objects overlap or leave a gap at {end}/{start}"
        assert objects[-1][1] == len(values)
        # ...and the lines, in key order, are the records of every offset exactly once.
        lines = [line for _, _, chunk in objects for line in chunk]
        assert len(lines) == len(values), (
            f"partition {p}: {len(lines)} archived lines for {len(values)} offsets"
        )
        assert lines == values, f"partition {p}: archive differs from what Kafka holds"


def committed(bootstrap: str, group: str, topic: str) -> dict[int, claims.Claim | int | None]:
    from confluent_kafka import Consumer

    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, group))
    try:
        state = committed_offsets(consumer, topic, range(PARTITIONS))
    finally:
        consumer.close()
    return {p: c.offset for p, c in state.items()}  # type: ignore[misc]


def test_incremental_runs_retry_after_failure_exactly_once(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, s3_client, bucket: str, topic_name: str
) -> None:  # type: ignore[no-untyped-def]
    from devstack import loggen

    taps = tmp_path / "taps.yaml"
    taps.write_text(
        yaml.safe_dump(
            {
                "taps": [
                    {
                        "name": "sys_archive",
                        "topic": topic_name,
                        "schedule": None,
                        "retries": 0,
                        "target": {
                            "type": "s3_archive",
                            "bucket": bucket,
                            "prefix": "raw",
                            "max_records_per_object": 700,
                        },
                    }
                ]
            }
        )
    )
    airflow = make_airflow_env(
        tmp_path / "airflow", kafka_bootstrap=kafka_bootstrap, s3_endpoint=s3_endpoint, taps_file=taps
    )
    dag_id, group = "logtap_sys_archive", "logtap-sys_archive"
    loggen.create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}

    def produce(count: int, seed: int) -> None:
        for s in loggen.produce(kafka_bootstrap, topic_name, loggen.generate(count, seed=seed)):
            assert s.offset == len(sent[s.partition])
            sent[s.partition].append(s.line)

    # Run 1: everything so far.
    produce(3000, seed=1)
    airflow.run("dags", "test", dag_id)
    assert_exactly_once(archive_by_partition(s3_client, bucket, "raw", topic_name), sent)
    assert committed(kafka_bootstrap, group, topic_name) == {p: len(v) for p, v in sent.items()}

    # Run 2: new records, then a failure injected between the writes and the commit.
    produce(2500, seed=2)
    offsets_before = committed(kafka_bootstrap, group, topic_name)
    failed = airflow.run("dags", "test", dag_id, extra_env={"LOGTAP_TEST_FAIL_TASK": "commit"}, check=False)
    assert "injected failure in commit" in failed.stdout + failed.stderr
    assert committed(kafka_bootstrap, group, topic_name) == offsets_before  # nothing committed
    written = archive_by_partition(s3_client, bucket, "raw", topic_name)
    assert sum(len(lines) for objs in written.values() for _, _, lines in objs) == 5500  # the writes did land

    # Run 3: more records; the run re-plans from the unchanged offsets and overwrites what run 2 wrote.
    produce(1700, seed=3)
    airflow.run("dags", "test", dag_id)
    assert_exactly_once(archive_by_partition(s3_client, bucket, "raw", topic_name), sent)
    assert committed(kafka_bootstrap, group, topic_name) == {p: len(v) for p, v in sent.items()}
