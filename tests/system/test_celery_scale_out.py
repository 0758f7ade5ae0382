"""Chunked loads scaled out over two Celery workers (CeleryExecutor, Redis broker, PostgreSQL) into S3 and into
HDFS by event time, and a worker lost mid-chunk: its chunk is failed by the scheduler's heartbeat check, retried
on the other worker, and every offset still lands in S3 exactly once."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery_env import CeleryAirflow, celery_airflow, task_instances, tries, wait_for
from conftest import assert_no_secrets
from hdfs_helpers import hdfs_tree
from live import trigger, wait_for_dag, wait_for_run

from airflow_provider_logtap.core.chunks import chunk_specs, label
from airflow_provider_logtap.sinks.archive import read_lines

# Both tests share one CeleryExecutor Airflow: one xdist worker runs them, one after the other.
pytestmark = pytest.mark.xdist_group("celery")

PARTITIONS = 2
WORKERS = ("worker-a", "worker-b")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, s3_endpoint: str, webhdfs: dict[str, str]
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
        webhdfs=webhdfs,
    ) as running:
        yield running
        assert_no_secrets(running.airflow)


def chunked_taps(cluster: CeleryAirflow, topic: str, **targets: tuple[dict[str, Any], int]) -> list[str]:
    """Taps (name: (target, chunk_records)) on ``topic`` whose sensors reschedule (no triggerer), one retry of
    each task at once; their DAG ids, once parsed."""
    taps = [
        {
            "name": name,
            "topic": topic,
            "schedule": None,
            "retries": 1,
            "retry_delay_seconds": 0,
            "sensor_mode": "reschedule",
            "chunk_records": chunk_records,
            "target": target,
        }
        for name, (target, chunk_records) in targets.items()
    ]
    Path(cluster.airflow.env["LOGTAP_TAPS_FILE"]).write_text(yaml.safe_dump({"taps": taps}))
    for name in targets:
        wait_for_dag(cluster.airflow, f"logtap_{name}")
    return [f"logtap_{name}" for name in targets]


def backlog(bootstrap: str, topic: str, count: int, seed: int) -> list[Any]:
    """A new topic of ``PARTITIONS`` partitions with ``count`` log lines (event times over 6 hours); what was sent
    (``loggen.Sent``: partition, offset, line, event time)."""
    from devstack import loggen

    loggen.create_topic(bootstrap, topic, PARTITIONS)
    return list(loggen.produce(bootstrap, topic, loggen.generate(count, seed=seed, days=0.25)))


def by_partition(sent: list[Any]) -> dict[int, list[bytes]]:
    """The lines of each partition in offset order (the offsets checked to be 0, 1, 2, ...)."""
    out: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for s in sorted(sent, key=lambda s: (s.partition, s.offset)):
        assert s.offset == len(out[s.partition])
        out[s.partition].append(s.line)
    return out


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
    cluster: CeleryAirflow,
    kafka_bootstrap: str,
    s3_client: Any,
    bucket: str,
    hdfs_client: Any,
    hdfs_base: str,
    topic_name: str,
) -> None:
    """An S3 archive tap and an HDFS event-time tap on one backlog, both runs at once over the two workers."""
    sent = backlog(kafka_bootstrap, topic_name, 12_000, seed=21)
    lines = by_partition(sent)
    chunk_records = 1_200
    expected_chunks = sum(-(-len(v) // chunk_records) for v in lines.values())
    assert 8 <= expected_chunks <= 12
    # The HDFS tap in bigger chunks (fewer tasks: each costs seconds of Airflow's latency here); two or more.
    hdfs_chunk_records = 4_000
    dag_ids = chunked_taps(
        cluster,
        topic_name,
        celery_s3=({"type": "s3_archive", "bucket": bucket, "prefix": "raw"}, chunk_records),
        celery_hdfs=({"type": "hdfs_event_time", "base_path": f"{hdfs_base}/by_time"}, hdfs_chunk_records),
    )
    chunk_counts = {
        "logtap_celery_s3": expected_chunks,
        "logtap_celery_hdfs": sum(-(-len(v) // hdfs_chunk_records) for v in lines.values()),
    }
    # The grid's label of each load: "partition 1 chunk 2/3 [...]" for a cut range, "partition 1 [...]" for one
    # no longer than the chunk size (the producer spreads lines unevenly: a partition may be that short).
    whole = [
        {"topic": topic_name, "partition": p, "start": 0, "end": len(v)} for p, v in sorted(lines.items())
    ]
    expected_labels = {
        "logtap_celery_s3": sorted(label(s) for s in chunk_specs(whole, chunk_records)),
        "logtap_celery_hdfs": sorted(label(s) for s in chunk_specs(whole, hdfs_chunk_records)),
    }
    runs = {dag_id: trigger(cluster.airflow, dag_id) for dag_id in dag_ids}
    for dag_id, run in runs.items():
        assert wait_for_run(cluster.airflow, dag_id, run, timeout=240) == "success"

    by_worker: dict[str, list[tuple[str, int]]] = {w: [] for w in WORKERS}
    for dag_id, run in runs.items():
        chunks = loads(cluster, dag_id, run)
        assert len(chunks) == chunk_counts[dag_id]
        assert {ti["state"] for ti in chunks} == {"success"}
        labels = sorted(ti["rendered_map_index"] for ti in chunks)
        assert labels == expected_labels[dag_id]
        assert any(" chunk " in text for text in labels), labels
        assert {ti["hostname"] for ti in chunks} <= set(WORKERS)  # no chunk ran anywhere else
        for ti in chunks:
            by_worker[ti["hostname"]].append((dag_id, ti["map_index"]))
    # Both runs' chunks are queued at once, more of them than one worker holds (its slots plus the messages it
    # prefetches): both workers took some. (Which DAG's chunks each took is Celery's choice: one worker may take
    # every chunk of the smaller run.)
    assert sum(chunk_counts.values()) > 2 * 2 * 2, "too few chunks to need both workers"
    assert all(by_worker.values()), f"chunks by worker: {by_worker}"
    assert_every_offset_once(s3_client, bucket, topic_name, lines)
    # By event time: each dt/hour holds exactly the lines of that hour (the generator's own record of event
    # times), each once (the _logtap/ manifests aside); no temporary file is left visible.
    files = hdfs_tree(hdfs_client, f"{hdfs_base}/by_time/{topic_name}")
    assert not [p for p in files if p.rsplit("/", 1)[1].startswith(".")], "a temporary file is visible"
    expected = Counter((s.event_utc.strftime("dt=%Y-%m-%d/hour=%H"), s.line) for s in sent)
    got = Counter(
        (path.rsplit("/", 1)[0], line)
        for path, data in files.items()
        if path.startswith("dt=")
        for line in data.splitlines()
    )
    assert got == expected


def test_a_chunk_of_a_killed_worker_is_retried_on_the_other(
    cluster: CeleryAirflow, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    """worker-a is SIGKILLed (its whole process tree) while it runs a chunk: the chunk has no heartbeat any more,
    the scheduler fails its try, and its retry runs on worker-b; the run succeeds with every offset once. (A chunk
    whose Celery message worker-a had taken but not yet started is still queued: Redis hands the message to
    worker-b after the visibility timeout, as the same try.)"""
    victim, survivor = WORKERS
    sent = by_partition(backlog(kafka_bootstrap, topic_name, 40_000, seed=22))
    (dag_id,) = chunked_taps(
        cluster,
        topic_name,
        celery_lost_worker=({"type": "s3_archive", "bucket": bucket, "prefix": "raw"}, 8_000),
    )
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
