"""Interval mode: a DAG run's data interval ``[T1, T2)`` as offset ranges, chained to its neighbours.

Each partition's range is ``[B(T1), B(T2))`` where ``B(T)`` is the first offset whose Kafka timestamp is at or
after ``T`` (``offsetsForTimes``). ``B`` never decreases as ``T`` grows, so consecutive intervals tile the
offsets: every offset belongs to exactly one interval. ``B(T)`` is only final once a record at or after ``T``
exists; before that it is the high-water mark, and records appended later (late, or with old timestamps) would
fall between two intervals. So plans are kept (a ledger) and chained: an interval starts where the recorded
interval before it ended and ends where the recorded interval after it starts. A re-run (a clear, a second
backfill) reuses its recorded plan unchanged, so it rewrites the same offsets and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow_provider_logtap.core.ranges import OffsetRange, PartitionState, Plan
from airflow_provider_logtap.errors import ConfigurationError, DataLossError, one_of


def plan_interval(
    *,
    topic: str,
    states: Iterable[PartitionState],
    before: Plan | None = None,
    after: Plan | None = None,
    on_data_loss: str = "fail",
    planned_at_ms: int = 0,
) -> Plan:
    """Ranges of one interval from the observed partitions (``start_at_timestamp`` = ``B(T1)``,
    ``end_at_timestamp`` = ``B(T2)``) and the recorded plans of the intervals just before and after it."""
    one_of("on_data_loss", on_data_loss, ("fail", "log_start"))
    ranges: list[OffsetRange] = []
    lost: list[OffsetRange] = []
    for state in sorted(states, key=lambda s: s.partition):
        p = state.partition
        hwm = state.high_watermark
        start = _edge(before, p, "end")
        if start is None:
            start = hwm if state.start_at_timestamp is None else state.start_at_timestamp
        end = _edge(after, p, "start")
        if end is None:
            end = hwm if state.end_at_timestamp is None else state.end_at_timestamp
            end = max(end, start)  # a recorded earlier interval may already reach past B(T2)
        if end < start:
            raise ConfigurationError(
                f"{topic}[{p}]: the recorded interval after this one starts at offset {end}, before this "
                f"interval's start {start}; the ledger is inconsistent. Delete the logtap plan variables of "
                "the intervals around it (Admin > Variables) and re-run them."
            )
        if start > hwm:
            raise ConfigurationError(
                f"{topic}[{p}]: interval start {start} is beyond the high watermark {hwm}: the topic was "
                "probably deleted and re-created; delete this tap's logtap plan variables."
            )
        if start < state.log_start:
            if on_data_loss == "fail":
                raise DataLossError(topic=topic, partition=p, start=start, log_start=state.log_start)
            lost.append(OffsetRange(topic=topic, partition=p, start=start, end=min(state.log_start, end)))
            start = min(state.log_start, end)
        ranges.append(OffsetRange(topic=topic, partition=p, start=start, end=end))
    return Plan(topic=topic, ranges=tuple(ranges), lost=tuple(lost), planned_at_ms=planned_at_ms)


def _edge(plan: Plan | None, partition: int, which: str) -> int | None:
    if plan is None:
        return None
    for r in plan.ranges:
        if r.partition == partition:
            return r.end if which == "end" else r.start
    return None
