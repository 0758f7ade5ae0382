"""Shared set-up of the bench scripts: services (started or reused), a topic filled once, kcat as reference."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack import kafka, loggen, s3  # noqa: E402


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


def fill_topic(bootstrap: str, topic: str, lines: int, partitions: int = 1) -> int:
    """Create ``topic`` and produce ``lines`` generated log lines into partition 0; returns the bytes produced."""
    loggen.create_topic(bootstrap, topic, partitions)
    total = 0
    batch = 100_000
    for i in range(0, lines, batch):
        chunk = list(loggen.generate(min(batch, lines - i), seed=i))
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


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"
