"""Interval mode against a real broker: the hard cases of mapping data intervals to offsets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap.core.ranges import EndSpec, OffsetRange, Plan, StartSpec
from airflow_provider_logtap.errors import DataLossError
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.ledger import PlanLedger

HOUR = 3_600_000
# Recent times: the broker's time-based retention (7 days) would delete records with older timestamps at once.
BASE = (int(time.time() * 1000) // HOUR - 12) * HOUR


@pytest.fixture
def hook(airflow_connections: None):  # type: ignore[no-untyped-def]
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    return KafkaRangeHook()


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-intervals"))
    yield c
    c.close()


def plan(hook: Any, ledger: PlanLedger, topic: str, hour: int, **kw: Any) -> Plan:
    start, end = BASE + hour * HOUR, BASE + (hour + 1) * HOUR
    planned, _ = ledger.plan_interval(
        topic=topic,
        start_ms=start,
        end_ms=end,
        run=f"run-{hour}",
        observe=lambda: hook.observe(
            topic=topic,
            start=StartSpec(kind="timestamp", timestamp_ms=start),
            end=EndSpec(kind="timestamp", timestamp_ms=end),
        ),
        **kw,
    )
    return planned


def records(consumer: Consumer, rng: OffsetRange) -> list[bytes | None]:
    return [v for b in read_range(consumer, rng) for v in b.values]


def at(hour: float) -> int:
    return int(BASE + hour * HOUR)


def test_in_order_intervals_hold_exactly_their_records_and_idle_partitions_are_empty(
    hook: Any, kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    hours = [0.1, 0.5, 1.2, 1.9, 2.5, 3.7]
    produce(kafka_bootstrap, topic_name, 0, [b"h%.1f" % h for h in hours], [at(h) for h in hours])
    produce(kafka_bootstrap, topic_name, 2, [b"late-only"], [at(3.2)])  # partition 1 stays idle
    ledger = PlanLedger("dag", store={})
    for hour in range(4):
        p = plan(hook, ledger, topic_name, hour)
        assert records(consumer, p.range_for(0)) == [b"h%.1f" % h for h in hours if hour <= h < hour + 1]
        assert p.range_for(1).empty
        assert records(consumer, p.range_for(2)) == ([b"late-only"] if hour == 3 else [])


def test_out_of_order_timestamps_and_late_records_land_exactly_once(
    hook: Any, kafka_bootstrap: str, topic_name: str, consumer: Consumer
) -> None:
    """Kafka timestamps out of order in a partition, and records appended after their interval was planned:
    every offset is in exactly one interval, whichever order the intervals were planned in."""
    create_topic(kafka_bootstrap, topic_name)
    first = [0.2, 0.9, 0.4, 1.5, 1.1, 0.8, 2.6, 1.7]  # out of order: 0.4 and 0.8 after later ones
    produce(kafka_bootstrap, topic_name, 0, [b"a%d" % i for i in range(len(first))], [at(h) for h in first])
    ledger = PlanLedger("dag", store={})
    planned = {2: plan(hook, ledger, topic_name, 2), 0: plan(hook, ledger, topic_name, 0)}
    # Records arrive late with old timestamps (hour 0 and 1) after hours 0 and 2 were planned.
    late = [0.3, 1.4, 3.1]
    produce(kafka_bootstrap, topic_name, 0, [b"b%d" % i for i in range(len(late))], [at(h) for h in late])
    planned[1] = plan(hook, ledger, topic_name, 1)
    planned[3] = plan(hook, ledger, topic_name, 3)
    ranges = [planned[h].range_for(0) for h in range(4)]
    assert [(r.start, r.end) for r in ranges] == list(
        zip([0] + [r.end for r in ranges[:-1]], [r.end for r in ranges], strict=True)
    )
    assert ranges[-1].end == len(first) + len(late)
    seen = [v for r in ranges for v in records(consumer, r)]
    assert sorted(seen) == sorted(
        [b"a%d" % i for i in range(len(first))] + [b"b%d" % i for i in range(len(late))]
    )


def test_a_rerun_after_new_data_reuses_the_recorded_plan(
    hook: Any, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 3, [at(0.1), at(0.2), at(0.3)])
    store: dict[str, str] = {}
    first = plan(hook, PlanLedger("dag", store=store), topic_name, 0)
    assert (first.range_for(0).start, first.range_for(0).end) == (0, 3)
    produce(kafka_bootstrap, topic_name, 0, [b"y"] * 2, [at(0.4), at(1.5)])
    # The XCom of the first run is gone (a clear); the ledger (here a dict, in Airflow the Variables) is not.
    again = plan(hook, PlanLedger("dag", store=store), topic_name, 0)
    assert again == first
    nxt = plan(hook, PlanLedger("dag", store=store), topic_name, 1)
    assert (nxt.range_for(0).start, nxt.range_for(0).end) == (3, 5)


def test_retention_that_deleted_an_intervals_start(hook: Any, kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 10, [at(0.05 * i) for i in range(10)])
    produce(kafka_bootstrap, topic_name, 0, [b"y"] * 10, [at(1 + 0.05 * i) for i in range(10)])
    store: dict[str, str] = {}
    plan(hook, PlanLedger("dag", store=store), topic_name, 0)  # hour 0 = [0, 10)
    delete_records(kafka_bootstrap, topic_name, 0, 14)
    with pytest.raises(DataLossError, match=r"offsets \[10, 14\) \(4 records\)"):
        plan(hook, PlanLedger("dag", store=store), topic_name, 1)
    p = plan(hook, PlanLedger("dag", store=store), topic_name, 1, on_data_loss="log_start")
    assert (p.range_for(0).start, p.range_for(0).end) == (14, 20)
    assert p.lost == (OffsetRange(topic=topic_name, partition=0, start=10, end=14),)
