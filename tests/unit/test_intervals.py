from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.intervals import plan_interval
from airflow_provider_logtap.core.ranges import OffsetRange, PartitionState, Plan
from airflow_provider_logtap.errors import ConfigurationError, DataLossError
from airflow_provider_logtap.ledger import PlanLedger

T = "weblogs"


def state(p: int, b1: int | None, b2: int | None, hwm: int = 100, low: int = 0) -> PartitionState:
    return PartitionState(
        partition=p, log_start=low, high_watermark=hwm, start_at_timestamp=b1, end_at_timestamp=b2
    )


def spans(plan: Plan) -> list[tuple[int, int, int]]:
    return [(r.partition, r.start, r.end) for r in plan.ranges]


def test_offsets_for_times_make_the_range() -> None:
    assert spans(plan_interval(topic=T, states=[state(0, 10, 40)])) == [(0, 10, 40)]


def test_undetermined_edges_are_the_high_watermark() -> None:
    # No record at or after T2 yet: the range runs to the high watermark; none after T1: empty at the end.
    assert spans(plan_interval(topic=T, states=[state(0, 10, None), state(1, None, None)])) == [
        (0, 10, 100),
        (1, 100, 100),
    ]


def test_chained_to_recorded_neighbours() -> None:
    before = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=0, end=55),))
    after = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=70, end=90),))
    # B(T1)=50 and B(T2)=80 are ignored: the neighbours' recorded edges win, so nothing doubles or falls between.
    assert spans(plan_interval(topic=T, states=[state(0, 50, 80)], before=before, after=after)) == [
        (0, 55, 70)
    ]
    # A neighbour that already reached past B(T2) leaves this interval empty, not negative.
    assert spans(plan_interval(topic=T, states=[state(0, 50, 52)], before=before)) == [(0, 55, 55)]


def test_inconsistent_ledger_is_an_error() -> None:
    after = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=20, end=30),))
    before = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=0, end=40),))
    with pytest.raises(ConfigurationError, match="ledger is inconsistent"):
        plan_interval(topic=T, states=[state(0, 10, 50)], before=before, after=after)


def test_retention_before_the_chained_start() -> None:
    before = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=0, end=20),))
    with pytest.raises(DataLossError, match=r"offsets \[20, 35\)"):
        plan_interval(topic=T, states=[state(0, 35, 60, low=35)], before=before)
    plan = plan_interval(topic=T, states=[state(0, 35, 60, low=35)], before=before, on_data_loss="log_start")
    assert spans(plan) == [(0, 35, 60)] and plan.lost == (
        OffsetRange(topic=T, partition=0, start=20, end=35),
    )


@given(
    edges=st.lists(st.integers(0, 100), min_size=2, max_size=8).map(sorted),
    order=st.randoms(),
)
def test_intervals_planned_in_any_order_tile_the_offsets(edges: list[int], order: object) -> None:
    """Intervals i = [edges[i], edges[i+1]) planned in any order through one ledger tile [edges[0], edges[-1])."""
    ledger = PlanLedger("dag", store={})
    intervals = list(range(len(edges) - 1))
    order.shuffle(intervals)  # type: ignore[attr-defined]
    for i in intervals:
        ledger.plan_interval(
            topic=T,
            start_ms=i * 1000,
            end_ms=(i + 1) * 1000,
            run=f"run-{i}",
            observe=lambda i=i: [state(0, edges[i], edges[i + 1])],
        )
    planned = [ledger.get(i * 1000, (i + 1) * 1000) for i in range(len(edges) - 1)]
    ranges = [p[0].ranges[0] for p in planned if p is not None]
    assert [(r.start, r.end) for r in ranges] == [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def test_a_recorded_plan_is_reused_unchanged() -> None:
    ledger = PlanLedger("dag", store={})
    first, by = ledger.plan_interval(
        topic=T, start_ms=0, end_ms=1000, run="r1", observe=lambda: [state(0, 0, None)]
    )
    assert by is None and spans(first) == [(0, 0, 100)]
    # New data arrived: the high watermark moved, B(T2) is now known. The re-run rewrites the same offsets.
    again, by = ledger.plan_interval(
        topic=T, start_ms=0, end_ms=1000, run="r1-cleared", observe=lambda: [state(0, 0, 150, hwm=300)]
    )
    assert by == "r1" and again == first
    # The next interval starts where the recorded one ended, so the late records (100..150) are loaded once.
    nxt, _ = ledger.plan_interval(
        topic=T, start_ms=1000, end_ms=2000, run="r2", observe=lambda: [state(0, 150, 250, hwm=300)]
    )
    assert spans(nxt) == [(0, 100, 250)]
