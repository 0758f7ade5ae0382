"""Throughput of reading records back from the S3 archive (the replay's ``source: archive``) against kcat
reading the same range from Kafka.

    .venv/bin/python bench/archive_read.py [--lines 500000] [--rounds 5] [--compression gzip]

The topic is archived once (256 MB objects, the default cut); then each round runs kcat, logtap's Kafka read and
logtap's archive read (list + HEAD the objects, stream them from moto, decompress, split into batches with their
offsets) back to back; the figure is the median ratio to kcat over the rounds.
"""

from __future__ import annotations

import argparse
import time
import uuid

from common import fill_topic, kcat_seconds, mb, range_batches, rounds, services


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compression", default="gzip")
    args = parser.parse_args()

    import boto3

    from airflow_provider_logtap.core.ranges import OffsetRange
    from airflow_provider_logtap.sinks.archive import ArchiveFormat
    from airflow_provider_logtap.sinks.s3 import S3ArchiveSink
    from airflow_provider_logtap.sources.archive import ArchiveReader

    with services() as (bootstrap, endpoint):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        began = time.perf_counter()
        produced = fill_topic(bootstrap, topic, args.lines)
        print(f"produced {args.lines:,} lines, {mb(produced)} in {time.perf_counter() - began:.0f}s")
        rng = OffsetRange(topic=topic, partition=0, start=0, end=args.lines)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="b",
            aws_secret_access_key="b",
        )
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)

        def batches():  # type: ignore[no-untyped-def]
            return range_batches(bootstrap, rng)

        fmt = ArchiveFormat(compression=args.compression)
        written = S3ArchiveSink(client=client, bucket=bucket, archive_format=fmt).write(rng, batches())
        print(f"archived into {len(written.objects)} objects, {mb(written.bytes_out)} compressed")
        reader = ArchiveReader(client=client, bucket=bucket)

        def kafka() -> int:
            return sum(len(b) for b in batches())

        def archive() -> int:
            return sum(len(b) for b in reader.read(rng, report=lambda s: None))

        rounds(
            {"kafka": kafka, "archive": archive},
            lambda: kcat_seconds(bootstrap, topic, args.lines, repeat=1),
            args.rounds,
            args.lines,
            produced,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
