"""Read exactly the records of one range with ``assign()``: bounded memory, offset gaps, progress."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.progress import Progress
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import DataLossError, LogtapError, one_of

log = logging.getLogger(__name__)

_RETENTION_ERRORS = {KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET}


class ReadStalledError(LogtapError):
    """The broker delivered nothing for a long time while offsets of the range were still missing."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while consuming: batches allocate many short-lived tracked objects, no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_range(
    consumer: Any,
    rng: OffsetRange,
    *,
    batch_size: int = 10_000,
    poll_timeout: float = 0.2,
    stall_timeout: float = 120.0,
    on_data_loss: str = "fail",
    progress_interval: float = 15.0,
    report: Callable[[str], None] = log.info,
    watermarks: Callable[[OffsetRange], tuple[int, int]] | None = None,
) -> Iterator[RecordBatch]:
    """Yield the records of ``rng`` in offset order, in batches of at most ``batch_size``.

    Stops exactly at ``rng.end``: records at or beyond it are dropped, and offsets without a record (compaction,
    transaction markers, aborted transactions) are recognised when the reader reaches a later record or the
    end of the log. When retention deletes offsets the range still needs, raises :class:`DataLossError` or,
    under ``on_data_loss='log_start'``, skips to the new log start and reports the lost range on the next
    batch. ``consumer`` must be configured by :func:`airflow_provider_logtap.kafka.client.reader_config`.
    """
    one_of("on_data_loss", on_data_loss, ("fail", "log_start"))
    if rng.empty:
        return
    topic, partition, end = rng.topic, rng.partition, rng.end
    consumer.assign([TopicPartition(topic, partition, rng.start)])
    progress = Progress(rng=rng, interval=progress_interval)
    position = rng.start  # the next offset still needed
    lost = None
    last_delivery = time.monotonic()
    try:
        with gc_paused():
            while position < end:
                messages = consumer.consume(min(batch_size, end - position), poll_timeout)
                if not messages:
                    if time.monotonic() - last_delivery > stall_timeout:
                        raise ReadStalledError(
                            f"{rng}: nothing delivered for {stall_timeout:.0f}s at offset {position}. An open "
                            "transaction may hold the last stable offset back, or the broker is unreachable."
                        )
                    continue
                last_delivery = time.monotonic()
                offsets: list[int] = []
                values: list[bytes | None] = []
                stamps: list[int] = []
                reached_end = False
                for m in messages:
                    err = m.error()
                    if err is not None:
                        code = err.code()
                        if code == KafkaError._PARTITION_EOF:
                            # The reader is at the end of the log: offsets up to it hold no further record.
                            if m.offset() >= end:
                                reached_end = True
                            continue
                        if code in _RETENTION_ERRORS:
                            log_start = _log_start(consumer, rng, watermarks)
                            if log_start <= position:
                                raise LogtapError(f"{rng}: offset {position} out of range ({err})")
                            if on_data_loss == "fail":
                                raise DataLossError(
                                    topic=topic,
                                    partition=partition,
                                    start=position,
                                    log_start=min(log_start, end),
                                    hint="It was deleted while this load was reading. "
                                    "Records read so far were not committed. " + _LOSS_HINT,
                                )
                            lost = OffsetRange(
                                topic=topic, partition=partition, start=position, end=min(log_start, end)
                            )
                            report(
                                f"{rng}: offsets {lost.start}-{lost.end - 1} LOST to retention while reading"
                            )
                            position = lost.end
                            consumer.assign([TopicPartition(topic, partition, position)])
                            break
                        raise LogtapError(f"{rng}: Kafka error at offset {position}: {err}")
                    offset = m.offset()
                    if offset >= end:
                        reached_end = True
                        break
                    if offset < position:  # a re-delivery after a re-assign
                        continue
                    offsets.append(offset)
                    values.append(m.value())
                    stamps.append(m.timestamp()[1])
                if offsets:
                    position = offsets[-1] + 1
                    nbytes = _size(values)
                    line = progress.update(len(offsets), nbytes, position)
                    if line:
                        report(line)
                    yield RecordBatch(topic, partition, offsets, values, stamps, lost)
                    lost = None
                if reached_end:
                    position = end
        if lost is not None:  # the range ended inside the lost part
            yield RecordBatch(topic, partition, [], [], [], lost)
        report(progress.line() + " (complete)")
    finally:
        consumer.unassign()


def _size(values: list[bytes | None]) -> int:
    if None in values:
        return sum(len(v) for v in values if v is not None)
    return sum(map(len, values))  # type: ignore[arg-type]


_LOSS_HINT = (
    "To accept the loss and continue from the log start, set on_data_loss='log_start'; to keep it from "
    "happening again, load more often or raise the topic's retention.ms."
)


def _log_start(
    consumer: Any, rng: OffsetRange, watermarks: Callable[[OffsetRange], tuple[int, int]] | None
) -> int:
    if watermarks is not None:
        return watermarks(rng)[0]
    low, _high = consumer.get_watermark_offsets(
        TopicPartition(rng.topic, rng.partition), timeout=30, cached=False
    )
    return int(low)
