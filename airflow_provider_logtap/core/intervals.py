"""Interval mode: which records belong to a DAG run's data interval ``[T1, T2)``, as offset ranges (pure).

Kafka timestamps within a partition are only roughly in offset order: producers stamp records with the log
lines' own times (several zones, clock skew, a garbage line that fell back to the produce time), so a single
record can be hours or decades away from its neighbours. Interval edges are therefore not taken from
``offsetsForTimes`` (one record ahead of its neighbours would move a whole interval), but from a robust
*clock*:

- ``clock(o)`` is the median of the Kafka timestamps of the ``window`` records centred on offset ``o``, made
  non-decreasing by a running maximum. A few outliers in a window do not move a median, and a centred window
  does not lag behind in a sparse partition (see :func:`clocked`).
- Each interval boundary ``T`` gets an *edge* per partition, computed once and recorded in the ledger:
  ``x`` = the first offset whose clock is at or after ``T - D`` and ``y`` = the first at or after ``T + D``
  (``D`` = ``max_disorder``). Its *zone* ``[x, y)`` holds the records that may belong to either side of
  ``T``. Where the clock has not reached ``T - D`` / ``T + D`` before the high-water mark (an idle partition,
  no later data yet), the missing value is sealed at the high-water mark: later records belong to later
  intervals. Edges are clamped against the recorded edges next to them, so zones never overlap and stay in
  order (``y(T_k) <= x(T_k+1)``).
- Interval ``K = [T_K, T_K+1)`` consists of three *units* per partition: the zone of ``T_K``, the *core*
  ``[y(T_K), x(T_K+1))`` (owned entirely by ``K``) and the zone of ``T_K+1``. A record in the zone of ``T``
  belongs to the interval ending at ``T`` if its timestamp is before ``T``, else to the interval starting at
  ``T``. So every offset belongs to exactly one interval, and a record stamped within ``D`` of the clock
  belongs to the interval of its own timestamp (with ``D <= interval / 2``).
- A record whose timestamp is not inside the interval that owns it is *out of place*: it is loaded exactly
  once, with its owner, and counted and reported (:class:`Membership`).

Each unit is one sink write of its whole offset range: a zone's content is the records of every side of it
whose interval has a recorded plan (looked up when the zone is written), so a zone written by either of its
intervals, in any order and any number of times, ends up with exactly the records of the planned ones.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange, PartitionState
from airflow_provider_logtap.errors import ConfigurationError, DataLossError, one_of

#: Records in the median of the clock (odd, so the median is a record's timestamp).
WINDOW = 31
#: ``max_disorder`` by default: records up to 5 minutes out of order land in their own interval.
DEFAULT_MAX_DISORDER_SECONDS = 300
#: The out-of-place records a load names in its log and result.
EXAMPLES = 5

ZONE, CORE = "zone", "core"
#: An edge of one partition: ``(x, y)``, the zone ``[x, y)``.
Edge = tuple[int, int]
#: Recorded edges: ``{boundary ms: {partition: (x, y)}}``.
Edges = Mapping[int, Mapping[int, Edge]]


class TimestampSource(Protocol):
    """Reads ``(offset, Kafka timestamp)`` of the records of one partition."""

    def records(self, partition: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """The records of ``[start, stop)`` in offset order (the caller may stop iterating early)."""
        ...


def _median(ordered: Sequence[int]) -> int:
    return ordered[(len(ordered) - 1) // 2]


def clocked(records: Iterable[tuple[int, int]], window: int = WINDOW) -> Iterator[tuple[int, int, int]]:
    """``(offset, timestamp, clock)`` of ``records``: the clock is the running maximum of the median of the
    ``window`` timestamps centred on each record. Where fewer records lie on one side (the first and last of the
    scan) the window shrinks symmetrically, to no fewer than three records, so in-order timestamps give their
    own times back even in a sparse partition, and a lone outlier never moves the clock."""
    half = max(window // 2, 1)
    left: deque[int] = deque(maxlen=half)
    ahead: deque[tuple[int, int]] = deque()
    clock: int | None = None

    def emit() -> tuple[int, int, int]:
        nonlocal clock
        offset, ts = ahead.popleft()
        right = [t for _o, t in itertools.islice(ahead, half)]
        k = min(half, len(left), len(right))
        if k:
            win = [*itertools.islice(left, len(left) - k, None), ts, *right[:k]]
        else:
            win = [*itertools.islice(left, max(len(left) - 1, 0), None), ts, *right[:1]]
        median = _median(sorted(win))
        clock = median if clock is None else max(clock, median)
        left.append(ts)
        return offset, ts, clock

    for rec in records:
        ahead.append(rec)
        if len(ahead) > half:
            yield emit()
    while ahead:
        yield emit()


def _probe(source: TimestampSource, partition: int, at: int, stop: int, window: int) -> int | None:
    """The median timestamp of the first ``window`` records from ``at`` (``None``: no record there)."""
    stamps: list[int] = []
    for _offset, ts in source.records(partition, at, min(stop, at + 4 * window)):
        stamps.append(ts)
        if len(stamps) >= window:
            break
    return _median(sorted(stamps)) if stamps else None


def find_edge(
    source: TimestampSource,
    *,
    partition: int,
    boundary_ms: int,
    max_disorder_ms: int,
    lower: int,
    upper: int,
    floor: int | None = None,
    window: int = WINDOW,
) -> Edge:
    """The edge ``(x, y)`` of ``boundary_ms`` in ``[lower, upper]``: ``x`` the first offset whose clock is at or
    after ``T - D``, ``y`` the first at or after ``T + D``; each is ``upper`` where the clock does not get there
    before ``upper`` (the high-water mark, or the next recorded edge's ``x``).

    ``lower`` must be an offset before which the clock is surely below ``T - D`` (the previous recorded edge's
    ``y``, ``offsetsForTimes(T - D)``, the log start). A binary search over offsets with the median of
    ``window`` records at each probe finds the region (a far-future outlier early in the log, which makes
    ``offsetsForTimes`` useless, does not mislead a median); a linear scan then fixes ``x`` and ``y``, starting
    ``window`` offsets earlier (but not before ``floor``, the log start) so the clock has its context.
    """
    if lower >= upper:
        return upper, upper
    low_t, high_t = boundary_ms - max_disorder_ms, boundary_ms + max_disorder_ms
    lo, hi = lower, upper
    while hi - lo > window:
        mid = (lo + hi) // 2
        median = _probe(source, partition, mid, upper, window)
        if median is None or median < low_t:
            lo = mid
        else:
            hi = mid
    x: int | None = None
    y: int | None = None
    start = max(lower if floor is None else min(floor, lower), lo - window)
    for offset, _ts, clock in clocked(source.records(partition, start, upper), window):
        if offset < lower:
            continue
        if x is None and clock >= low_t:
            x = offset
        if clock >= high_t:
            y = offset
            break
    return (upper if x is None else x), (upper if y is None else y)


def neighbours(edges: Edges, boundary_ms: int, partition: int) -> tuple[int | None, int | None]:
    """The ``y`` of the nearest recorded edge before ``boundary_ms`` and the ``x`` of the nearest after it, for
    ``partition`` (``None``: none recorded)."""
    before = [t for t in edges if t < boundary_ms and partition in edges[t]]
    after = [t for t in edges if t > boundary_ms and partition in edges[t]]
    return (
        edges[max(before)][partition][1] if before else None,
        edges[min(after)][partition][0] if after else None,
    )


def edges_of(
    source: TimestampSource,
    *,
    boundary_ms: int,
    states: Iterable[PartitionState],
    recorded: Edges,
    max_disorder_ms: int,
    lower_bounds: Mapping[int, int | None] | None = None,
    window: int = WINDOW,
) -> dict[int, Edge]:
    """The edges of ``boundary_ms`` for every observed partition, each clamped between the recorded edges next
    to it (its zone starts at or after the previous one's end and ends at or before the next one's start).
    ``lower_bounds`` are optional known lower bounds per partition (``offsetsForTimes(T - D)``)."""
    out: dict[int, Edge] = {}
    for state in sorted(states, key=lambda s: s.partition):
        p = state.partition
        prev_y, next_x = neighbours(recorded, boundary_ms, p)
        upper = state.high_watermark if next_x is None else min(next_x, state.high_watermark)
        if prev_y is not None and prev_y > upper:
            raise ConfigurationError(
                f"partition {p}: the recorded edges around {boundary_ms} are out of order (the previous one ends "
                f"at offset {prev_y}, after {upper}); the ledger is inconsistent, or the topic was deleted and "
                "re-created. Delete this tap's logtap variables (Admin > Variables) and reload the target."
            )
        hint = (lower_bounds or {}).get(p)
        # Nothing after the next recorded edge can be in this zone, whatever the log start or the hint say.
        lower = min(max(state.log_start, prev_y or 0, hint or 0), upper)
        x, y = find_edge(
            source,
            partition=p,
            boundary_ms=boundary_ms,
            max_disorder_ms=max_disorder_ms,
            lower=lower,
            upper=upper,
            floor=state.log_start,
            window=window,
        )
        out[p] = (min(max(x, lower), upper), min(max(y, x, lower), upper))
    return out


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One sink write of an interval: a zone (of ``boundary_ms``) or the core of one partition."""

    range: OffsetRange
    kind: str
    boundary_ms: int | None = None

    def __post_init__(self) -> None:
        one_of("unit kind", self.kind, (ZONE, CORE))
        if (self.kind == ZONE) != (self.boundary_ms is not None):
            raise ConfigurationError(
                f"a {self.kind} unit {'needs' if self.kind == ZONE else 'has no'} a boundary"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**self.range.to_dict(), "unit": self.kind, "boundary_ms": self.boundary_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Unit:
        return cls(range=OffsetRange.from_dict(data), kind=data["unit"], boundary_ms=data.get("boundary_ms"))


@dataclass(frozen=True, kw_only=True)
class IntervalPlan:
    """The units of one interval ``[start_ms, end_ms)`` (zone, core, zone per partition), the offsets retention
    deleted before the plan was made (under ``on_data_loss='log_start'``) and the disorder it was made with."""

    topic: str
    start_ms: int
    end_ms: int
    units: tuple[Unit, ...]
    lost: tuple[OffsetRange, ...] = ()
    max_disorder_ms: int = 0
    planned_at_ms: int = 0

    @property
    def ranges(self) -> tuple[OffsetRange, ...]:
        return tuple(u.range for u in self.units)

    def units_of(self, partition: int) -> list[Unit]:
        return [u for u in self.units if u.range.partition == partition]

    def span(self, partition: int) -> OffsetRange:
        """All offsets of ``partition`` the interval's units cover (its zones included)."""
        units = self.units_of(partition)
        return OffsetRange(
            topic=self.topic, partition=partition, start=units[0].range.start, end=units[-1].range.end
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "units": [u.to_dict() for u in self.units],
            "lost": [r.to_dict() for r in self.lost],
            "max_disorder_ms": self.max_disorder_ms,
            "planned_at_ms": self.planned_at_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalPlan:
        return cls(
            topic=data["topic"],
            start_ms=int(data["start_ms"]),
            end_ms=int(data["end_ms"]),
            units=tuple(Unit.from_dict(u) for u in data["units"]),
            lost=tuple(OffsetRange.from_dict(r) for r in data.get("lost", ())),
            max_disorder_ms=int(data.get("max_disorder_ms", 0)),
            planned_at_ms=int(data.get("planned_at_ms", 0)),
        )

    def load_specs(self, ledger: str) -> list[dict[str, Any]]:
        """One mapped load per unit: the range, and what the load needs to select the unit's records."""
        return [
            {**u.to_dict(), "interval": [self.start_ms, self.end_ms], "ledger": ledger} for u in self.units
        ]


def plan_units(
    *,
    topic: str,
    start_ms: int,
    end_ms: int,
    states: Iterable[PartitionState],
    start_edges: Mapping[int, Edge],
    end_edges: Mapping[int, Edge],
    on_data_loss: str = "fail",
    max_disorder_ms: int = 0,
    planned_at_ms: int = 0,
) -> IntervalPlan:
    """The units of ``[start_ms, end_ms)`` from its two recorded edges per observed partition.

    :raises DataLossError: retention deleted offsets of a unit and ``on_data_loss='fail'`` (under
        ``log_start`` they are recorded as lost and the load skips them).
    """
    one_of("on_data_loss", on_data_loss, ("fail", "log_start"))
    units: list[Unit] = []
    lost: list[OffsetRange] = []
    for state in sorted(states, key=lambda s: s.partition):
        p = state.partition
        (x1, y1), (x2, y2) = start_edges[p], end_edges[p]
        if not x1 <= y1 <= x2 <= y2:
            raise ConfigurationError(
                f"{topic}[{p}]: the recorded edges of the interval are out of order ({x1}, {y1}, {x2}, {y2}); "
                "the ledger is inconsistent. Delete this tap's logtap variables (Admin > Variables) only if "
                "you then reload the whole target."
            )
        if y2 > state.high_watermark:
            raise ConfigurationError(
                f"{topic}[{p}]: the interval's recorded edge {y2} is beyond the high watermark "
                f"{state.high_watermark}: the topic was probably deleted and re-created; delete this tap's "
                "logtap variables (Admin > Variables)."
            )
        if x1 < state.log_start and x1 < y2:
            if on_data_loss == "fail":
                raise DataLossError(topic=topic, partition=p, start=x1, log_start=min(state.log_start, y2))
            lost.append(OffsetRange(topic=topic, partition=p, start=x1, end=min(state.log_start, y2)))
        for kind, start, end, boundary in (
            (ZONE, x1, y1, start_ms),
            (CORE, y1, x2, None),
            (ZONE, x2, y2, end_ms),
        ):
            rng = OffsetRange(topic=topic, partition=p, start=start, end=end)
            units.append(Unit(range=rng, kind=kind, boundary_ms=boundary))
    return IntervalPlan(
        topic=topic,
        start_ms=start_ms,
        end_ms=end_ms,
        units=tuple(units),
        lost=tuple(lost),
        max_disorder_ms=max_disorder_ms,
        planned_at_ms=planned_at_ms,
    )


def owner_side(ts: int, boundary_ms: int) -> str:
    """Which interval of a zone's two owns a record: ``before`` (ending at the boundary) or ``after``."""
    return "before" if ts < boundary_ms else "after"


@dataclass
class Membership:
    """Selects the records one unit writes and counts this interval's out-of-place records.

    ``keep_before`` / ``keep_after``: whether the interval ending / starting at a zone's boundary has a recorded
    plan (this interval's side always has). A core keeps every record.
    """

    kind: str
    start_ms: int
    end_ms: int
    boundary_ms: int | None = None
    keep_before: bool = True
    keep_after: bool = True
    owned: int = 0
    others: int = 0
    out_of_place: int = 0
    examples: list[tuple[int, int]] = field(default_factory=list)

    @property
    def side(self) -> str | None:
        """This interval's side of the zone (``None`` for a core)."""
        if self.boundary_ms is None:
            return None
        return "before" if self.boundary_ms == self.end_ms else "after"

    def _count(self, offset: int, ts: int) -> None:
        self.owned += 1
        if not self.start_ms <= ts < self.end_ms:
            self.out_of_place += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append((offset, ts))

    def select(self, batches: Iterable[RecordBatch]) -> Iterator[RecordBatch]:
        """The records of ``batches`` this unit writes, counting as they pass."""
        for batch in batches:
            if self.boundary_ms is None:
                for offset, ts in zip(batch.offsets, batch.timestamps, strict=True):
                    self._count(offset, ts)
                yield batch
                continue
            keep: list[int] = []
            for i, (offset, ts) in enumerate(zip(batch.offsets, batch.timestamps, strict=True)):
                side = owner_side(ts, self.boundary_ms)
                if side == self.side:
                    self._count(offset, ts)
                    keep.append(i)
                elif self.keep_before if side == "before" else self.keep_after:
                    self.others += 1
                    keep.append(i)
            if len(keep) == len(batch):
                yield batch
            else:
                yield RecordBatch.of(
                    batch.topic,
                    batch.partition,
                    [batch.offsets[i] for i in keep],
                    [batch.values[i] for i in keep],
                    [batch.timestamps[i] for i in keep],
                    batch.lost,
                )

    @property
    def ratio(self) -> float:
        return self.out_of_place / self.owned if self.owned else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.kind,
            "interval": [self.start_ms, self.end_ms],
            "boundary_ms": self.boundary_ms,
            "owned": self.owned,
            "neighbour_records": self.others,
            "out_of_place": self.out_of_place,
            "out_of_place_examples": [{"offset": o, "timestamp_ms": t} for o, t in self.examples],
        }


def check_disorder(max_disorder_ms: int, shortest_interval_ms: int | None, name: str = "max_disorder") -> int:
    """``max_disorder_ms`` if it is at least 0 and at most half the shortest interval, else the error."""
    if isinstance(max_disorder_ms, bool) or not isinstance(max_disorder_ms, int):
        raise ConfigurationError(f"{name} must be a number of seconds. Got {max_disorder_ms!r}")
    if max_disorder_ms < 0:
        raise ConfigurationError(f"{name} must be 0 or more seconds. Got {max_disorder_ms / 1000:g}")
    if shortest_interval_ms is not None and 2 * max_disorder_ms > shortest_interval_ms:
        raise ConfigurationError(
            f"{name} ({max_disorder_ms / 1000:g}s) must be at most half the schedule's shortest data interval "
            f"({shortest_interval_ms / 1000:g}s): a record is only placed by its own time when it is out of "
            f"order by less than half an interval. Lower {name} or use a longer schedule."
        )
    return max_disorder_ms


def shortest_interval_ms(schedule: str, start: datetime | None = None, fires: int = 400) -> int | None:
    """The shortest gap between the first ``fires`` times of a cron ``schedule`` (from ``start``, default the
    start of 2026), in ms; ``None`` when the schedule is not a cron expression croniter understands."""
    try:
        from croniter import croniter  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - Airflow's own cron support brings croniter
        return None
    try:
        it = croniter(schedule, start or datetime(2026, 1, 1, tzinfo=timezone.utc))
        times = [it.get_next(datetime) for _ in range(fires)]
    except Exception:  # not a cron expression: Airflow itself rejects the schedule
        return None
    gaps = [int((b - a).total_seconds() * 1000) for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else None
