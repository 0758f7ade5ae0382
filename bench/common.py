"""Shared set-up of the bench scripts: services (started or reused), a topic filled once, kcat as reference."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack import kafka, loggen, s3  # noqa: E402


@contextmanager
def webhdfs() -> Iterator[tuple[str, str]]:
    """``(WebHDFS url, user)``: $LOGTAP_WEBHDFS_URL if set, else a MiniDFSCluster started here."""
    if url := os.environ.get("LOGTAP_WEBHDFS_URL"):
        yield url, os.environ.get("LOGTAP_WEBHDFS_USER", "root")
        return
    from devstack import hdfs

    service = hdfs.start(ROOT / ".dev" / "bench" / "hdfs")
    try:
        yield service.info["webhdfs_url"], service.info["user"]
    finally:
        service.stop()


@contextmanager
def services() -> Iterator[tuple[str, str]]:
    """``(bootstrap, s3 endpoint)``: $LOGTAP_KAFKA_BOOTSTRAP / $LOGTAP_S3_ENDPOINT if set, else started here."""
    started = []
    work = ROOT / ".dev" / "bench"
    try:
        bootstrap = os.environ.get("LOGTAP_KAFKA_BOOTSTRAP")
        if not bootstrap:
            k = kafka.start(work / "kafka")
            started.append(k)
            bootstrap = k.info["bootstrap"]
        endpoint = os.environ.get("LOGTAP_S3_ENDPOINT")
        if not endpoint:
            s = s3.start(work / "s3")
            started.append(s)
            endpoint = s.info["endpoint_url"]
        yield bootstrap, endpoint
    finally:
        for svc in reversed(started):
            svc.stop()


def fill_topic(bootstrap: str, topic: str, lines: int, partitions: int = 1, days: float = 4.0) -> int:
    """Create ``topic`` and produce ``lines`` generated log lines into partition 0; returns the bytes produced."""
    loggen.create_topic(bootstrap, topic, partitions)
    total = 0
    batch = 100_000
    for i in range(0, lines, batch):
        chunk = list(loggen.generate(min(batch, lines - i), seed=i, days=days))
        total += sum(len(x.line) for x in chunk)
        loggen.produce(bootstrap, topic, chunk, partition=0)
    return total


def kcat_seconds(bootstrap: str, topic: str, end: int, repeat: int = 3) -> float:
    """Seconds kcat takes to read offsets [0, end) of partition 0 to /dev/null (best of ``repeat``)."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        raise SystemExit("kcat is not installed (apt-get install kcat)")
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(
            [
                kcat,
                "-C",
                "-b",
                bootstrap,
                "-t",
                topic,
                "-p",
                "0",
                "-o",
                "beginning",
                "-c",
                str(end),
                "-e",
                "-q",
                "-f",
                "%s\n",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - began)
    return best


def range_batches(bootstrap: str, rng: Any) -> Iterator[Any]:
    """The record batches of ``rng`` as a load reads them: logtap's range reader on a consumer of its own."""
    from confluent_kafka import Consumer

    from airflow_provider_logtap.kafka.client import reader_config
    from airflow_provider_logtap.kafka.reader import read_range

    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, "bench"))
    try:
        yield from read_range(consumer, rng, report=lambda s: None)
    finally:
        consumer.close()


def consume_only(bootstrap: str, rng: Any, batch_size: int = 2000) -> int:
    """confluent-kafka's own consume loop over ``rng`` (a topic without gaps), nothing done with the messages:
    the ceiling of every path that reads through confluent-kafka, with the reader's configuration, batch size
    and paused GC. Returns the records consumed (the offsets reached)."""
    from confluent_kafka import Consumer, TopicPartition

    from airflow_provider_logtap.kafka.client import reader_config
    from airflow_provider_logtap.kafka.reader import gc_paused

    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, "bench"))
    try:
        consumer.assign([TopicPartition(rng.topic, rng.partition, rng.start)])
        position = rng.start
        while position < rng.end:
            with gc_paused():
                messages = consumer.consume(min(batch_size, rng.end - position), 0.2)
            if messages and messages[-1].error() is None:
                position = messages[-1].offset() + 1
        return position - rng.start
    finally:
        consumer.close()


def rounds(
    modes: dict[str, Callable[[], int]],
    kcat: Callable[[], float],
    count: int,
    lines: int,
    nbytes: int,
) -> None:
    """Run kcat and each mode back to back ``count`` times; print best rates and the median ratio to kcat of
    the same round (the machine's speed drifts, so only a ratio within a round compares like with like)."""
    ratios: dict[str, list[float]] = {m: [] for m in modes}
    best: dict[str, float] = {}
    kcat_best = float("inf")
    for _ in range(count):
        k = kcat()
        kcat_best = min(kcat_best, k)
        for name, fn in modes.items():
            began = time.perf_counter()
            done = fn()
            seconds = time.perf_counter() - began
            assert done == lines, (name, done, lines)
            ratios[name].append(k / seconds)
            best[name] = min(best.get(name, float("inf")), seconds)
    print(f"kcat         {lines / kcat_best:>10,.0f} lines/s  {mb(nbytes / kcat_best)}/s (best round)")
    for name, values in ratios.items():
        print(
            f"logtap {name:<6}{lines / best[name]:>10,.0f} lines/s  {mb(nbytes / best[name])}/s (best round); "
            f"x kcat in the same round: median {statistics.median(values):.2f} "
            f"(rounds {' '.join(f'{v:.2f}' for v in values)})"
        )


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"
