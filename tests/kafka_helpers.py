"""Producing test data into the real broker (helpers, not fixtures)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(
        [NewTopic(topic, partitions, 1, config=config)], operation_timeout=30
    ).values():
        f.result()


def produce(
    bootstrap: str,
    topic: str,
    partition: int,
    values: Sequence[bytes | None],
    timestamps: Sequence[int] | None = None,
) -> list[int]:
    """Produce ``values`` into one partition, in order; returns their offsets."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    offsets: list[int] = []

    def done(err, msg) -> None:  # type: ignore[no-untyped-def]
        assert err is None, err
        offsets.append(msg.offset())

    for i, v in enumerate(values):
        kwargs = {"timestamp": timestamps[i]} if timestamps is not None else {}
        producer.produce(topic, v, partition=partition, on_delivery=done, **kwargs)
        producer.poll(0)
    assert producer.flush(30) == 0
    return sorted(offsets)


def produce_transactions(
    bootstrap: str,
    topic: str,
    partition: int,
    batches: Sequence[tuple[list[bytes], bool]],
) -> None:
    """Each ``(values, commit)`` is one transaction, committed or aborted: leaves markers and aborted records."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{topic}-{partition}"})
    producer.init_transactions(30)
    for values, commit in batches:
        producer.begin_transaction()
        for v in values:
            producer.produce(topic, v, partition=partition)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)
            producer.abort_transaction(30)


def delete_records(bootstrap: str, topic: str, partition: int, before: int) -> None:
    """Advance the log start offset to ``before``, as retention would."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.delete_records([TopicPartition(topic, partition, before)], request_timeout=30).values():
        f.result()


def counted_read(consumer: Any, rng: Any, read: list[int], batch_size: int) -> Iterator[Any]:
    """``read_range`` in batches of ``batch_size``, noting in ``read`` how many records each batch held (to
    show how much of a range a sink read before it stopped)."""
    from airflow_provider_logtap.kafka.reader import read_range

    for batch in read_range(consumer, rng, batch_size=batch_size):
        read.append(len(batch))
        yield batch
