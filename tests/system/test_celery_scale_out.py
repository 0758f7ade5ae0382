"""Chunked loads scaled out over two Celery workers (CeleryExecutor, Redis broker, PostgreSQL), and a worker lost
mid-chunk: its chunk is failed by the scheduler's heartbeat check, retried on the other worker, and every offset
still lands in S3 exactly once."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery_env import CeleryAirflow, celery_airflow, task_instances, tries, wait_for
from conftest import assert_no_secrets
from live import trigger, wait_for_dag, wait_for_run

from airflow_provider_logtap.sinks.archive import read_lines

# Both tests share one CeleryExecutor Airflow: one xdist worker runs them, one after the other.
pytestmark = pytest.mark.xdist_group("celery")

PARTITIONS = 2
WORKERS = ("worker-a", "worker-b")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, s3_endpoint: str
) -> Iterator[CeleryAirflow]:
    with celery_airflow(
        tmp_path_factory.mktemp("celery-airflow-"),
        workers=WORKERS,
        concurrency=2,
        # A message the killed worker had taken but not started comes back to the queue after this; the test's
        # chunks run for a few seconds, well under it.
        visibility_timeout=30,
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
    ) as running:
        yield running
        assert_no_secrets(running.airflow)


def chunked_tap(cluster: CeleryAirflow, name: str, topic: str, bucket: str, chunk_records: int) -> str:
    """An S3 archive tap whose sensor reschedules (no triggerer), one retry of each task at once; its DAG id."""
    tap = {
        "name": name,
        "topic": topic,
        "schedule": None,
        "retries": 1,
        "retry_delay_seconds": 0,
        "sensor_mode": "reschedule",
        "chunk_records": chunk_records,
        "target": {"type": "s3_archive", "bucket": bucket, "prefix": "raw"},
    }
    Path(cluster.airflow.env["LOGTAP_TAPS_FILE"]).write_text(yaml.safe_dump({"taps": [tap]}))
    dag_id = f"logtap_{name}"
    wait_for_dag(cluster.airflow, dag_id)
    return dag_id


def backlog(bootstrap: str, topic: str, count: int, seed: int) -> dict[int, list[bytes]]:
    """A new topic of ``PARTITIONS`` partitions with ``count`` log lines; the lines of each partition by offset."""
    from devstack import loggen

    loggen.create_topic(bootstrap, topic, PARTITIONS)
    sent: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for s in loggen.produce(bootstrap, topic, loggen.generate(count, seed=seed)):
        assert s.offset == len(sent[s.partition])
        sent[s.partition].append(s.line)
    return sent


def assert_every_offset_once(s3_client: Any, bucket: str, topic: str, sent: dict[int, list[bytes]]) -> None:
    """The objects of each partition, by the offsets their metadata names, tile ``[0, len)`` without gap or
    overlap, and their lines read back are the partition's records, each once, in offset order."""
    for p, values in sent.items():
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"raw/{topic}/partition={p}/"
        )
        objects = []
        for key in (o["Key"] for page in pages for o in page.get("Contents", ())):
            obj = s3_client.get_object(Bucket=bucket, Key=key)
            meta = obj["Metadata"]
            start, end = int(meta["logtap-start-offset"]), int(meta["logtap-end-offset"])
            objects.append((start, end, read_lines(obj["Body"].read(), "gzip")))
        objects.sort(key=lambda o: o[0])
        assert objects and objects[0][0] == 0, f"partition {p}: nothing from offset 0"
        for (_, end, _), (start, _, _) in itertools.pairwise(objects):
            assert end == start, f"partition {p}: objects overlap or leave a gap at {end}/{start}"
        assert objects[-1][1] == len(values)
        lines = [line for _, _, chunk in objects for line in chunk]
        assert len(lines) == len(values), f"partition {p}: {len(lines)} lines for {len(values)} offsets"
        assert lines == values, f"partition {p}: the archive differs from what Kafka holds"


def loads(cluster: CeleryAirflow, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return [ti for ti in task_instances(cluster.airflow, dag_id, run_id) if ti["task_id"] == "load"]


def test_the_chunks_of_a_backlog_are_loaded_by_both_workers(
    cluster: CeleryAirflow, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    sent = backlog(kafka_bootstrap, topic_name, 12_000, seed=21)
    chunk_records = 1_200
    expected_chunks = sum(-(-len(v) // chunk_records) for v in sent.values())
    assert 8 <= expected_chunks <= 12
    dag_id = chunked_tap(cluster, "celery_scale_out", topic_name, bucket, chunk_records)
    run = trigger(cluster.airflow, dag_id)
    assert wait_for_run(cluster.airflow, dag_id, run, timeout=240) == "success"

    chunks = loads(cluster, dag_id, run)
    assert len(chunks) == expected_chunks
    assert {ti["state"] for ti in chunks} == {"success"}
    assert all(" chunk " in ti["rendered_map_index"] for ti in chunks), [
        ti["rendered_map_index"] for ti in chunks
    ]
    by_worker = {w: [ti["map_index"] for ti in chunks if ti["hostname"] == w] for w in WORKERS}
    assert all(by_worker.values()), f"chunks by worker: {by_worker}"
    assert sum(map(len, by_worker.values())) == expected_chunks  # no chunk ran anywhere else
    assert_every_offset_once(s3_client, bucket, topic_name, sent)


def test_a_chunk_of_a_killed_worker_is_retried_on_the_other(
    cluster: CeleryAirflow, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    """worker-a is SIGKILLed (its whole process tree) while it runs a chunk: the chunk has no heartbeat any more,
    the scheduler fails its try, and its retry runs on worker-b; the run succeeds with every offset once. (A chunk
    whose Celery message worker-a had taken but not yet started is still queued: Redis hands the message to
    worker-b after the visibility timeout, as the same try.)"""
    victim, survivor = WORKERS
    sent = backlog(kafka_bootstrap, topic_name, 40_000, seed=22)
    dag_id = chunked_tap(cluster, "celery_lost_worker", topic_name, bucket, 8_000)
    run = trigger(cluster.airflow, dag_id)

    def running_on_victim() -> list[dict[str, Any]]:
        return [
            ti for ti in loads(cluster, dag_id, run) if ti["state"] == "running" and ti["hostname"] == victim
        ]

    wait_for(f"a chunk running on {victim}", running_on_victim, timeout=180, interval=0.3)
    cluster.kill_worker(victim)
    killed_at = time.monotonic()
    # What the dead worker held: the chunks it was running (still 'running' in the DB, nobody heartbeats them).
    lost = {ti["map_index"]: ti for ti in running_on_victim()}
    assert lost, f"no chunk was running on {victim} when it was killed"

    assert wait_for_run(cluster.airflow, dag_id, run, timeout=300) == "success"
    recovered = time.monotonic() - killed_at
    final = {ti["map_index"]: ti for ti in loads(cluster, dag_id, run)}
    assert {ti["state"] for ti in final.values()} == {"success"}
    for index in lost:
        history = tries(cluster.airflow, dag_id, run, "load", index)
        assert final[index]["hostname"] == survivor, (index, final[index]["hostname"])
        assert final[index]["try_number"] > 1, final[index]
        assert history[0]["hostname"] == victim and history[0]["state"] in ("failed", "up_for_retry"), (
            history[0]
        )
        assert history[-1]["hostname"] == survivor and history[-1]["state"] == "success", history[-1]
    assert_every_offset_once(s3_client, bucket, topic_name, sent)
    print(f"lost chunks {sorted(lost)}; run done {recovered:.0f}s after the kill")
