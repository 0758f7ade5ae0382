"""Throughput of the event-time partitioned HDFS sink against kcat reading the same range.

    .venv/bin/python bench/hdfs_event_time.py [--lines 500000] [--rounds 5] [--days 4] [--parallel-files 8]
        [--modes read,split,hdfs]

Modes: ``consume`` (confluent-kafka's bare consume loop, the messages dropped: the ceiling of any path reading
through it), ``read`` (the range reader alone), ``split`` (read + find each line's event time + partition into local
spool files: the CPU work of the sink), ``hdfs`` (the whole write through WebHDFS into a MiniDFSCluster, temp
files renamed into place). ``--modes read,split`` leaves the MiniDFSCluster out (its JVM keeps a share of the two
cores busy between its writes, which the other modes of later rounds then lack). Target: event-time partitioned
files >= 0.35x kcat's bytes/s. ``--days`` spreads the generated event times (4 days = 96 hour partitions per
range: historical files arriving late; ``--days 1``: 24). ``--parallel-files`` is the sink's (the target's
``parallel_files``); each ``hdfs`` round prints its files/s and lines/s.
"""

from __future__ import annotations

import argparse
import time
import uuid
from contextlib import nullcontext

from common import consume_only, fill_topic, kcat_seconds, mb, range_batches, rounds, services, webhdfs

from airflow_provider_logtap.core.partitions import PARALLEL_FILES


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days", type=float, default=4.0)
    parser.add_argument("--parallel-files", type=int, default=PARALLEL_FILES)
    parser.add_argument(
        "--modes", default="read,split,hdfs", help="comma-separated: consume, read, split, hdfs"
    )
    args = parser.parse_args()
    chosen = args.modes.split(",")
    known = ("consume", "read", "split", "hdfs")
    if not set(chosen) <= set(known):
        parser.error(f"--modes must be of {', '.join(known)}. Got {args.modes!r}")

    from hdfs import InsecureClient

    from airflow_provider_logtap.core.eventtime import EventTimeReader
    from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
    from airflow_provider_logtap.core.ranges import OffsetRange
    from airflow_provider_logtap.sinks.archive import ArchiveFormat
    from airflow_provider_logtap.sinks.hdfs import HdfsEventTimeSink, _Spools

    with (
        services() as (bootstrap, _s3),
        webhdfs() if "hdfs" in chosen else nullcontext(("", "")) as (url, user),
    ):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        began = time.perf_counter()
        produced = fill_topic(bootstrap, topic, args.lines, days=args.days)
        print(f"produced {args.lines:,} lines, {mb(produced)} in {time.perf_counter() - began:.0f}s")
        rng = OffsetRange(topic=topic, partition=0, start=0, end=args.lines)
        client = InsecureClient(url, user=user)

        def batches():  # type: ignore[no-untyped-def]
            return range_batches(bootstrap, rng)

        def partitioner() -> EventTimePartitioner:
            return EventTimePartitioner(EventTimeReader(), PartitionTemplate())

        def consume() -> int:
            return consume_only(bootstrap, rng)

        def read() -> int:
            return sum(len(b.values) for b in batches())

        def split() -> int:
            part, n = partitioner(), 0
            with _Spools(ArchiveFormat(compression="none", max_bytes=None)) as spools:
                for batch in batches():
                    blocks, bad = part.split_joined(batch.values)
                    spools.add(blocks, batch.nbytes())
                    n += len(batch.values) - batch.values.count(None) - len(bad)
                spools.paths()  # the last flush
            return n

        def hdfs() -> int:
            base = f"/bench/{uuid.uuid4().hex[:8]}"
            sink = HdfsEventTimeSink(
                client=client, base=base, partitioner=partitioner(), parallel_files=args.parallel_files
            )
            began = time.perf_counter()
            result = sink.write(rng, batches())
            seconds = time.perf_counter() - began
            print(
                f"  hdfs: {len(result.objects)} files in {seconds:.1f}s ({len(result.objects) / seconds:.1f} files/s, "
                f"{result.written / seconds:,.0f} lines/s, {args.parallel_files} at once)"
            )
            return result.written

        modes = {
            name: {"consume": consume, "read": read, "split": split, "hdfs": hdfs}[name] for name in chosen
        }
        rounds(
            modes,
            lambda: kcat_seconds(bootstrap, topic, args.lines, repeat=1),
            args.rounds,
            args.lines,
            produced,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
