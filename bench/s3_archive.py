"""Throughput of the S3 raw archive against kcat reading the same range, and memory for growing ranges.

    .venv/bin/python bench/s3_archive.py [--lines 500000] [--rounds 7] [--compression gzip] [--level N]

Each round runs kcat, then confluent-kafka's bare consume loop (``consume``: the messages dropped, the ceiling
of any path reading through it), logtap's read alone, read + chunk + compress, and the whole S3 write, back to back
on the same topic, so that a ratio compares like with like on a machine whose speed drifts; the figure is the
median ratio over the rounds (target: the S3 archive >= 0.5x kcat's bytes/s). Then peak RSS of a whole S3
write, each in a fresh interpreter, for growing range sizes (target: flat).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid

from common import ROOT, consume_only, fill_topic, kcat_seconds, mb, range_batches, rounds, services


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compression", default="gzip")
    parser.add_argument("--level", type=int, default=None)
    args = parser.parse_args()

    import boto3

    from airflow_provider_logtap.core.ranges import OffsetRange
    from airflow_provider_logtap.sinks.archive import ArchiveFormat, archive_chunks, default_spool
    from airflow_provider_logtap.sinks.s3 import S3ArchiveSink

    with services() as (bootstrap, endpoint):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        began = time.perf_counter()
        produced = fill_topic(bootstrap, topic, args.lines)
        print(f"produced {args.lines:,} lines, {mb(produced)} in {time.perf_counter() - began:.0f}s")
        rng = OffsetRange(topic=topic, partition=0, start=0, end=args.lines)
        fmt = ArchiveFormat(compression=args.compression, level=args.level)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="b",
            aws_secret_access_key="b",
        )
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        sink = S3ArchiveSink(client=client, bucket=bucket, archive_format=fmt)

        def batches():  # type: ignore[no-untyped-def]
            return range_batches(bootstrap, rng)

        def consume() -> int:
            return consume_only(bootstrap, rng)

        def read() -> int:
            return sum(len(b.values) for b in batches())

        def chunk() -> int:
            lines = 0
            for c, spool in archive_chunks(rng, batches(), fmt, default_spool):
                lines += c.lines
                spool.close()
            return lines

        def s3() -> int:
            return sink.write(rng, batches()).written

        modes = {"consume": consume, "read": read, "chunk": chunk, "s3": s3}
        rounds(
            modes,
            lambda: kcat_seconds(bootstrap, topic, args.lines, repeat=1),
            args.rounds,
            args.lines,
            produced,
        )
        print("peak RSS of a whole S3 write by range size (fresh interpreter each):")
        for fraction in (0.1, 0.3, 1.0):
            end = max(1, int(args.lines * fraction))
            print(
                f"  {end:>10,} records: {_rss_of_write(bootstrap, endpoint, topic, end, fmt, bucket):.0f} MB"
            )
    return 0


def _rss_of_write(bootstrap: str, endpoint: str, topic: str, end: int, fmt: object, bucket: str) -> float:
    code = f"""
import json, resource, boto3
from confluent_kafka import Consumer
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.archive import ArchiveFormat
from airflow_provider_logtap.sinks.s3 import S3ArchiveSink
rng = OffsetRange(topic={topic!r}, partition=0, start=0, end={end})
client = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1", aws_access_key_id="b",
                      aws_secret_access_key="b")
consumer = Consumer(reader_config({{"bootstrap.servers": {bootstrap!r}}}, "bench"))
fmt = ArchiveFormat(compression={fmt.compression!r}, level={fmt.level!r})  # type: ignore[attr-defined]
S3ArchiveSink(client=client, bucket={bucket!r}, prefix="rss", archive_format=fmt).write(
    rng, read_range(consumer, rng, report=lambda s: None))
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    raise SystemExit(main())
