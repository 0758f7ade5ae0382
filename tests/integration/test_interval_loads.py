"""Interval mode against a real broker: the plan and load operators on disordered timestamps, outliers, idle
partitions, late records, retention and repeated backfills (the ledger's Variables and the sink in memory)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap import ledger as ledger_module
from airflow_provider_logtap.compat import AirflowFailException
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import DataLossError
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator
from airflow_provider_logtap.sinks.base import WriteResult

HOUR = 3_600_000
MINUTE = 60_000
# Recent times: the broker's time-based retention (7 days) would delete records with older timestamps at once.
BASE = (int(time.time() * 1000) // HOUR - 12) * HOUR
FUTURE = 4_102_444_800_000  # 2100-01-01, a line whose time was misread
# The broker refuses timestamps far ahead of its clock unless the topic allows them (producers stamping lines
# with their own times need it).
ANY_TIME = {"message.timestamp.after.max.ms": str(2**63 - 1)}
EPOCH = 1_000  # 1970, a garbage line


class MemorySink:
    """A sink keeping each written range's records; a write replaces its range's content (except at offsets the
    reader reported lost, as the real sinks keep what they wrote there), and two different ranges that overlap
    are an error (each offset has one place)."""

    name = "memory"

    def __init__(self, store: dict[tuple[int, int, int], list[tuple[int, bytes | None, int]]]) -> None:
        self.store = store

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        lost: list[OffsetRange] = []
        records = [
            r
            for b in batches
            if b.lost is None or lost.append(b.lost) is None
            for r in zip(b.offsets, b.values, b.timestamps, strict=True)
        ]
        kept = [
            r for r in self.store.get((rng.partition, rng.start, rng.end), []) if any(r[0] in g for g in lost)
        ]
        records = sorted(kept + records)
        for p, s, e in self.store:
            assert p != rng.partition or (s, e) == (rng.start, rng.end) or e <= rng.start or rng.end <= s, (
                f"{rng} overlaps the written range [{s}, {e})"
            )
        assert all(o in rng for o, _v, _t in records)
        self.store[(rng.partition, rng.start, rng.end)] = records
        return WriteResult(sink=self.name, range=rng, records=len(records), written=len(records))


class MemoryLoad(KafkaRangeLoadOperator):
    def __init__(self, *, store: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def make_sink(self, context: Any) -> MemorySink:
        return MemorySink(self.store)


class Tap:
    """One interval-mode tap: its ledger (Airflow Variables, here a dict) and its target (in memory)."""

    def __init__(self, topic: str, variables: dict[str, str], disorder: int = 300) -> None:
        self.topic, self.variables, self.disorder = topic, variables, disorder
        self.sink: dict[tuple[int, int, int], list[tuple[int, bytes | None, int]]] = {}

    def run(self, hour: int, ratio: float | None = None) -> list[dict[str, Any]]:
        """A DAG run of the interval ``[BASE + hour h, +1 h)``: plan, then every unit's load."""
        context: Any = {
            "ti": SimpleNamespace(dag_id="dag", xcom_push=lambda **_kw: None),
            "run_id": f"run-{hour}",
        }
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=self.topic,
            interval_start=BASE + hour * HOUR,
            interval_end=BASE + (hour + 1) * HOUR,
            max_disorder=self.disorder,
        )
        specs = plan.execute(context)
        return [
            MemoryLoad(
                task_id="load", offset_range=spec, store=self.sink, max_out_of_place_ratio=ratio
            ).execute(context)
            for spec in specs
        ]

    def records(self, partition: int) -> list[tuple[int, bytes | None, int]]:
        return sorted(r for (p, _s, _e), recs in self.sink.items() if p == partition for r in recs)

    def values(self, partition: int) -> list[bytes | None]:
        return [v for _o, v, _t in self.records(partition)]


def out_of_place(results: list[dict[str, Any]]) -> list[int]:
    return sorted(e["offset"] for r in results for e in r["interval"]["out_of_place_examples"])


@pytest.fixture
def variables(airflow_connections: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    store: dict[str, str] = {}
    monkeypatch.setattr(
        ledger_module._Variables, "get", lambda _self, key, default=None: store.get(key, default)
    )
    monkeypatch.setattr(
        ledger_module._Variables, "set", lambda _self, key, value, description: store.update({key: value})
    )
    monkeypatch.setattr(
        ledger_module._Variables, "delete", lambda _self, key: store.pop(key, None), raising=False
    )
    return store


def at(hour: float) -> int:
    return int(BASE + hour * HOUR)


def hour_of(ts: int) -> int:
    return (ts - BASE) // HOUR


def steady(hours: float, every_s: int = 20, start: float = 0.0) -> list[int]:
    return [at(start) + i * every_s * 1000 for i in range(int(hours * 3600 / every_s))]


def test_disordered_timestamps_land_in_the_interval_of_their_own_time(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    """Records up to max_disorder out of order, across the boundaries too: each in the interval of its own
    time, none out of place, whichever order the intervals run in."""
    create_topic(kafka_bootstrap, topic_name)
    stamps = steady(4.5, start=-0.2)
    rnd = random.Random(7)
    for i in range(0, len(stamps), 7):
        stamps[i] += rnd.choice([-4, -3, 3, 4]) * MINUTE  # a line a few minutes early or late
    for hour in range(1, 5):  # right at the boundaries: stamped across them
        k = next(i for i, t in enumerate(stamps) if t >= at(hour))
        stamps[k - 2], stamps[k + 2] = at(hour) + 2 * MINUTE, at(hour) - 2 * MINUTE
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(len(stamps))], stamps)
    tap = Tap(topic_name, variables)
    results = {h: tap.run(h) for h in (2, 0, 3, 1)}
    for hour in range(4):
        assert out_of_place(results[hour]) == []
        assert sum(r["interval"]["owned"] for r in results[hour]) == sum(hour_of(t) == hour for t in stamps)
    loaded = tap.records(0)
    assert len(loaded) == len({o for o, _v, _t in loaded})
    assert sorted(hour_of(t) for _o, _v, t in loaded) == sorted(h for h in map(hour_of, stamps) if 0 <= h < 4)


def test_a_far_future_and_a_1970_outlier_are_loaded_once_and_reported(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    """Before, a far-future stamp early in the partition moved every interval's start to it (offsetsForTimes),
    so all but the last interval were empty. Now each interval holds the records stamped in it, and the two
    outliers are loaded once, counted and reported by the interval they landed in; a threshold fails the run."""
    create_topic(kafka_bootstrap, topic_name, **ANY_TIME)
    stamps = steady(3.5, every_s=30, start=0.1)
    late = next(i for i, t in enumerate(stamps) if t >= at(1.5))
    stamps[5] = FUTURE  # a misread time early in the partition
    stamps[late] = EPOCH  # a garbage line that fell back to time 0
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(len(stamps))], stamps)
    tap = Tap(topic_name, variables)
    results = {h: tap.run(h) for h in range(3)}
    for hour in range(3):
        owned = [t for o, _v, t in tap.records(0) if o not in (5, late)]
        assert sum(hour_of(t) == hour for t in owned) == sum(hour_of(t) == hour for t in stamps)
    assert out_of_place(results[0]) == [5]
    assert out_of_place(results[1]) == [late]
    assert out_of_place(results[2]) == []
    assert [o for o, _v, _t in tap.records(0)].count(5) == 1
    with pytest.raises(AirflowFailException, match=r"max_out_of_place_ratio=0\.0"):
        tap.run(1, ratio=0.0)  # a clear, now with a threshold: the same records, then the failure
    assert sum(r["interval"]["out_of_place"] for r in tap.run(1, ratio=0.01)) == 1


def test_idle_partitions_and_records_arriving_after_their_interval_was_planned(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    zeros = steady(2, every_s=120, start=0.05)
    produce(kafka_bootstrap, topic_name, 0, [b"a"] * len(zeros), zeros)
    produce(kafka_bootstrap, topic_name, 2, [b"only-3"], [at(3.2)])  # partition 1 stays idle
    tap = Tap(topic_name, variables)
    first = tap.run(0)
    assert tap.values(1) == [] and tap.values(2) == []
    assert sum(r["interval"]["owned"] for r in first) == sum(hour_of(t) == 0 for t in zeros)
    # Partition 1 wakes up with records of hour 1 and a late one of hour 0 (after hour 0 was planned).
    produce(kafka_bootstrap, topic_name, 1, [b"late-0", b"b1", b"b2"], [at(0.5), at(1.5), at(1.6)])
    second = tap.run(1)
    assert tap.values(1) == [b"late-0", b"b1", b"b2"]  # loaded once, by hour 1, and reported
    assert [e for r in second for e in r["interval"]["out_of_place_examples"]] == [
        {"offset": 0, "timestamp_ms": at(0.5)}
    ]
    tap.run(2)
    tap.run(3)
    assert tap.values(2) == [b"only-3"]
    assert len(tap.values(0)) == len(zeros)


def test_a_backfill_run_twice_and_a_clear_write_the_same_content(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=2, **ANY_TIME)
    rnd = random.Random(3)
    produced: dict[int, list[int]] = {}
    for p in range(2):
        stamps = [t + rnd.randint(-3, 3) * MINUTE for t in steady(5, every_s=60, start=-0.5)]
        stamps[rnd.randrange(len(stamps))] = FUTURE
        produced[p] = stamps
        produce(kafka_bootstrap, topic_name, p, [b"%d-%d" % (p, i) for i in range(len(stamps))], stamps)
    tap = Tap(topic_name, variables)
    for hour in (3, 1, 2, 0):  # a backfill, in any order
        tap.run(hour)
    first = {k: list(v) for k, v in tap.sink.items()}
    plans = dict(variables)
    for hour in range(4):  # the same backfill again
        tap.run(hour)
    tap.run(2)  # and a clear of one run
    assert tap.sink == first and variables == plans
    for p in range(2):
        loaded = tap.records(p)
        offsets = [o for o, _v, _t in loaded]
        assert len(offsets) == len(set(offsets))
        assert sorted(t for _o, _v, t in loaded if t != FUTURE) == sorted(
            t for t in produced[p] if 0 <= hour_of(t) < 4
        )


def test_retention_that_deleted_an_intervals_start(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 60, steady(3, every_s=180, start=0.05))
    tap = Tap(topic_name, variables)
    tap.run(0)  # hour 0 (offsets 0..18, stamped at minute 3 + 3i), and the zone of hour 1, [18, 21), recorded
    assert [o for o, _v, _t in tap.records(0)] == list(range(19))
    delete_records(kafka_bootstrap, topic_name, 0, 25)
    with pytest.raises(AirflowFailException, match=r"offsets \[18, 25\) \(7 records\)") as failed:
        tap.run(1)  # a data loss under on_data_loss='fail' is not retried
    assert isinstance(failed.value.__cause__, DataLossError)
    plan = KafkaPlanIntervalOperator(
        task_id="plan",
        topic=topic_name,
        interval_start=at(1),
        interval_end=at(2),
        on_data_loss="log_start",
        ledger="dag",
    )
    pushed: dict[str, Any] = {}
    context: Any = {
        "ti": SimpleNamespace(dag_id="dag", xcom_push=lambda key, value: pushed.update({key: value}))
    }
    context["run_id"] = "run-1"
    specs = plan.execute(context)
    assert pushed["plan"]["lost"] == [{"topic": topic_name, "partition": 0, "start": 18, "end": 25}]
    for spec in specs:
        MemoryLoad(task_id="load", offset_range=spec, store=tap.sink, on_data_loss="log_start").execute(
            context
        )
    # Hour 0's record 18 stays (its zone's rewrite lost it in Kafka, not in the target); hour 1 from the log start
    # to its end zone's records before hour 2 (offset 38, minute 117).
    assert [o for o, _v, _t in tap.records(0)] == [*range(19), *range(25, 39)]


class HorizonTap(Tap):
    """A tap whose ledger keeps the plans of ``horizon_hours`` before the newest planned end."""

    def __init__(self, topic: str, variables: dict[str, str], horizon_hours: float) -> None:
        super().__init__(topic, variables)
        self.horizon_hours = horizon_hours

    def run(self, hour: int, ratio: float | None = None) -> list[dict[str, Any]]:
        context: Any = {
            "ti": SimpleNamespace(dag_id="dag", xcom_push=lambda **_kw: None),
            "run_id": f"run-{hour}",
        }
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=self.topic,
            interval_start=at(hour),
            interval_end=at(hour + 1),
            max_disorder=self.disorder,
            ledger_horizon_days=self.horizon_hours / 24,
        )
        return [
            MemoryLoad(task_id="load", offset_range=spec, store=self.sink).execute(context)
            for spec in plan.execute(context)
        ]


def test_the_ledger_horizon_bounds_the_variables_and_clears_inside_it_reproduce(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    """Ten hourly runs with a 3.5-hour horizon: never more than four plans and the index; a clear inside the
    horizon rewrites the same content; an interval whose plan was deleted is refused; every record of the ten
    hours is in the target once, in its own hour (zones next to deleted plans keep their records)."""
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    rnd = random.Random(11)
    produced: dict[int, list[int]] = {}
    for p in range(2):
        stamps = [t + rnd.randint(-2, 2) * MINUTE for t in steady(10.5, every_s=90, start=-0.2)]
        produced[p] = stamps
        produce(kafka_bootstrap, topic_name, p, [b"%d-%d" % (p, i) for i in range(len(stamps))], stamps)
    tap = HorizonTap(topic_name, variables, horizon_hours=3.5)
    sizes = []
    for hour in range(10):
        tap.run(hour)
        sizes.append(len(variables))
    assert max(sizes) <= 4 + 1 and sorted(variables)[-1] == "logtap/dag/index"
    first, plans = {k: list(v) for k, v in tap.sink.items()}, dict(variables)
    tap.run(8)  # a clear inside the horizon
    assert tap.sink == first and variables == plans
    with pytest.raises(AirflowFailException, match="deleted by the ledger's horizon"):
        tap.run(3)
    assert tap.sink == first and variables == plans
    for p in range(2):
        loaded = tap.records(p)
        assert len({o for o, _v, _t in loaded}) == len(loaded)
        assert sorted(t for _o, _v, t in loaded) == sorted(t for t in produced[p] if 0 <= hour_of(t) < 10)


def test_under_airflow_tasks_test_the_interval_plan_is_not_recorded(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 60, steady(3, every_s=180, start=0.05))
    tap = Tap(topic_name, variables)
    tap.run(0)
    recorded = dict(variables)
    monkeypatch.setenv("AIRFLOW_TEST_MODE", "True")  # what airflow tasks test sets (Airflow 3)
    assert [r["records"] for r in tap.run(1)] and variables == recorded  # planned, loaded, nothing recorded
    tap.run(0)  # a recorded plan is reused as it is
    assert variables == recorded
    monkeypatch.delenv("AIRFLOW_TEST_MODE")
    tap.run(1)
    assert len(variables) == len(recorded) + 1  # the real run records it


def test_a_zone_written_while_its_neighbour_is_planned_and_loaded_keeps_both_sides(
    variables: dict[str, str], kafka_bootstrap: str, topic_name: str
) -> None:
    """A backfill runs intervals at once (its own max_active_runs): hour 0's load of the zone at 01:00 reads
    "hour 1 not planned", and while it writes, hour 1 is planned and loads that zone whole; hour 0's write then
    replaces the zone with its side only. The load looks again after its write and writes the zone again, so
    every record stays, once."""
    create_topic(kafka_bootstrap, topic_name)
    stamps = steady(2, every_s=60, start=0.02)
    produce(kafka_bootstrap, topic_name, 0, [b"%d" % i for i in range(len(stamps))], stamps)
    tap = Tap(topic_name, variables)
    context: Any = {"ti": SimpleNamespace(dag_id="dag", xcom_push=lambda **_kw: None), "run_id": "run-0"}
    specs = KafkaPlanIntervalOperator(
        task_id="plan", topic=topic_name, interval_start=at(0), interval_end=at(1), max_disorder=300
    ).execute(context)
    zone = next(s for s in specs if s.get("boundary_ms") == at(1))
    raced: list[bool] = []

    class RacingSink(MemorySink):
        def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
            batches = list(batches)  # this load has read its records (and chosen its side) ...
            if not raced:
                raced.append(True)
                tap.run(1)  # ... when hour 1 is planned and loaded, the shared zone written whole
            return super().write(rng, batches)

    class RacingLoad(MemoryLoad):
        def make_sink(self, context: Any) -> MemorySink:
            return RacingSink(self.store)

    RacingLoad(task_id="load", offset_range=zone, store=tap.sink).execute(context)
    for spec in specs:
        if spec is not zone:
            MemoryLoad(task_id="load", offset_range=spec, store=tap.sink).execute(context)
    assert raced == [True]
    loaded = [o for o, _v, _t in tap.records(0)]
    assert loaded == [i for i, t in enumerate(stamps) if hour_of(t) < 2]  # hours 0 and 1: every record, once
