"""The HDFS sinks against a real HDFS (MiniDFSCluster, WebHDFS), fed by a real broker."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer
from hdfs_helpers import hdfs_tree as tree
from kafka_helpers import counted_read, create_topic, produce

from airflow_provider_logtap.core.eventtime import EventTimeReader, TimeFormat
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.archive import ArchiveFormat
from airflow_provider_logtap.sinks.hdfs import (
    BadLineRatioError,
    HdfsEventTimeSink,
    HdfsRawSink,
    file_metadata,
)


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-hdfs"))
    yield c
    c.close()


def lines_of(files: dict[str, bytes], prefix: str) -> list[bytes]:
    return [
        line for path, data in sorted(files.items()) if path.startswith(prefix) for line in data.splitlines()
    ]


def event_sink(client: Any, base: str, **kw: Any) -> HdfsEventTimeSink:
    fmt = kw.pop("time_format", TimeFormat())
    template = kw.pop("template", PartitionTemplate())
    return HdfsEventTimeSink(
        client=client, base=base, partitioner=EventTimePartitioner(EventTimeReader(fmt), template), **kw
    )


def test_raw_copy_is_byte_exact_and_rewrites_in_place(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack.loggen import generate

    create_topic(kafka_bootstrap, topic_name)
    values = [x.line for x in generate(900, seed=5)] + [b"caf\xc3\xa9 \xff raw bytes", b""]
    produce(kafka_bootstrap, topic_name, 0, values)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    small = HdfsRawSink(
        client=hdfs_client, base=hdfs_base, archive_format=ArchiveFormat(compression="none", max_records=200)
    )
    small.write(rng, read_range(consumer, rng))
    files = tree(hdfs_client, hdfs_base)
    assert len(files) == 5 and not any("/." in p for p in files)
    assert lines_of(files, topic_name) == values
    # Written again with other cuts: same content, no file twice, nothing stray.
    big = HdfsRawSink(
        client=hdfs_client, base=hdfs_base, archive_format=ArchiveFormat(compression="none", max_records=500)
    )
    result = big.write(rng, read_range(consumer, rng))
    files = tree(hdfs_client, hdfs_base)
    assert len(files) == 2 and len(result.removed) == 4  # 200, 400, 600, 800
    assert lines_of(files, topic_name) == values
    # Each file carries the archive's metadata (as an S3 object does): the offsets it covers, tiling the range.
    spans = []
    for path in sorted(files):
        meta = file_metadata(hdfs_client, f"{hdfs_base}/{path}")
        assert meta is not None, path
        spans.append((int(meta["logtap-start-offset"]), int(meta["logtap-end-offset"])))
        assert int(meta["logtap-record-count"]) == spans[-1][1] - spans[-1][0]
    assert spans == [(0, 500), (500, len(values))]
    assert file_metadata(hdfs_client, hdfs_base) is None  # a directory: none


def test_event_time_partitions_hold_exactly_each_lines_hour(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    """Several zone offsets and a date boundary: a line logged at 23:30 -0800 is in the next UTC day."""
    from datetime import datetime, timezone

    from devstack import loggen

    create_topic(kafka_bootstrap, topic_name, partitions=2)
    start = datetime(2015, 10, 28, 20, 0, tzinfo=timezone.utc)  # spans the 28th/29th boundary in most zones
    sent = loggen.produce(kafka_bootstrap, topic_name, loggen.generate(3000, seed=9, start=start, days=0.5))
    expected = Counter((s.event_utc.strftime("dt=%Y-%m-%d/hour=%H"), s.line) for s in sent)
    assert len({k for k, _ in expected}) >= 12
    for p in range(2):
        end = sum(1 for s in sent if s.partition == p)
        rng = OffsetRange(topic=topic_name, partition=p, start=0, end=end)
        result = event_sink(hdfs_client, hdfs_base).write(rng, read_range(consumer, rng))
        assert result.dead_letters == 0 and result.written == end
    files = tree(hdfs_client, hdfs_base)
    got = Counter()
    for path, data in files.items():
        if path.startswith(f"{topic_name}/dt="):
            partition_path = path[len(topic_name) + 1 :].rsplit("/", 1)[0]
            got.update((partition_path, line) for line in data.splitlines())
    assert got == expected
    late = b'1.2.3.4 - - [28/Oct/2015:23:30:00 -0800] "GET / HTTP/1.1" 200 5 "-" "-"'
    assert EventTimePartitioner(EventTimeReader(), PartitionTemplate()).split([late])[0] == {
        "dt=2015-10-29/hour=07": [late]
    }


def test_dead_letters_hold_exactly_the_undatable_lines(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack.loggen import generate

    create_topic(kafka_bootstrap, topic_name)
    good = [x.line for x in generate(200, seed=3)]
    bad = [
        b"no timestamp at all",
        b'1.1.1.1 - - [31/Feb/2015:10:00:00 +0000] "GET / HTTP/1.1" 200 1',
        b"\xff\xfe\x00",
    ]
    values = good[:100] + bad + good[100:]
    produce(kafka_bootstrap, topic_name, 0, values)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = event_sink(hdfs_client, hdfs_base).write(rng, read_range(consumer, rng))
    assert (result.dead_letters, result.written) == (3, 200)
    files = tree(hdfs_client, hdfs_base)
    [dead_path] = [p for p in files if p.startswith("_dead_letter/")]
    assert dead_path == f"_dead_letter/{topic_name}/partition=0/{topic_name}+0+{0:020d}.jsonl"
    records = [json.loads(line) for line in files[dead_path].splitlines()]
    assert [(r["offset"], r["topic"], r["partition"]) for r in records] == [
        (100, topic_name, 0),
        (101, topic_name, 0),
        (102, topic_name, 0),
    ]
    assert "no timestamp matches" in records[0]["reason"]
    assert "day out of range" in records[1]["reason"]
    assert records[2]["line_base64"] == "//4A"
    assert sorted(lines_of(files, f"{topic_name}/dt=")) == sorted(good)


def test_wrong_regex_fails_loudly_and_writes_nothing(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack.loggen import generate

    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [x.line for x in generate(300, seed=4)])
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=300)
    iso = TimeFormat.named("iso8601")  # the tap says ISO-8601, the logs are Apache's
    read: list[int] = []
    batches = counted_read(consumer, rng, read, batch_size=20)

    with pytest.raises(
        BadLineRatioError, match=r"offsets have lines without a readable event time \(stopped"
    ) as failed:
        event_sink(hdfs_client, hdfs_base, time_format=iso, max_bad_ratio=0.01).write(rng, batches)
    assert tree(hdfs_client, hdfs_base) == {}
    # It stopped once the ratio could no longer end below the limit: after 4 bad lines, not 300; and it names
    # the option that would read them.
    assert sum(read) <= 20
    assert "set date_format: apache" in str(failed.value)


class CrashOnRename:
    """The real client, except that the first ``crash_after`` renames succeed and the next one fails."""

    def __init__(self, client: Any, crash_after: int) -> None:
        self.client, self.left = client, crash_after

    def _crash(self) -> None:
        if self.left == 0:
            raise ConnectionError("simulated crash between temporary write and rename")
        self.left -= 1

    def rename(self, src: str, dst: str) -> None:
        self._crash()
        self.client.rename(src, dst)

    def _rename(self, src: str, **params: Any) -> Any:  # the request method of a rename with options
        self._crash()
        return self.client._rename(src, **params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_crash_before_rename_then_rerun_leaves_no_duplicate_or_stray_temp(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack.loggen import generate

    create_topic(kafka_bootstrap, topic_name)
    values = [x.line for x in generate(1500, seed=6)]
    produce(kafka_bootstrap, topic_name, 0, values[:1000])
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=1000)
    with pytest.raises(ConnectionError):
        event_sink(CrashOnRename(hdfs_client, 10), hdfs_base).write(rng, read_range(consumer, rng))
    crashed = tree(hdfs_client, hdfs_base)
    assert any(p.rsplit("/", 1)[1].startswith(".") for p in crashed)  # temporaries were left behind...
    visible = [
        p for p in crashed if p.startswith(f"{topic_name}/dt=") and not p.rsplit("/", 1)[1].startswith(".")
    ]
    assert visible  # ...and some files made it into place
    # The next run plans from the same committed offset to a later high watermark, with a new hour template.
    produce(kafka_bootstrap, topic_name, 0, values[1000:])
    longer = OffsetRange(topic=topic_name, partition=0, start=0, end=1500)
    daily = PartitionTemplate("dt=%Y-%m-%d")
    result = event_sink(hdfs_client, hdfs_base, template=daily).write(longer, read_range(consumer, longer))
    files = tree(hdfs_client, hdfs_base)
    assert not [p for p in files if p.rsplit("/", 1)[1].startswith(".")], "a temporary file is left"
    assert sorted(lines_of(files, f"{topic_name}/dt=")) == sorted(values)
    assert {p.rsplit("/", 1)[0] for p in files if p.startswith(f"{topic_name}/dt=")} == {
        f"{topic_name}/{p}" for p in result.partitions
    }
    manifest = json.loads(files[f"{topic_name}/_logtap/partition=0/{topic_name}+0+{0:020d}.json"])
    assert manifest["state"] == "complete" and manifest["end"] == 1500
