"""Observe partitions (log start, high-water mark, committed offsets, offsets for times) and commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import OFFSET_INVALID, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec  # type: ignore[attr-defined]

from airflow_provider_logtap.core.claims import Claim
from airflow_provider_logtap.core.conditions import PartitionLag, PartitionProgress, Retention
from airflow_provider_logtap.core.ranges import EndSpec, PartitionState, StartSpec
from airflow_provider_logtap.errors import ConfigurationError, LogtapError, UnknownTopicError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Committed:
    """A group's committed offset of one partition (``None``: nothing committed) and its claim."""

    offset: int | None
    claim: Claim | None
    metadata: str | None


# Seconds one ListOffsets request may take: librdkafka waits that long at a leader that died before it answers
# "no offset" (OFFSET_INVALID), and the request is retried after a metadata refresh (see _list_offsets).
LIST_OFFSETS_ATTEMPT_SECONDS = 5.0


def partitions_of(admin: AdminClient, topic: str, timeout: float = 30.0) -> list[int]:
    metadata = admin.list_topics(topic=topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = info.error if info is not None and info.error is not None else "unknown topic"
        raise UnknownTopicError(
            f"topic {topic!r} cannot be read ({reason}). Check the topic name and that the Kafka "
            "connection's bootstrap.servers point at the right cluster."
        )
    return sorted(info.partitions)


def _list_offsets(
    admin: AdminClient, topic: str, specs: Mapping[int, Any], isolation: str, timeout: float
) -> dict[int, int]:
    if not specs:
        return {}
    level = (
        IsolationLevel.READ_COMMITTED if isolation == "read_committed" else IsolationLevel.READ_UNCOMMITTED
    )

    def ask() -> dict[int, int]:
        futures = admin.list_offsets(
            {TopicPartition(topic, p): spec for p, spec in specs.items()},
            isolation_level=level,
            request_timeout=min(timeout, LIST_OFFSETS_ATTEMPT_SECONDS),
        )
        found = {tp.partition: int(future.result().offset) for tp, future in futures.items()}
        if any(o == OFFSET_INVALID for o in found.values()):
            # librdkafka's answer when the request timed out at a partition leader that died: it keeps asking
            # the dead leader until its metadata is refreshed, so refresh it before the retry.
            admin.list_topics(topic=topic, timeout=min(timeout, LIST_OFFSETS_ATTEMPT_SECONDS))
            unanswered = sorted(p for p, o in found.items() if o == OFFSET_INVALID)
            raise _Retriable(f"no answer from the leader of partitions {unanswered} (a leader election?)")
        return found

    return _retrying(ask, f"list offsets of {topic}")


def watermarks(
    admin: AdminClient,
    topic: str,
    partitions: Sequence[int],
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> dict[int, tuple[int, int]]:
    """``{partition: (log start, high-water mark)}``; under ``read_committed`` the end is the last stable
    offset, the end a transactional reader can reach."""
    low = _list_offsets(admin, topic, {p: OffsetSpec.earliest() for p in partitions}, isolation, timeout)
    high = _list_offsets(admin, topic, {p: OffsetSpec.latest() for p in partitions}, isolation, timeout)
    return {p: (low[p], high[p]) for p in partitions}


def offsets_for_time(
    admin: AdminClient,
    topic: str,
    partitions: Sequence[int],
    timestamp_ms: int,
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> dict[int, int | None]:
    """The first offset whose timestamp is >= ``timestamp_ms`` per partition (``None``: no such record)."""
    found = _list_offsets(
        admin, topic, {p: OffsetSpec.for_timestamp(timestamp_ms) for p in partitions}, isolation, timeout
    )
    return {p: (o if o >= 0 else None) for p, o in found.items()}


def topic_retention(admin: AdminClient, topic: str, timeout: float = 30.0) -> Retention:
    """The topic's effective ``retention.ms``, ``retention.bytes`` and ``cleanup.policy`` (broker defaults
    included), as :class:`Retention`."""

    def ask() -> dict[str, Any]:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        future = admin.describe_configs([resource], request_timeout=timeout)[resource]
        return {name: entry.value for name, entry in future.result().items()}

    config = _retrying(ask, f"describe the configuration of {topic}")

    def limit(name: str) -> int | None:
        value = config.get(name)
        return None if value is None or int(value) < 0 else int(value)

    return Retention(
        ms=limit("retention.ms"),
        bytes=limit("retention.bytes"),
        deletes="delete" in str(config.get("cleanup.policy", "delete")).split(","),
    )


class _Retriable(Exception):
    pass


# Errors that pass: a group coordinator moving or still loading (e.g. right after a broker start, while
# __consumer_offsets is created), a leader election, a timeout. librdkafka does not flag all of them retriable.
_TRANSIENT = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._WAIT_COORD,
}


def _transient(error: object) -> bool:
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _TRANSIENT)


def _retrying(call: Callable[[], T], what: str, deadline: float = 60.0) -> T:
    """``call()``, retried with backoff while Kafka answers with a retriable error (a group coordinator that
    is moving or still loading, a leader election) for up to ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    delay = 0.2
    while True:
        try:
            return call()
        except (KafkaException, _Retriable) as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(exc, _Retriable) or _transient(error)
            if not retriable or time.monotonic() + delay > give_up:
                raise LogtapError(f"could not {what}: {error}") from exc
            log.info("could not %s yet (%s); retrying in %.1fs", what, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _check(tps: list[Any], topic: str) -> list[Any]:
    """Raise for a per-partition error (retriable ones as :class:`_Retriable`, so :func:`_retrying` retries)."""
    for tp in tps:
        if tp.error is not None:
            if _transient(tp.error):
                raise _Retriable(tp.error)
            raise LogtapError(f"{topic}[{tp.partition}]: {tp.error}")
    return tps


def committed_offsets(
    consumer: Any, topic: str, partitions: Iterable[int], timeout: float = 30.0
) -> dict[int, Committed]:
    """The group's committed offsets (and logtap claims) for ``partitions``."""
    wanted = [TopicPartition(topic, p) for p in partitions]
    tps = _retrying(
        lambda: _check(consumer.committed(wanted, timeout=timeout), topic),
        f"read committed offsets of {topic}",
    )
    out: dict[int, Committed] = {}
    for tp in tps:
        offset = None if tp.offset == OFFSET_INVALID or tp.offset < 0 else int(tp.offset)
        metadata = getattr(tp, "metadata", None)
        out[tp.partition] = Committed(offset=offset, claim=Claim.decode(metadata), metadata=metadata)
    return out


def commit_offsets(consumer: Any, topic: str, offsets: Mapping[int, tuple[int, str]]) -> None:
    """Commit ``{partition: (offset, metadata)}`` synchronously; raise if any partition failed."""
    if not offsets:
        return
    wanted = [TopicPartition(topic, p, o, metadata=m) for p, (o, m) in sorted(offsets.items())]
    _retrying(
        lambda: _check(consumer.commit(offsets=wanted, asynchronous=False) or [], topic),
        f"commit offsets of {topic}",
    )


def observe(
    admin: AdminClient,
    consumer: Any,
    *,
    topic: str,
    start: StartSpec,
    end: EndSpec,
    partitions: Sequence[int] | None = None,
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> tuple[list[PartitionState], dict[int, Committed]]:
    """Everything the planner needs of ``topic``'s partitions, observed now."""
    existing = partitions_of(admin, topic, timeout)
    if partitions is not None:
        unknown = sorted(set(partitions) - set(existing))
        if unknown:
            raise ConfigurationError(f"partitions {unknown} do not exist in {topic!r} (it has {existing})")
        chosen = sorted(set(partitions))
    else:
        chosen = existing
    marks = watermarks(admin, topic, chosen, isolation, timeout)
    committed = committed_offsets(consumer, topic, chosen, timeout) if start.kind == "committed" else {}
    start_ts = (
        offsets_for_time(admin, topic, chosen, start.timestamp_ms, isolation, timeout)
        if start.timestamp_ms is not None
        else {}
    )
    end_ts = (
        offsets_for_time(admin, topic, chosen, end.timestamp_ms, isolation, timeout)
        if end.timestamp_ms is not None
        else {}
    )
    states = [
        PartitionState(
            partition=p,
            log_start=marks[p][0],
            high_watermark=marks[p][1],
            committed=committed[p].offset if p in committed else None,
            start_at_timestamp=start_ts.get(p),
            end_at_timestamp=end_ts.get(p),
        )
        for p in chosen
    ]
    return states, committed


def record_timestamp(
    consumer: Any, topic: str, partition: int, offset: int, timeout: float = 10.0
) -> int | None:
    """The Kafka timestamp (ms) of the first record at or after ``offset`` (``None``: none within ``timeout``)."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    return None
                continue
            return int(message.timestamp()[1])
        return None
    finally:
        consumer.unassign()


def group_lag(
    admin: AdminClient, consumer: Any, *, topic: str, oldest: bool = True, timeout: float = 30.0
) -> list[PartitionLag]:
    """Lag of the consumer's group on every partition of ``topic``, with the oldest unconsumed record's time."""
    partitions = partitions_of(admin, topic, timeout)
    marks = watermarks(admin, topic, partitions, timeout=timeout)
    committed = committed_offsets(consumer, topic, partitions, timeout)
    out = []
    for p in partitions:
        low, high = marks[p]
        lag = PartitionLag(partition=p, committed=committed[p].offset, log_start=low, end=high)
        if oldest and lag.lag:
            lag = PartitionLag(
                partition=p,
                committed=lag.committed,
                log_start=low,
                end=high,
                oldest_unconsumed_ms=record_timestamp(consumer, topic, p, lag.position),
            )
        out.append(lag)
    return out


def progress_after(
    admin: AdminClient, consumer: Any, *, topic: str, after_ms: int, timeout: float = 30.0
) -> list[PartitionProgress]:
    """Per partition: is there a record stamped at or after ``after_ms``, is the partition empty, and when was
    its last record stamped."""
    partitions = partitions_of(admin, topic, timeout)
    marks = watermarks(admin, topic, partitions, timeout=timeout)
    found = offsets_for_time(admin, topic, partitions, after_ms, timeout=timeout)
    out = []
    for p in partitions:
        low, high = marks[p]
        empty = high <= low
        last = None if empty or found[p] is not None else record_timestamp(consumer, topic, p, high - 1)
        out.append(
            PartitionProgress(
                partition=p, has_record_at_or_after=found[p] is not None, empty=empty, last_record_ms=last
            )
        )
    return out
