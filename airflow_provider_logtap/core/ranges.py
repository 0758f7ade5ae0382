"""Half-open offset ranges ``[start, end)`` of one topic partition, and the plan that makes them.

A plan is made once per run from a *start spec* and an *end spec* and the state of each partition observed at
plan time (:class:`PartitionState`); it is then stored (XCom) and reused unchanged when a task retries. The
planning here is pure: the Kafka client layer observes the partitions and resolves timestamps to offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from airflow_provider_logtap.errors import ConfigurationError, DataLossError, one_of

TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
OnDataLoss = Literal["fail", "log_start"]
ON_DATA_LOSS: tuple[str, ...] = get_args(OnDataLoss)


def check_topic(topic: object) -> str:
    if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic) or topic in (".", ".."):
        raise ConfigurationError(f"topic must be a Kafka topic name (1-249 of [A-Za-z0-9._-]). Got {topic!r}")
    return topic


#: Kafka's largest offset (an int64) and partition number (an int32).
MAX_OFFSET = 2**63 - 1
MAX_PARTITION = 2**31 - 1


def _check_int(name: str, value: object, minimum: int = 0, maximum: int = MAX_OFFSET) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum} and <= {maximum}. Got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class OffsetRange:
    """The offsets ``[start, end)`` of one topic partition.

    ``end - start`` is an upper bound of the records inside: compacted topics and transaction markers leave
    offsets without a record.
    """

    topic: str
    partition: int
    start: int
    end: int

    def __post_init__(self) -> None:
        check_topic(self.topic)
        _check_int("partition", self.partition, maximum=MAX_PARTITION)
        _check_int("start", self.start)
        _check_int("end", self.end)
        if self.end < self.start:
            raise ConfigurationError(
                f"An offset range must have start <= end. Got [{self.start}, {self.end}) for "
                f"{self.topic}[{self.partition}]"
            )

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def empty(self) -> bool:
        return self.end == self.start

    def __contains__(self, offset: object) -> bool:
        return isinstance(offset, int) and self.start <= offset < self.end

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] [{self.start}, {self.end})"

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OffsetRange:
        if isinstance(data, OffsetRange):
            return data
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"An offset range must be a mapping with topic, partition, start, end. Got {data!r}"
            )
        missing = {"topic", "partition", "start", "end"} - set(data)
        if missing:
            raise ConfigurationError(f"An offset range lacks {sorted(missing)}. Got {dict(data)!r}")
        return cls(topic=data["topic"], partition=data["partition"], start=data["start"], end=data["end"])


def parse_timestamp_ms(value: object, name: str = "timestamp") -> int:
    """Epoch milliseconds from an int (ms) or an ISO-8601 string with a zone (``Z`` or ``+hh:mm``)."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be epoch milliseconds or ISO-8601. Got {value!r}")
    if isinstance(value, int):
        return _check_int(name, value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"{name} must be epoch milliseconds or ISO-8601 like '2026-11-01T00:00:00Z'. Got {value!r}"
            ) from None
    else:
        raise ConfigurationError(f"{name} must be epoch milliseconds or ISO-8601. Got {value!r}")
    if moment.tzinfo is None:
        raise ConfigurationError(f"{name} needs a time zone (e.g. a trailing 'Z' for UTC). Got {value!r}")
    return int(moment.astimezone(timezone.utc).timestamp() * 1000)


def _offsets_map(value: object, name: str) -> dict[int, int]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigurationError(
            f'{name} must map partition numbers to offsets, e.g. {{"0": 1200, "1": 980}}. Got {value!r}'
        )
    out: dict[int, int] = {}
    for key, offset in value.items():
        try:
            partition = int(key)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{name}: partition {key!r} is not an integer") from None
        out[_check_int(f"{name}: partition {partition}", partition, maximum=MAX_PARTITION)] = _check_int(
            f"{name}[{partition}]", offset
        )
    return out


START_KINDS = ("committed", "earliest", "latest", "offsets", "timestamp")
END_KINDS = ("high_watermark", "offsets", "timestamp", "max_records")
Initial = Literal["earliest", "latest", "fail"]
INITIAL: tuple[str, ...] = get_args(Initial)


@dataclass(frozen=True, kw_only=True)
class StartSpec:
    """Where each partition's range starts.

    - ``committed``: the tap group's committed offset (``initial`` says what to do when it has none)
    - ``earliest`` / ``latest``: the log start / the high-water mark at plan time
    - ``offsets``: explicit offsets per partition (only those partitions are planned)
    - ``timestamp``: the first record whose Kafka timestamp is at or after ``timestamp_ms``
    """

    kind: str
    offsets: Mapping[int, int] = field(default_factory=dict)
    timestamp_ms: int | None = None
    initial: str = "earliest"

    def __post_init__(self) -> None:
        one_of("start", self.kind, START_KINDS)
        one_of("initial", self.initial, INITIAL)
        if self.kind == "offsets":
            object.__setattr__(self, "offsets", _offsets_map(self.offsets, "start offsets"))
        if self.kind == "timestamp" and self.timestamp_ms is None:
            raise ConfigurationError("start 'timestamp' needs timestamp_ms")

    @classmethod
    def parse(cls, value: object) -> StartSpec:
        """From ``"committed"``, ``"earliest"``, ``"latest"``, ``{"offsets": {...}}``, ``{"timestamp": ...}``."""
        if isinstance(value, StartSpec):
            return value
        if isinstance(value, str):
            if value in ("offsets", "timestamp"):
                raise ConfigurationError(f"start {value!r} needs a value, e.g. {{{value!r}: ...}}")
            return cls(kind=one_of("start", value, START_KINDS))
        if isinstance(value, Mapping) and len(value) >= 1:
            if "offsets" in value:
                return cls(kind="offsets", offsets=value["offsets"])
            if "timestamp" in value:
                return cls(
                    kind="timestamp", timestamp_ms=parse_timestamp_ms(value["timestamp"], "start timestamp")
                )
            if "committed" in value:
                return cls(kind="committed", initial=value.get("initial") or value["committed"] or "earliest")
        raise ConfigurationError(
            "start must be one of {'committed', 'earliest', 'latest', {'offsets': {partition: offset}}, "
            f"{{'timestamp': '<ISO-8601 or epoch ms>'}}}}. Got {value!r}"
        )

    def to_value(self) -> Any:
        if self.kind == "offsets":
            return {"offsets": {str(p): o for p, o in sorted(self.offsets.items())}}
        if self.kind == "timestamp":
            return {"timestamp": self.timestamp_ms}
        return self.kind


@dataclass(frozen=True, kw_only=True)
class EndSpec:
    """Where each partition's range ends (exclusive).

    - ``high_watermark``: the partition's high-water mark snapshot taken at plan time
    - ``offsets``: explicit offsets per partition
    - ``timestamp``: before the first record whose Kafka timestamp is at or after ``timestamp_ms``
    - ``max_records``: at most ``max_records`` offsets after the start (and never past the high-water mark)
    """

    kind: str
    offsets: Mapping[int, int] = field(default_factory=dict)
    timestamp_ms: int | None = None
    max_records: int | None = None

    def __post_init__(self) -> None:
        one_of("end", self.kind, END_KINDS)
        if self.kind == "offsets":
            object.__setattr__(self, "offsets", _offsets_map(self.offsets, "end offsets"))
        if self.kind == "timestamp" and self.timestamp_ms is None:
            raise ConfigurationError("end 'timestamp' needs timestamp_ms")
        if self.kind == "max_records":
            _check_int("max_records", self.max_records, minimum=1)

    @classmethod
    def parse(cls, value: object) -> EndSpec:
        """From ``"high_watermark"`` (or ``"latest"``), ``{"offsets": ...}``, ``{"timestamp": ...}``,
        ``{"max_records": N}``."""
        if isinstance(value, EndSpec):
            return value
        if value == "latest":
            value = "high_watermark"
        if isinstance(value, str):
            if value in ("offsets", "timestamp", "max_records"):
                raise ConfigurationError(f"end {value!r} needs a value, e.g. {{{value!r}: ...}}")
            return cls(kind=one_of("end", value, END_KINDS))
        if isinstance(value, Mapping) and len(value) == 1:
            if "offsets" in value:
                return cls(kind="offsets", offsets=value["offsets"])
            if "timestamp" in value:
                return cls(
                    kind="timestamp", timestamp_ms=parse_timestamp_ms(value["timestamp"], "end timestamp")
                )
            if "max_records" in value:
                return cls(kind="max_records", max_records=value["max_records"])
        raise ConfigurationError(
            "end must be one of {'high_watermark', {'offsets': {partition: offset}}, "
            f"{{'timestamp': '<ISO-8601 or epoch ms>'}}, {{'max_records': N}}}}. Got {value!r}"
        )

    def to_value(self) -> Any:
        if self.kind == "offsets":
            return {"offsets": {str(p): o for p, o in sorted(self.offsets.items())}}
        if self.kind == "timestamp":
            return {"timestamp": self.timestamp_ms}
        if self.kind == "max_records":
            return {"max_records": self.max_records}
        return self.kind


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionState:
    """What the client observed of one partition at plan time.

    ``start_at_timestamp`` / ``end_at_timestamp`` are the offsets the broker resolved for the specs'
    timestamps (the first offset whose timestamp is >= the given one), ``None`` when no such record exists.
    """

    partition: int
    log_start: int
    high_watermark: int
    committed: int | None = None
    start_at_timestamp: int | None = None
    end_at_timestamp: int | None = None

    def __post_init__(self) -> None:
        _check_int("partition", self.partition)
        _check_int("log_start", self.log_start)
        _check_int("high_watermark", self.high_watermark)
        if self.high_watermark < self.log_start:
            raise ConfigurationError(
                f"partition {self.partition}: high watermark {self.high_watermark} < log start {self.log_start}"
            )


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The ranges of one run, and the offsets that were lost to retention (under ``on_data_loss='log_start'``)."""

    topic: str
    ranges: tuple[OffsetRange, ...]
    lost: tuple[OffsetRange, ...] = ()
    group_id: str | None = None
    planned_at_ms: int = 0

    def __post_init__(self) -> None:
        check_topic(self.topic)
        seen: set[int] = set()
        for r in self.ranges:
            if r.topic != self.topic:
                raise ConfigurationError(f"range {r} is not of the plan's topic {self.topic!r}")
            if r.partition in seen:
                raise ConfigurationError(f"plan has two ranges for partition {r.partition}")
            seen.add(r.partition)

    @property
    def records_upper_bound(self) -> int:
        return sum(r.size for r in self.ranges)

    @property
    def lost_count(self) -> int:
        return sum(r.size for r in self.lost)

    def range_for(self, partition: int) -> OffsetRange:
        for r in self.ranges:
            if r.partition == partition:
                return r
        raise KeyError(partition)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group_id": self.group_id,
            "planned_at_ms": self.planned_at_ms,
            "ranges": [r.to_dict() for r in self.ranges],
            "lost": [r.to_dict() for r in self.lost],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            topic=data["topic"],
            group_id=data.get("group_id"),
            planned_at_ms=int(data.get("planned_at_ms", 0)),
            ranges=tuple(OffsetRange.from_dict(r) for r in data["ranges"]),
            lost=tuple(OffsetRange.from_dict(r) for r in data.get("lost", ())),
        )


def _requested_start(topic: str, state: PartitionState, start: StartSpec) -> int:
    p = state.partition
    if start.kind == "committed":
        if state.committed is not None and state.committed >= 0:
            return state.committed
        if start.initial == "fail":
            raise ConfigurationError(
                f"{topic}[{p}] has no committed offset for this tap's group and initial='fail'. "
                "Set initial='earliest' (load the whole retained log) or 'latest' (only new records)."
            )
        return state.log_start if start.initial == "earliest" else state.high_watermark
    if start.kind == "earliest":
        return state.log_start
    if start.kind == "latest":
        return state.high_watermark
    if start.kind == "offsets":
        return start.offsets[p]
    # timestamp: no record at or after it yet means "nothing before the end of the log"
    return state.high_watermark if state.start_at_timestamp is None else state.start_at_timestamp


def _requested_end(topic: str, state: PartitionState, start_offset: int, end: EndSpec) -> int:
    p = state.partition
    hwm = state.high_watermark
    if end.kind == "high_watermark":
        return hwm
    if end.kind == "max_records":
        assert end.max_records is not None
        return min(start_offset + end.max_records, max(hwm, start_offset))
    if end.kind == "timestamp":
        return hwm if state.end_at_timestamp is None else state.end_at_timestamp
    offset = end.offsets[p]
    if offset > hwm:
        raise ConfigurationError(
            f"end offset {offset} of {topic}[{p}] is beyond its high watermark {hwm}: those records do not "
            "exist yet. Use an end at or below the high watermark, or end='high_watermark'."
        )
    return offset


def plan_partition(
    *, topic: str, state: PartitionState, start: StartSpec, end: EndSpec, on_data_loss: str = "fail"
) -> tuple[OffsetRange, OffsetRange | None]:
    """The range of one partition and, if retention deleted part of it, the lost range.

    :raises DataLossError: the start lies below the log start and ``on_data_loss='fail'``.
    :raises ConfigurationError: the specs ask for offsets that cannot exist.
    """
    one_of("on_data_loss", on_data_loss, ON_DATA_LOSS)
    p = state.partition
    begin = _requested_start(topic, state, start)
    if begin > state.high_watermark:
        cause = (
            "the topic was probably deleted and re-created or truncated; reset the group's offsets "
            "(kafka-consumer-groups.sh --reset-offsets)"
            if start.kind == "committed"
            else "those records do not exist yet"
        )
        raise ConfigurationError(
            f"start offset {begin} of {topic}[{p}] is beyond its high watermark {state.high_watermark}: {cause}."
        )
    lost: OffsetRange | None = None
    if begin < state.log_start:
        if on_data_loss == "fail":
            raise DataLossError(topic=topic, partition=p, start=begin, log_start=state.log_start)
        lost = OffsetRange(topic=topic, partition=p, start=begin, end=state.log_start)
        begin = state.log_start
    finish = _requested_end(topic, state, begin, end)
    if finish < begin:
        if end.kind == "timestamp" and start.kind != "offsets":
            finish = begin  # e.g. the committed offset is already past the end time: nothing in between
        elif end.kind == "timestamp":
            raise ConfigurationError(
                f"{topic}[{p}]: the end time {_iso(end.timestamp_ms)} is reached at offset {finish}, before the "
                f"start offset {begin}: the replay would be empty. Choose an end time after the records at offset "
                f"{begin}, or end at 'latest' or at offsets."
            )
        else:
            raise ConfigurationError(
                f"{topic}[{p}]: end offset {finish} is before start offset {begin}. Choose an end after the start."
            )
    return OffsetRange(topic=topic, partition=p, start=begin, end=finish), lost


def plan_ranges(
    *,
    topic: str,
    states: Iterable[PartitionState],
    start: StartSpec,
    end: EndSpec,
    on_data_loss: str = "fail",
    group_id: str | None = None,
    planned_at_ms: int = 0,
) -> Plan:
    """The plan of one run over the observed partitions (sorted by partition)."""
    if start.kind == end.kind == "timestamp" and (end.timestamp_ms or 0) <= (start.timestamp_ms or 0):
        raise ConfigurationError(
            f"the end time {_iso(end.timestamp_ms)} is not after the start time {_iso(start.timestamp_ms)}: "
            "ranges are [start, end). Swap them, or choose an end after the start."
        )
    by_partition = {s.partition: s for s in states}
    partitions: Sequence[int] = sorted(by_partition)
    for spec_name, spec_offsets in (("start", start.offsets), ("end", end.offsets)):
        unknown = sorted(set(spec_offsets) - set(by_partition))
        if unknown:
            raise ConfigurationError(
                f"{spec_name} offsets name partitions {unknown} that {topic!r} does not have "
                f"(it has {list(partitions)})"
            )
    if start.kind == "offsets":
        partitions = sorted(start.offsets)
    if end.kind == "offsets":
        missing = sorted(set(partitions) - set(end.offsets))
        if missing:
            raise ConfigurationError(
                f"end offsets lack partitions {missing}; give an end for every planned partition"
            )
    ranges: list[OffsetRange] = []
    lost: list[OffsetRange] = []
    for p in partitions:
        rng, gone = plan_partition(
            topic=topic, state=by_partition[p], start=start, end=end, on_data_loss=on_data_loss
        )
        ranges.append(rng)
        if gone is not None:
            lost.append(gone)
    return Plan(
        topic=topic, ranges=tuple(ranges), lost=tuple(lost), group_id=group_id, planned_at_ms=planned_at_ms
    )


def _iso(ms: int | None) -> str:
    return "?" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()
