"""The S3 archive sink against a real S3 API server, fed by a real broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.archive import ArchiveFormat, read_lines
from airflow_provider_logtap.sinks.s3 import S3ArchiveSink, StaleObjectConflict


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-s3"))
    yield c
    c.close()


def keys(s3_client, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


def archived(s3_client, bucket: str, prefix: str = "") -> list[bytes]:  # type: ignore[no-untyped-def]
    lines: list[bytes] = []
    for key in keys(s3_client, bucket):
        if key.startswith(prefix):
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
            lines += read_lines(body, "zstd" if key.endswith(".zst") else "gzip")
    return lines


def write(sink: S3ArchiveSink, consumer: Consumer, rng: OffsetRange, **kw: object):  # type: ignore[no-untyped-def]
    return sink.write(rng, read_range(consumer, rng, **kw))  # type: ignore[arg-type]


def test_archive_is_byte_exact_per_partition(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, s3_client, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    from devstack.loggen import generate

    create_topic(kafka_bootstrap, topic_name, partitions=3)
    odd = [b"caf\xc3\xa9 \xff\xfe not utf-8", b"", b"  spaces  ", "ünïcødé".encode()]
    sent: dict[int, list[bytes]] = {}
    for p in range(3):
        values = [x.line for x in generate(400, seed=p)] + odd
        produce(kafka_bootstrap, topic_name, p, values)
        sent[p] = values
    sink = S3ArchiveSink(
        client=s3_client, bucket=bucket, prefix="archive/raw", archive_format=ArchiveFormat(max_records=150)
    )
    for p in range(3):
        result = write(sink, consumer, OffsetRange(topic=topic_name, partition=p, start=0, end=404))
        assert result.written == 404 and result.counts["invalid_utf8"] == 1
        assert len(result.objects) == 3
    for p in range(3):
        assert archived(s3_client, bucket, f"archive/raw/{topic_name}/partition={p}/") == sent[p]
    first = f"archive/raw/{topic_name}/partition=1/{topic_name}+1+{0:020d}.log.gz"
    head = s3_client.head_object(Bucket=bucket, Key=first)
    assert head["Metadata"]["logtap-start-offset"] == "0"
    assert head["Metadata"]["logtap-end-offset"] == "150"
    assert head["Metadata"]["logtap-record-count"] == "150"
    assert int(head["Metadata"]["logtap-first-timestamp"]) > 1_600_000_000_000
    assert head["ContentType"] == "application/gzip"


def test_rewriting_a_range_never_duplicates(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, s3_client, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name)
    values = [b"line-%04d" % i for i in range(500)]
    produce(kafka_bootstrap, topic_name, 0, values)
    # A first attempt wrote [0, 300) in small objects and was never committed.
    small = S3ArchiveSink(client=s3_client, bucket=bucket, archive_format=ArchiveFormat(max_records=70))
    write(small, consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=300))
    assert len(keys(s3_client, bucket)) == 5
    # The next run plans from the same committed offset to a later high watermark, with another object size.
    big = S3ArchiveSink(client=s3_client, bucket=bucket, archive_format=ArchiveFormat(max_records=200))
    result = write(big, consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=500))
    assert len(result.objects) == 3 and len(result.removed) == 4  # 70, 140, 210, 280
    assert archived(s3_client, bucket) == values
    # The same range again: same keys, same content.
    again = write(big, consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=500))
    assert again.objects == result.objects and again.removed == ()
    assert archived(s3_client, bucket) == values


def test_rewrite_touches_nothing_outside_its_range(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, s3_client, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name)
    values = [b"v%d" % i for i in range(300)]
    produce(kafka_bootstrap, topic_name, 0, values)
    sink = S3ArchiveSink(client=s3_client, bucket=bucket, archive_format=ArchiveFormat(compression="zstd"))
    for start, end in ((0, 100), (100, 200), (200, 300)):
        write(sink, consumer, OffsetRange(topic=topic_name, partition=0, start=start, end=end))
    before = keys(s3_client, bucket)
    write(sink, consumer, OffsetRange(topic=topic_name, partition=0, start=100, end=200))
    assert keys(s3_client, bucket) == before and len(before) == 3
    assert archived(s3_client, bucket) == values


def test_loss_while_rewriting_keeps_the_only_copy(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, s3_client, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    """Retention deleted the start of a range archived before: the archived objects are the last copy."""
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"v%d" % i for i in range(100)])
    sink = S3ArchiveSink(client=s3_client, bucket=bucket, archive_format=ArchiveFormat(max_records=30))
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=100)
    write(sink, consumer, rng)
    delete_records(kafka_bootstrap, topic_name, 0, 45)
    with pytest.raises(StaleObjectConflict, match="They were kept"):
        write(sink, consumer, rng, on_data_loss="log_start")
    assert f"{topic_name}+0+{0:020d}.log.gz" in " ".join(keys(s3_client, bucket))


def test_prefix_cannot_escape(s3_client, bucket: str) -> None:  # type: ignore[no-untyped-def]
    from airflow_provider_logtap.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unsafe segment"):
        S3ArchiveSink(client=s3_client, bucket=bucket, prefix="../other")


def test_server_side_encryption_reaches_every_object_single_and_multipart(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, s3_client, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    """The target's encryption settings are sent on the single PUT, the multipart upload and the metadata copy
    (a copy without them would re-encrypt the object with the bucket's default)."""
    import os

    from airflow_provider_logtap.sinks.s3 import MIN_PART_SIZE
    from airflow_provider_logtap.targets.s3_archive import S3ArchiveTarget

    create_topic(kafka_bootstrap, topic_name, partitions=1)
    # Incompressible values: the first object (cut at 60 records) is above one part, the second a single PUT.
    values = [os.urandom(100_000).hex().encode() for _ in range(70)]
    produce(kafka_bootstrap, topic_name, 0, values)
    target = S3ArchiveTarget.of(
        bucket=bucket,
        server_side_encryption="aws:kms",
        sse_kms_key_id="alias/logtap-test",
        compression="none",
    )
    sink = S3ArchiveSink(
        client=s3_client,
        bucket=bucket,
        archive_format=ArchiveFormat(compression="none", max_records=60),
        part_size=MIN_PART_SIZE,
        object_args=target.encryption_args(),
    )
    write(sink, consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=70))
    heads = [s3_client.head_object(Bucket=bucket, Key=k) for k in keys(s3_client, bucket)]
    assert [h["ContentLength"] > MIN_PART_SIZE for h in heads] == [True, False]
    assert [(h["ServerSideEncryption"], h["SSEKMSKeyId"]) for h in heads] == [
        ("aws:kms", "alias/logtap-test")
    ] * 2
    assert all(h["Metadata"]["logtap-end-offset"] for h in heads)  # the multipart object's final metadata
    bodies = [s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys(s3_client, bucket)]
    assert [line for body in bodies for line in read_lines(body, "none")] == values
