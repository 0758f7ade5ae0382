"""Read exactly the records of one range with ``assign()``: bounded memory, offset gaps, progress."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from airflow_provider_logtap._kernel import unpack
from airflow_provider_logtap.core.batch import RecordBatch, value_bytes
from airflow_provider_logtap.core.progress import Progress
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import DataLossError, LogtapError, one_of

log = logging.getLogger(__name__)

# Records per consume call: small enough that a call rarely waits for its batch to fill, large enough to amortise
# the call (bench/s3_archive.py).
DEFAULT_BATCH_SIZE = 2000
# Seconds between progress lines of a read (the first one comes early, see core.progress.Progress).
PROGRESS_SECONDS = 15.0

_RETENTION_ERRORS = {KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET}


class ReadStalledError(LogtapError):
    """The broker delivered nothing for a long time while offsets of the range were still missing."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC for one consume call: it allocates thousands of tracked objects (no cycles), and
    collections in between would traverse them again and again. Never across a ``yield``: a read abandoned by
    its caller must not leave the collector off."""
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
    batch_size: int = DEFAULT_BATCH_SIZE,
    poll_timeout: float = 0.2,
    stall_timeout: float = 120.0,
    on_data_loss: str = "fail",
    progress_seconds: float = PROGRESS_SECONDS,
    report: Callable[[str], None] = log.info,
) -> Iterator[RecordBatch]:
    """Yield the records of ``rng`` in offset order, in batches of at most ``batch_size``.

    Stops exactly at ``rng.end``: records at or beyond it are dropped, and offsets without a record (compaction,
    transaction markers, aborted transactions) are recognised when the reader reaches a later record or the
    end of the log. When retention deletes offsets the range still needs, raises :class:`DataLossError` or,
    under ``on_data_loss='log_start'``, skips to the new log start and reports the lost range on the next
    batch. ``consumer`` must be configured by :func:`airflow_provider_logtap.kafka.client.reader_config`.

    Progress goes to ``report``: a line every ``progress_seconds``, the first with the first batch at least
    :data:`~airflow_provider_logtap.core.progress.FIRST_LINE_AFTER` (1 s) into the read, and a final line.
    """
    one_of("on_data_loss", on_data_loss, ("fail", "log_start"))
    if rng.empty:
        return
    topic, partition, end = rng.topic, rng.partition, rng.end
    consumer.assign([TopicPartition(topic, partition, rng.start)])
    progress = Progress(rng=rng, interval=progress_seconds)
    position = rng.start  # the next offset still needed
    lost: OffsetRange | None = None
    last_delivery = time.monotonic()
    try:
        while position < end:
            with gc_paused():  # while consume() makes a tracked Message per record (bench/README.md)
                messages = consumer.consume(min(batch_size, end - position), poll_timeout)
            if not messages:
                if time.monotonic() - last_delivery > stall_timeout:
                    raise ReadStalledError(
                        f"{rng}: nothing delivered for {stall_timeout:.0f}s at offset {position}. An open "
                        "transaction may hold the last stable offset back, or the broker is unreachable."
                    )
                continue
            last_delivery = time.monotonic()
            reached_end = False
            # one pass in the kernel: the records' values, their bytes and tombstones, and the events
            values, nbytes, tombstones, events = unpack(messages)
            if events:
                for event in [messages[i] for i in events]:
                    err = event.error()
                    code = err.code()
                    if code == KafkaError._PARTITION_EOF:
                        # At the end of the log: the offsets up to it hold no further record.
                        reached_end = reached_end or event.offset() >= end
                    elif code in _RETENTION_ERRORS:
                        gone = _lost_range(consumer, rng, position, err, on_data_loss)
                        report(f"{rng}: offsets {gone.start}-{gone.end - 1} LOST to retention while reading")
                        lost, position, messages = gone, gone.end, []
                        consumer.assign([TopicPartition(topic, partition, position)])
                        break
                    else:
                        raise LogtapError(f"{rng}: Kafka error at offset {position}: {err}")
                if messages:
                    skip = set(events)
                    messages = [m for i, m in enumerate(messages) if i not in skip]
                else:
                    values = []
            first = 0
            last = len(messages)
            if messages and messages[0].offset() < position:  # re-delivered after a re-assign
                first = bisect_left(messages, position, key=_offset)
            if last > first and messages[-1].offset() >= end:
                last = bisect_left(messages, end, lo=first, key=_offset)
                reached_end = True
            if (first, last) != (0, len(messages)):
                messages, values = messages[first:last], values[first:last]
                nbytes, tombstones = value_bytes(values), values.count(None)
            if messages:
                batch = RecordBatch.of_records(topic, partition, messages, values, nbytes, tombstones, lost)
                lost = None
                position = messages[-1].offset() + 1
                line = progress.update(len(messages), nbytes, position)
                if line:
                    report(line)
                yield batch
            if reached_end:
                position = end
        if lost is not None:  # the range ended inside the lost part
            yield RecordBatch(topic, partition, [], lost)
        progress.update(0, 0, position)  # at the end, also when the last offsets held no record
        report(progress.line() + " (complete)")
    finally:
        with contextlib.suppress(RuntimeError):  # the caller closed the consumer first: nothing to unassign
            consumer.unassign()


def _offset(message: Any) -> int:
    return int(message.offset())


def _lost_range(
    consumer: Any,
    rng: OffsetRange,
    position: int,
    err: Any,
    on_data_loss: str,
) -> OffsetRange:
    """The offsets retention deleted under the reader, or :class:`DataLossError` under ``fail``."""
    log_start = _log_start(consumer, rng)
    if log_start <= position:
        raise LogtapError(f"{rng}: offset {position} out of range ({err})")
    if on_data_loss == "fail":
        raise DataLossError(
            topic=rng.topic,
            partition=rng.partition,
            start=position,
            log_start=min(log_start, rng.end),
            hint="It was deleted while this load was reading. Records read so far were not committed. "
            + _LOSS_HINT,
        )
    return OffsetRange(topic=rng.topic, partition=rng.partition, start=position, end=min(log_start, rng.end))


_LOSS_HINT = (
    "To accept the loss and continue from the log start, set on_data_loss='log_start'; to keep it from "
    "happening again, load more often or raise the topic's retention.ms."
)


def _log_start(consumer: Any, rng: OffsetRange) -> int:
    low, _high = consumer.get_watermark_offsets(
        TopicPartition(rng.topic, rng.partition), timeout=30, cached=False
    )
    return int(low)
