"""Reading exact ranges from a real Kafka broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer
from kafka_helpers import create_topic, delete_records, produce, produce_transactions

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import DataLossError
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-reader"))
    yield c
    c.close()


def read_all(consumer: Consumer, rng: OffsetRange, **kw: object) -> list[RecordBatch]:
    return list(read_range(consumer, rng, **kw))  # type: ignore[arg-type]


def flat(batches: list[RecordBatch]) -> list[tuple[int, bytes | None]]:
    return [(o, v) for b in batches for o, v in zip(b.offsets, b.values, strict=True)]


def test_reads_exactly_the_range_of_each_partition(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    for p in range(3):
        produce(kafka_bootstrap, topic_name, p, [f"p{p}-{i}".encode() for i in range(50)])
    for p in range(3):
        rng = OffsetRange(topic=topic_name, partition=p, start=7, end=31)
        got = flat(read_all(consumer, rng, batch_size=5))
        assert got == [(o, f"p{p}-{o}".encode()) for o in range(7, 31)]


def test_batches_are_bounded_and_in_order(kafka_bootstrap: str, topic_name: str, consumer: Consumer) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x%d" % i for i in range(1000)])
    batches = read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=1000), batch_size=64)
    assert all(1 <= len(b) <= 64 for b in batches)
    assert [o for b in batches for o in b.offsets] == list(range(1000))
    assert all(b.timestamps[0] > 0 for b in batches)


def test_empty_range_and_empty_partition(kafka_bootstrap: str, topic_name: str, consumer: Consumer) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"a", b"b"])
    assert read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=1, end=1)) == []
    assert read_all(consumer, OffsetRange(topic=topic_name, partition=1, start=0, end=0)) == []


def test_tombstones_are_delivered_as_none(kafka_bootstrap: str, topic_name: str, consumer: Consumer) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"a", None, b"\xff\xfe"])
    assert flat(read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=3))) == [
        (0, b"a"),
        (1, None),
        (2, b"\xff\xfe"),
    ]


def test_transaction_markers_and_aborted_records_leave_gaps(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    """Offsets without a delivered record (commit/abort markers, aborted records) end the range cleanly."""
    create_topic(kafka_bootstrap, topic_name)
    produce_transactions(
        kafka_bootstrap,
        topic_name,
        0,
        [
            ([b"c1", b"c2"], True),  # offsets 0,1 + marker 2
            ([b"a1", b"a2"], False),  # offsets 3,4 aborted + marker 5
            ([b"c3"], True),  # offset 6 + marker 7
        ],
    )
    got = flat(read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=8)))
    assert got == [(0, b"c1"), (1, b"c2"), (6, b"c3")]
    # A range ending inside the gap stops without waiting for records that will never come.
    assert flat(
        read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=1, end=5), stall_timeout=20)
    ) == [(1, b"c2")]
    # A range entirely inside a gap is read as empty.
    assert (
        read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=3, end=6), stall_timeout=20) == []
    )


def test_stops_at_end_while_the_log_goes_on(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(300)])
    batches = read_all(
        consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=100), batch_size=1000
    )
    assert [o for b in batches for o in b.offsets] == list(range(100))


def test_data_deleted_before_reading_fails_loudly(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(100)])
    delete_records(kafka_bootstrap, topic_name, 0, 40)
    with pytest.raises(DataLossError, match=rf"{topic_name}\[0\]: offsets \[10, 40\) \(30 records\)"):
        read_all(consumer, OffsetRange(topic=topic_name, partition=0, start=10, end=60))


def test_data_deleted_before_reading_with_log_start_policy(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(100)])
    delete_records(kafka_bootstrap, topic_name, 0, 40)
    batches = read_all(
        consumer, OffsetRange(topic=topic_name, partition=0, start=10, end=60), on_data_loss="log_start"
    )
    assert [o for b in batches for o in b.offsets] == list(range(40, 60))
    lost = [b.lost for b in batches if b.lost is not None]
    assert lost == [OffsetRange(topic=topic_name, partition=0, start=10, end=40)]


def test_a_half_read_range_closed_after_its_consumer_ends_quietly(
    kafka_bootstrap: str, topic_name: str
) -> None:
    """A caller that closes the consumer before the generator it was reading (a ``break`` out of the loop, then
    ``consumer.close()``) gets no "Consumer closed" error from the generator's clean-up."""
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x%d" % i for i in range(100)])
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-reader"))
    batches = read_range(c, OffsetRange(topic=topic_name, partition=0, start=0, end=100), batch_size=10)
    assert next(batches).offsets[0] == 0
    c.close()
    batches.close()  # raised RuntimeError("Consumer closed") from the generator's finally before


def test_the_collector_runs_while_a_read_waits_for_its_caller(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    """The GC is paused for each consume call only: a read suspended between batches, or abandoned by its
    caller inside a reference cycle (an exception's traceback holding the frame that holds the generator),
    leaves the collector on, and the collector then finalises the abandoned read."""
    import gc

    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x%d" % i for i in range(100)])
    assert gc.isenabled()
    batches = read_range(
        consumer, OffsetRange(topic=topic_name, partition=0, start=0, end=100), batch_size=10
    )
    for batch in batches:
        assert gc.isenabled(), f"GC off at offset {batch.offsets[0]}, while the caller holds the batch"
        break

    class Holder:
        pass

    holder = Holder()
    holder.self, holder.read = holder, batches  # type: ignore[attr-defined]
    del holder, batches  # only the cycle holds the suspended read now
    assert consumer.assignment(), "the suspended read holds its assignment"
    assert gc.isenabled()
    gc.collect()
    assert consumer.assignment() == [], "the abandoned read was not finalised (its finally unassigns)"
    assert gc.isenabled()
