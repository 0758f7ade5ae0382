"""The shipped incremental DAG, run by real ``airflow`` commands against real Kafka and S3."""

from __future__ import annotations

import itertools

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps

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
        if not values:  # the producer's sticky partitioner may leave a partition without records
            assert not objects, f"partition {p}: objects archived for no record: {objects}"
            continue
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


def write_s3_tap(
    airflow: AirflowEnv, name: str, topic: str, bucket: str, **target: object
) -> tuple[str, str]:
    """Declare one S3 archive tap; returns its DAG id and consumer group."""
    write_taps(
        airflow,
        {
            "name": name,
            "topic": topic,
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "raw", **target},
        },
    )
    return f"logtap_{name}", f"logtap-{name}"


@pytest.mark.airflow2
def test_incremental_runs_retry_after_failure_exactly_once(
    airflow: AirflowEnv,
    kafka_bootstrap: str,
    s3_client,  # type: ignore[no-untyped-def]
    bucket: str,
    topic_name: str,
) -> None:
    from devstack import loggen

    dag_id, group = write_s3_tap(airflow, "sys_archive", topic_name, bucket, max_records_per_object=700)
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


def test_a_superseded_run_neither_writes_nor_commits(
    airflow: AirflowEnv, kafka_bootstrap: str, s3_client, bucket: str, topic_name: str
) -> None:  # type: ignore[no-untyped-def]
    """Run A fails before its commit; run B plans the same offsets further and fails too; then A's load and
    commit are re-run by hand (as a clear would): both must stand aside, and run C loads everything once."""
    from devstack import loggen

    dag_id, group = write_s3_tap(airflow, "sys_superseded", topic_name, bucket, max_records_per_object=400)
    loggen.create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}

    def produce(count: int, seed: int) -> None:
        for s in loggen.produce(kafka_bootstrap, topic_name, loggen.generate(count, seed=seed)):
            sent[s.partition].append(s.line)

    fail_commit = {"LOGTAP_TEST_FAIL_TASK": "commit"}
    produce(1500, seed=11)
    airflow.run("dags", "test", dag_id, extra_env=fail_commit, check=False)
    produce(900, seed=12)
    airflow.run("dags", "test", dag_id, extra_env=fail_commit, check=False)
    run_a, run_b = airflow.run_ids(dag_id)[-2:]
    assert committed(kafka_bootstrap, group, topic_name) == dict.fromkeys(
        range(PARTITIONS), 0
    )  # claims only: offsets unmoved
    before = archive_by_partition(s3_client, bucket, "raw", topic_name)
    # Run A's load (its plan still in XCom) and commit, re-run: both see run B's claim and stand aside.
    busiest = max(sent, key=lambda p: len(sent[p]))
    load = airflow.run("tasks", "test", dag_id, "load", run_a, "--map-index", str(busiest))
    assert "was superseded" in load.stdout + load.stderr
    assert archive_by_partition(s3_client, bucket, "raw", topic_name) == before
    commit = airflow.run("tasks", "test", dag_id, "commit", run_a)
    assert f"run {dag_id}/{run_b} has since planned" in commit.stdout + commit.stderr
    assert committed(kafka_bootstrap, group, topic_name) == dict.fromkeys(
        range(PARTITIONS), 0
    )  # claims only: offsets unmoved
    # Run C loads every offset exactly once.
    produce(700, seed=13)
    airflow.run("dags", "test", dag_id)
    assert_exactly_once(archive_by_partition(s3_client, bucket, "raw", topic_name), sent)
    assert committed(kafka_bootstrap, group, topic_name) == {p: len(v) for p, v in sent.items()}
