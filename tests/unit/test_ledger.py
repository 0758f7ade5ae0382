"""The plan ledger's layout: one variable per interval plus an index, a horizon that bounds its growth, old
layouts still read, and dry runs (``airflow tasks test``) that record nothing."""

from __future__ import annotations

import json
import time

import pytest
from test_intervals import Log, Logs, T, load_all

from airflow_provider_logtap.core.intervals import IntervalPlan
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.ledger import DAY_MS, PlanLedger, check_horizon
from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator

HOUR = 3_600_000
D = 5 * 60_000  # max_disorder


def hourly(hours: int, per_hour: int = 12, partitions: int = 2) -> Logs:
    """Partitions with ``per_hour`` records an hour, in order, for ``hours`` hours from 0."""
    step = HOUR // per_hour
    return Logs({p: Log([p * 1000 + step * i for i in range(hours * per_hour)]) for p in range(partitions)})


def plan(
    ledger: PlanLedger, logs: Logs, hour: int, run: str | None = None
) -> tuple[IntervalPlan, str | None]:
    t1, t2 = hour * HOUR, (hour + 1) * HOUR
    return ledger.plan_interval(
        topic=T,
        start_ms=t1,
        end_ms=t2,
        observe=lambda: logs.states(D, t1, t2),
        source=logs,
        run=run or f"r{hour}",
        max_disorder_ms=D,
        window=5,
    )


def plan_key(hour: int) -> str:
    ledger = PlanLedger("dag", store={})
    return ledger._plan_key(hour * HOUR, (hour + 1) * HOUR)


def test_the_ledger_keeps_one_variable_per_interval_inside_the_horizon_and_one_index() -> None:
    """A month of hourly intervals with a one-day horizon: the store never holds more than the day's plans and
    the index (the old layout kept three variables per interval, and one edge per boundary, forever)."""
    store: dict[str, str] = {}
    ledger = PlanLedger("dag", store=store, horizon_days=1)
    logs = hourly(24 * 30 + 1)
    sizes = []
    for hour in range(24 * 30):
        plan(ledger, logs, hour)
        sizes.append(len(store))
    assert max(sizes) == 25 + 1
    # Kept: the intervals ending at or after the newest end (720 h) minus a day; the rest is one span.
    assert set(store) == {ledger.index_key, *(plan_key(h) for h in range(695, 720))}
    index = json.loads(store[ledger.index_key])
    assert [tuple(i) for i in index["intervals"]] == [(h * HOUR, (h + 1) * HOUR) for h in range(695, 720)]
    assert index["pruned"] == [[0, 695 * HOUR]]
    assert sorted(int(t) for t in index["edges"]) == [0, *(h * HOUR for h in range(695, 721))]
    # A clear inside the horizon reuses its plan: the same offsets, nothing written.
    before = dict(store)
    again, by = plan(ledger, logs, 700, run="cleared")
    assert by == "r700" and again.span(0).start == 700 * 12 - 1 and store == before
    # An interval whose plan the horizon deleted is not planned again over edges that are gone.
    with pytest.raises(ConfigurationError, match="deleted by the ledger's horizon"):
        plan(ledger, logs, 600)
    assert store == before
    assert ledger.planned_ending_at(600 * HOUR) and ledger.planned_starting_at(600 * HOUR)


def test_an_interval_next_to_deleted_plans_reuses_their_edge_and_every_offset_is_loaded_once() -> None:
    """Hours 0-4 and 6-9 loaded, hours 0-4 then deleted by a 4.5 h horizon; hour 5, planned and loaded after,
    takes the recorded edge of 05:00 (kept for it) and its zone keeps hour 4's records (planned, though its plan
    is gone): the target holds every offset of hours 0-9 exactly once."""
    store: dict[str, str] = {}
    ledger = PlanLedger("dag", store=store, horizon_days=4.5 / 24)
    logs = hourly(11)
    sink: dict[tuple[int, int, int], list[int]] = {}
    for hour in (0, 1, 2, 3, 4, 6, 7, 8, 9):
        load_all(ledger, plan(ledger, logs, hour)[0], logs, sink)
    assert json.loads(store[ledger.index_key])["pruned"] == [[0, 5 * HOUR]]
    assert plan_key(4) not in store and plan_key(6) in store
    late, by = plan(ledger, logs, 5)
    assert by is None
    loaded = load_all(ledger, late, logs, sink)
    assert loaded.out_of_place == []
    for p, log in logs.logs.items():
        written = sorted(o for (q, _s, _e), offsets in sink.items() if q == p for o in offsets)
        assert written == [o for o, ts in zip(log.offsets, log.stamps, strict=True) if ts < 10 * HOUR]
    with pytest.raises(ConfigurationError, match="deleted by the ledger's horizon"):
        plan(ledger, logs, 2)
    # Older than the horizon and never planned: refused too (its plan would not be kept).
    far = PlanLedger("far", store={}, horizon_days=1)
    logs = hourly(60)
    plan(far, logs, 50)
    with pytest.raises(ConfigurationError, match="ends more than the ledger's horizon"):
        plan(far, logs, 3)


def test_a_plan_of_a_future_interval_does_not_expire_the_present_ones() -> None:
    now = int(time.time() * 1000) // HOUR * HOUR
    stamps = [now - 5 * HOUR + i * 60_000 for i in range(5 * 60)]
    logs = Logs({0: Log(stamps)})
    store: dict[str, str] = {}
    ledger = PlanLedger("dag", store=store, horizon_days=1)

    def at(start: int) -> tuple[IntervalPlan, str | None]:
        return ledger.plan_interval(
            topic=T,
            start_ms=start,
            end_ms=start + HOUR,
            observe=lambda: logs.states(D, start, start + HOUR),
            source=logs,
            run=f"r{start}",
            max_disorder_ms=D,
            window=5,
        )

    for h in range(5, 1, -1):
        at(now - h * HOUR)
    at(now + 30 * 24 * HOUR)  # a manual run of a day next month (sealed at the high watermark)
    assert len(store) == 4 + 1 + 1 and json.loads(store[ledger.index_key])["pruned"] == []
    with pytest.raises(ConfigurationError, match="ends more than the ledger's horizon"):
        at(now - 30 * HOUR)


def old_layout(store: dict[str, str], ledger: PlanLedger) -> None:
    """Turn ``store`` into the layout logtap wrote before the index: plan, by-start and by-end per interval, and
    one edges variable."""
    index = json.loads(store.pop(ledger.index_key))
    for start, end in index["intervals"]:
        store[ledger._key("by-start", ledger._plan_key(start, end).split("/")[-2])] = json.dumps(end)
        store[ledger._key("by-end", ledger._plan_key(start, end).split("/")[-1])] = json.dumps(start)
    store[ledger._key("edges")] = json.dumps(index["edges"])


def test_plans_of_the_old_layout_are_read_then_moved_into_the_index() -> None:
    logs = hourly(6)
    store: dict[str, str] = {}
    ledger = PlanLedger("dag", store=store)
    plans = [plan(ledger, logs, h)[0] for h in range(3)]
    old_layout(store, ledger)
    assert len(store) == 3 * 3 + 1
    upgraded = PlanLedger("dag", store=store)
    assert [upgraded.get(h * HOUR, (h + 1) * HOUR) for h in range(3)] == [
        (p, f"r{h}") for h, p in enumerate(plans)
    ]
    assert upgraded.planned_ending_at(3 * HOUR) and upgraded.planned_starting_at(0)
    assert not upgraded.planned_starting_at(3 * HOUR)
    nxt, _ = plan(upgraded, logs, 3)
    assert [u.range for u in nxt.units if u.boundary_ms == 3 * HOUR] == [
        u.range for u in plans[2].units if u.boundary_ms == 3 * HOUR
    ]  # chained to the old edge of 03:00
    assert not [k for k in store if "/by-start/" in k or "/by-end/" in k or k.endswith("/edges")]
    assert set(store) == {upgraded.index_key, *(plan_key(h) for h in range(4))}
    assert plan(upgraded, logs, 1) == (plans[1], "r1")
    assert upgraded.planned_ending_at(3 * HOUR) and upgraded.planned_starting_at(3 * HOUR)


def test_a_dry_run_plans_over_the_recorded_edges_and_records_nothing() -> None:
    logs = hourly(4)
    store: dict[str, str] = {}
    real = PlanLedger("dag", store=store)
    first, _ = plan(real, logs, 0)
    before = dict(store)
    dry = PlanLedger("dag", store=store, dry_run=True)
    assert plan(dry, logs, 0) == (first, "r0")
    second, by = plan(dry, logs, 1)
    assert by is None and store == before
    assert dry.planned_starting_at(HOUR) and not real.planned_starting_at(HOUR)  # in memory only
    assert plan(real, logs, 1)[0].units == second.units  # what the real run then records


def test_the_horizon_is_checked() -> None:
    assert check_horizon(90) == 90.0 and check_horizon(None) is None
    assert PlanLedger("dag", store={}, horizon_days=0.5).horizon_ms == DAY_MS // 2
    for bad in (0, -1, True, "90", float("inf")):
        with pytest.raises(ConfigurationError, match="ledger_horizon_days must be a number of days"):
            check_horizon(bad)
    with pytest.raises(ConfigurationError, match="ledger_horizon_days"):
        KafkaPlanIntervalOperator(task_id="plan", topic=T, ledger_horizon_days=0)
    op = KafkaPlanIntervalOperator(task_id="plan", topic=T, ledger_horizon_days=30)
    assert op.ledger_horizon_days == 30
