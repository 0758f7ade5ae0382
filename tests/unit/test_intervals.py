"""Interval membership: the robust clock, the edges of boundaries, units, and what a unit's load writes."""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.intervals import (
    CORE,
    ZONE,
    IntervalPlan,
    Membership,
    check_disorder,
    clocked,
    edges_of,
    find_edge,
    plan_units,
    shortest_interval_ms,
)
from airflow_provider_logtap.core.ranges import OffsetRange, PartitionState, Plan
from airflow_provider_logtap.errors import ConfigurationError, DataLossError
from airflow_provider_logtap.ledger import PlanLedger

T = "weblogs"
FUTURE = 4_102_444_800_000  # 2100-01-01
EPOCH = 1_000  # 1970-01-01T00:00:01Z
BASE = 1_000_000_000_000  # 2001-09-09


class Log:
    """An in-memory partition log: ``(offset, timestamp)`` records, offsets increasing (gaps allowed)."""

    def __init__(self, stamps: list[int] | None = None) -> None:
        self.offsets: list[int] = []
        self.stamps: list[int] = []
        self.hwm = 0
        self.reads = 0
        for ts in stamps or []:
            self.append(ts)

    def append(self, ts: int, gap: int = 0) -> int:
        offset = self.hwm + gap
        self.offsets.append(offset)
        self.stamps.append(ts)
        self.hwm = offset + 1
        return offset

    def records(self, partition: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
        self.reads += 1
        i = bisect.bisect_left(self.offsets, start)
        while i < len(self.offsets) and self.offsets[i] < stop:
            yield self.offsets[i], self.stamps[i]
            i += 1

    def first_at_or_after(self, ts: int) -> int | None:  # offsetsForTimes
        return next((o for o, t in zip(self.offsets, self.stamps, strict=True) if t >= ts), None)

    def ts(self, offset: int) -> int:
        return self.stamps[self.offsets.index(offset)]

    def batch(self, rng: OffsetRange) -> RecordBatch:
        pairs = list(self.records(rng.partition, rng.start, rng.end))
        return RecordBatch.of(
            T, rng.partition, [o for o, _ in pairs], [b"%d" % o for o, _ in pairs], [t for _, t in pairs]
        )


class Logs:
    """Partitions of :class:`Log` (a :class:`TimestampSource`)."""

    def __init__(self, logs: dict[int, Log]) -> None:
        self.logs = logs

    def records(self, partition: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
        return self.logs[partition].records(partition, start, stop)

    def states(self, disorder: int, t1: int, t2: int) -> list[PartitionState]:
        return [
            PartitionState(
                partition=p,
                log_start=0,
                high_watermark=log.hwm,
                start_at_timestamp=log.first_at_or_after(t1 - disorder),
                end_at_timestamp=log.first_at_or_after(t2 - disorder),
            )
            for p, log in sorted(self.logs.items())
        ]


def steady(n: int, start: int = 0, step: int = 10) -> list[int]:
    return [start + step * i for i in range(n)]


def test_the_clock_is_a_running_median_that_outliers_do_not_move() -> None:
    stamps = steady(20)
    stamps[3] = FUTURE
    stamps[12] = EPOCH
    got = [c for _o, _t, c in clocked(enumerate(stamps), window=5)]
    assert got == sorted(got)  # never decreases
    assert max(got) < 200 and got[-1] >= 170  # neither outlier pulled it
    # The window shrinks at the ends, to three records: an outlier at the very start does not start it high,
    # and in-order times come back as they are, however sparse the partition.
    assert [c for _o, _t, c in clocked(enumerate([FUTURE, 10, 20, 30, 40]), window=5)] == [10, 20, 30, 30, 30]
    sparse = [3_600_000 * 3 * i for i in range(40)]
    assert [c for _o, _t, c in clocked(enumerate(sparse))] == [*sparse[:-1], sparse[-2]]


def test_an_edge_brackets_the_boundary_by_the_disorder() -> None:
    log = Log(steady(200))  # record i at 10*i
    x, y = find_edge(log, partition=0, boundary_ms=1000, max_disorder_ms=100, lower=0, upper=200, window=5)
    assert (x, y) == (90, 110)


def test_a_far_future_outlier_early_does_not_move_the_edge_and_the_search_is_logarithmic() -> None:
    stamps = steady(100_000)
    stamps[5] = FUTURE
    log = Log(stamps)
    lower = log.first_at_or_after(500_000 - 100)  # offsetsForTimes: 5, useless
    assert lower == 5
    x, y = find_edge(
        log, partition=0, boundary_ms=500_000, max_disorder_ms=100, lower=lower, upper=log.hwm, window=31
    )
    assert (x, y) == (49_990, 50_010)
    assert log.reads < 40


def test_a_1970_outlier_and_disordered_records_land_in_their_own_interval() -> None:
    stamps = steady(100, start=BASE)  # boundary at BASE + 500: record 50
    stamps[48], stamps[52] = BASE + 530, BASE + 470  # out of order by 30 around the boundary
    stamps[70] = EPOCH
    logs = Logs({0: Log(stamps)})
    ledger = PlanLedger("dag", store={})
    owners = {}
    for t1, t2 in ((BASE, BASE + 500), (BASE + 500, BASE + 1000)):
        plan, _ = ledger.plan_interval(
            topic=T,
            start_ms=t1,
            end_ms=t2,
            observe=lambda t1=t1, t2=t2: logs.states(100, t1, t2),
            source=logs,
            run=f"r{t1}",
            max_disorder_ms=100,
            window=5,
        )
        owners[(t1, t2)] = load_all(ledger, plan, logs, {})
    first, second = owners[(BASE, BASE + 500)], owners[(BASE + 500, BASE + 1000)]
    assert (0, 48) in second.owned and (0, 52) in first.owned
    assert sorted(first.owned + second.owned) == [(0, o) for o in range(100)]
    assert (first.out_of_place, second.out_of_place) == ([], [(0, 70)])


def test_an_idle_partition_and_no_data_yet_seal_the_edge_at_the_high_watermark() -> None:
    assert find_edge(Log(), partition=0, boundary_ms=1000, max_disorder_ms=100, lower=0, upper=0) == (0, 0)
    log = Log(steady(50))  # up to 490: the clock never reaches 900
    assert find_edge(log, partition=0, boundary_ms=1000, max_disorder_ms=100, lower=0, upper=50) == (50, 50)
    log = Log(steady(100))  # reaches 990: past T - D, not T + D
    assert find_edge(log, partition=0, boundary_ms=1000, max_disorder_ms=100, lower=0, upper=100, window=5)[
        1
    ] == (100)


def test_edges_are_clamped_between_their_recorded_neighbours() -> None:
    logs = Logs({0: Log(steady(300))})
    states = logs.states(0, 0, 0)
    recorded = {1000: {0: (95, 120)}, 2000: {0: (190, 215)}}
    # The data would put the 1500 edge at about [140, 160); its neighbours bound it to [120, 190].
    got = edges_of(logs, boundary_ms=1500, states=states, recorded=recorded, max_disorder_ms=100, window=5)
    assert 120 <= got[0][0] <= got[0][1] <= 190
    squeezed = {1000: {0: (95, 150)}, 2000: {0: (155, 215)}}
    got = edges_of(logs, boundary_ms=1500, states=states, recorded=squeezed, max_disorder_ms=100, window=5)
    assert 150 <= got[0][0] <= got[0][1] <= 155
    with pytest.raises(ConfigurationError, match="out of order"):
        edges_of(
            logs,
            boundary_ms=1500,
            states=states,
            recorded={1000: {0: (95, 180)}, 2000: {0: (150, 215)}},
            max_disorder_ms=100,
        )


def test_units_and_data_loss() -> None:
    state = PartitionState(partition=0, log_start=12, high_watermark=100)
    kw = {"topic": T, "start_ms": 0, "end_ms": 10, "states": [state]}
    plan = plan_units(**kw, start_edges={0: (20, 30)}, end_edges={0: (60, 70)})
    assert [(u.kind, u.range.start, u.range.end, u.boundary_ms) for u in plan.units] == [
        (ZONE, 20, 30, 0),
        (CORE, 30, 60, None),
        (ZONE, 60, 70, 10),
    ]
    assert IntervalPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(DataLossError, match=r"offsets \[8, 12\)"):
        plan_units(**kw, start_edges={0: (8, 10)}, end_edges={0: (60, 70)})
    lost = plan_units(**kw, start_edges={0: (8, 10)}, end_edges={0: (60, 70)}, on_data_loss="log_start")
    assert [(r.start, r.end) for r in lost.lost] == [(8, 12)]
    assert lost.units[0].range.start == 8  # the unit keeps its offsets; the reader skips the deleted ones
    with pytest.raises(ConfigurationError, match="out of order"):
        plan_units(**kw, start_edges={0: (20, 65)}, end_edges={0: (60, 70)})


def test_a_zone_writes_the_records_of_the_planned_sides_and_counts_its_own_interval() -> None:
    batch = RecordBatch.of(T, 0, [10, 11, 12, 13], [b"a", b"b", b"c", b"d"], [95, 101, 99, 5])
    m = Membership(kind=ZONE, start_ms=100, end_ms=200, boundary_ms=100, keep_before=False)
    written = list(m.select([batch]))
    assert [b.offsets for b in written] == [[11]]
    assert (m.owned, m.others, m.out_of_place) == (1, 0, 0)
    m = Membership(kind=ZONE, start_ms=0, end_ms=100, boundary_ms=100, keep_after=True)
    written = list(m.select([batch]))
    assert written == [batch]  # everything kept: the batch passes unchanged
    assert (m.owned, m.others, m.out_of_place, m.examples) == (3, 1, 0, [])
    m = Membership(kind=ZONE, start_ms=50, end_ms=100, boundary_ms=100, keep_after=False)
    assert [b.values for b in m.select([batch])] == [[b"a", b"c", b"d"]]
    assert (m.out_of_place, m.examples, m.to_dict()["out_of_place"]) == (1, [(13, 5)], 1)
    core = Membership(kind=CORE, start_ms=0, end_ms=50)
    assert list(core.select([batch])) == [batch] and core.out_of_place == 3


def test_the_disorder_must_fit_the_schedule() -> None:
    assert check_disorder(300_000, shortest_interval_ms("@hourly")) == 300_000
    with pytest.raises(ConfigurationError, match="at most half the schedule's shortest data interval"):
        check_disorder(600_000, shortest_interval_ms("*/15 * * * *"))
    with pytest.raises(ConfigurationError, match="0 or more"):
        check_disorder(-1000, None)
    assert shortest_interval_ms("0 9,17 * * 1-5") == 8 * 3_600_000
    assert shortest_interval_ms("@once") is None


def test_a_schedule_change_is_refused() -> None:
    logs = Logs({0: Log(steady(400))})
    ledger = PlanLedger("dag", store={})

    def plan(t1: int, t2: int) -> IntervalPlan:
        return ledger.plan_interval(
            topic=T,
            start_ms=t1,
            end_ms=t2,
            observe=lambda: logs.states(0, t1, t2),
            source=logs,
            run="r",
            window=5,
        )[0]

    plan(1000, 2000)
    with pytest.raises(ConfigurationError, match="contains the recorded interval boundary"):
        plan(0, 3000)
    with pytest.raises(ConfigurationError, match="inside the planned interval"):
        plan(1500, 1700)


def test_a_plan_recorded_before_zones_is_reused_and_its_offsets_adopted() -> None:
    store: dict[str, str] = {}
    ledger = PlanLedger("dag", store=store)
    old = Plan(topic=T, ranges=(OffsetRange(topic=T, partition=0, start=0, end=100),))
    ledger._set(
        ledger._key("19700101T000000Z", "19700101T000001Z"),
        json.dumps({"plan": old.to_dict(), "run": "old"}),
        "",
    )
    ledger._set(ledger._key("by-start", "19700101T000000Z"), "1000", "")
    ledger._set(ledger._key("by-end", "19700101T000001Z"), "0", "")
    again, by = ledger.plan_interval(
        topic=T, start_ms=0, end_ms=1000, observe=list, source=Logs({}), run="new"
    )
    assert by == "old" and [(u.kind, u.range.start, u.range.end) for u in again.units] == [(CORE, 0, 100)]
    logs = Logs({0: Log(steady(300, start=900, step=1))})
    nxt, _ = ledger.plan_interval(
        topic=T,
        start_ms=1000,
        end_ms=1100,
        observe=lambda: logs.states(10, 1000, 1100),
        source=logs,
        run="r2",
        max_disorder_ms=10,
        window=5,
    )
    assert nxt.units[0].range == OffsetRange(topic=T, partition=0, start=100, end=100)  # chained, zero width


def test_a_recorded_plan_is_reused_unchanged_and_late_records_go_to_the_next_interval() -> None:
    log = Log(steady(60))  # 0..590
    logs = Logs({0: log})
    ledger = PlanLedger("dag", store={})
    kw = {"topic": T, "source": logs, "max_disorder_ms": 50, "window": 5}
    first, by = ledger.plan_interval(
        start_ms=0, end_ms=1000, observe=lambda: logs.states(50, 0, 1000), run="r1", **kw
    )
    assert by is None and first.span(0) == OffsetRange(topic=T, partition=0, start=0, end=60)  # sealed at 60
    for ts in (595, 1200, 1300):  # a late record, then the next interval's
        log.append(ts)
    again, by = ledger.plan_interval(
        start_ms=0, end_ms=1000, observe=lambda: logs.states(50, 0, 1000), run="r1-cleared", **kw
    )
    assert by == "r1" and again == first
    nxt, _ = ledger.plan_interval(
        start_ms=1000, end_ms=2000, observe=lambda: logs.states(50, 1000, 2000), run="r2", **kw
    )
    assert nxt.span(0).start == 60
    loaded = load_all(ledger, nxt, logs, {})
    assert loaded.out_of_place == [(0, 60)]  # the late record: loaded once, reported


# --- the property: any order of runs, repeats, appends --------------------------------------------------------


class Loaded:
    """The records a load wrote for its own interval, and those of them out of place: ``(partition, offset)``."""

    def __init__(self) -> None:
        self.owned: list[tuple[int, int]] = []
        self.out_of_place: list[tuple[int, int]] = []


def load_all(
    ledger: PlanLedger, plan: IntervalPlan, logs: Logs, sink: dict[tuple[int, int, int], list[int]]
) -> Loaded:
    """What the load operator does for every unit of ``plan``: select, write (replacing the unit's range)."""
    out = Loaded()
    for unit in plan.units:
        m = Membership(
            kind=unit.kind, start_ms=plan.start_ms, end_ms=plan.end_ms, boundary_ms=unit.boundary_ms
        )
        if unit.boundary_ms is not None:
            if m.side == "before":
                m.keep_after = ledger.planned_starting_at(unit.boundary_ms)
            else:
                m.keep_before = ledger.planned_ending_at(unit.boundary_ms)
        log = logs.logs[unit.range.partition]
        written = [o for b in m.select([log.batch(unit.range)]) for o in b.offsets]
        r = unit.range
        if not r.empty:
            for (p, s, e), _ in sink.items():
                assert p != r.partition or (s, e) == (r.start, r.end) or e <= r.start or r.end <= s, (
                    f"written ranges overlap: [{s}, {e}) and {r}"
                )
            sink[(r.partition, r.start, r.end)] = written
        mine = [
            o
            for o in written
            if unit.boundary_ms is None or (log.ts(o) < unit.boundary_ms) == (m.side == "before")
        ]
        stray = [o for o in mine if not plan.start_ms <= log.ts(o) < plan.end_ms]
        assert (m.owned, m.out_of_place) == (len(mine), len(stray)), "the load's counts are wrong"
        out.owned += [(r.partition, o) for o in mine]
        out.out_of_place += [(r.partition, o) for o in stray]
    return out


L, D, W = 200, 50, 7  # interval, max disorder, clock window (the spread of a window is W * 4 < D - 2 * 8)


def generate(rnd: random.Random, n: int, outliers: int, jitter: int) -> list[int]:
    base, stamps = BASE - 3 * L, []
    for _ in range(n):
        base += rnd.randint(0, 4)
        stamps.append(base + rnd.randint(-jitter, jitter))
    for _ in range(outliers):
        stamps[rnd.randrange(n)] = rnd.choice([FUTURE, EPOCH, 0, FUTURE + rnd.randint(0, 10**9)])
    return stamps


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    partitions=st.integers(1, 3),
    outliers=st.integers(0, 6),
    jitter=st.integers(0, 8),
    intervals=st.integers(1, 5),
    runs=st.lists(st.integers(0, 4), min_size=0, max_size=8),
    growing=st.booleans(),
)
def test_every_offset_is_loaded_exactly_once_and_records_within_the_disorder_by_their_own_time(
    seed: int, partitions: int, outliers: int, jitter: int, intervals: int, runs: list[int], growing: bool
) -> None:
    rnd = random.Random(seed)
    n = (intervals + 6) * L // 2
    full = {p: generate(rnd, n, outliers, jitter) for p in range(partitions)}
    logs = Logs({p: Log() for p in range(partitions)})
    if not growing:  # the whole log is there before the first plan
        for p, stamps in full.items():
            for ts in stamps:
                logs.logs[p].append(ts, gap=int(rnd.random() < 0.05))
    ledger = PlanLedger("dag", store={})
    sink: dict[tuple[int, int, int], list[int]] = {}
    order = [k % intervals for k in runs] + rnd.sample(range(intervals), intervals)  # each at least once
    plans: dict[int, IntervalPlan] = {}
    loaded: dict[int, Loaded] = {}
    for k in order:
        if growing:  # records arrive between runs: edges get sealed at the high-water mark
            for p, stamps in full.items():
                log = logs.logs[p]
                for ts in stamps[len(log.stamps) : len(log.stamps) + rnd.randint(0, n // 3)]:
                    log.append(ts)
        t1, t2 = BASE + k * L, BASE + (k + 1) * L
        plan, _ = ledger.plan_interval(
            topic=T,
            start_ms=t1,
            end_ms=t2,
            observe=lambda t1=t1, t2=t2: logs.states(D, t1, t2),
            source=logs,
            run=f"run-{k}",
            max_disorder_ms=D,
            window=W,
        )
        assert plans.setdefault(k, plan) == plan  # a re-run reuses the recorded plan
        loaded[k] = load_all(ledger, plan, logs, sink)

    for p in range(partitions):
        log = logs.logs[p]
        first, last = plans[0].span(p).start, plans[intervals - 1].span(p).end
        wanted = [o for o in log.offsets if first <= o < last]
        written = sorted(o for (q, _s, _e), offs in sink.items() if q == p for o in offs)
        # Exactly once: the zones at the two ends also hold records of the unplanned intervals outside.
        outside = [
            o
            for o in wanted
            if (o < first + _zone(plans[0], p, 0) and log.ts(o) < BASE)
            or (o >= last - _zone(plans[intervals - 1], p, -1) and log.ts(o) >= BASE + intervals * L)
        ]
        assert written == sorted(set(wanted) - set(outside))
    owned = [o for k in loaded for o in loaded[k].owned]
    assert len(owned) == len(set(owned))
    if not growing:
        for got in loaded.values():
            stray = [(p, o) for p, o in got.out_of_place if EPOCH < logs.logs[p].ts(o) < FUTURE]
            assert stray == [], f"records within the disorder placed in another interval: {stray}"
    for got in loaded.values():  # every outlier of an interval is reported by its load
        wild = [
            (p, o) for p, o in got.owned if logs.logs[p].ts(o) in (EPOCH, 0) or logs.logs[p].ts(o) >= FUTURE
        ]
        assert set(wild) <= set(got.out_of_place)


def _zone(plan: IntervalPlan, partition: int, which: int) -> int:
    return plan.units_of(partition)[which].range.size


def test_the_tap_options_and_the_interval_dag() -> None:
    from airflow_provider_logtap.dag_factory import dag_for
    from airflow_provider_logtap.taps import TapConfigError, parse_tap

    tap = {
        "name": "daily",
        "topic": T,
        "mode": "interval",
        "schedule": "@hourly",
        "target": {"type": "s3_archive", "bucket": "b"},
    }
    parsed = parse_tap(tap)
    assert (parsed.max_disorder_seconds, parsed.max_out_of_place_ratio) == (300, None)
    with pytest.raises(
        TapConfigError,
        match=r"'max_disorder_seconds' is 1801s, more than half the schedule's shortest data interval \(3600s\)",
    ):
        parse_tap({**tap, "max_disorder_seconds": 1801})
    with pytest.raises(TapConfigError, match=r"'max_out_of_place_ratio' must be at most 1\.0, not 1\.5"):
        parse_tap({**tap, "max_out_of_place_ratio": 1.5})
    # Group mode has no intervals: the disorder is not held against its schedule.
    assert parse_tap({**tap, "mode": "group", "max_disorder_seconds": 3000}).max_disorder_seconds == 3000
    dag = dag_for(parse_tap({**tap, "max_disorder_seconds": 600, "max_out_of_place_ratio": 0.01}))
    assert dag.task_dict["plan"].lateness == 600  # the zone after the interval's end exists (the plan waits)
    assert dag.task_dict["plan"].max_disorder == 600
    assert dag.task_dict["load"].partial_kwargs["max_out_of_place_ratio"] == 0.01
