"""Planning, claiming and committing through KafkaRangeHook (an Airflow Kafka connection) on a real broker."""

from __future__ import annotations

import time

import pytest
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap.core import claims
from airflow_provider_logtap.core.ranges import EndSpec, OffsetRange, StartSpec
from airflow_provider_logtap.errors import ConfigurationError, DataLossError

COMMITTED, HWM = StartSpec(kind="committed"), EndSpec(kind="high_watermark")


@pytest.fixture
def hook(airflow_connections: None):  # type: ignore[no-untyped-def]
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    return KafkaRangeHook()


def spans(plan) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return [(r.partition, r.start, r.end) for r in plan.ranges]


def test_group_mode_plans_claims_and_commits(hook, kafka_bootstrap: str, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    produce(kafka_bootstrap, topic_name, 0, [b"a"] * 10)
    produce(kafka_bootstrap, topic_name, 2, [b"c"] * 4)
    group = f"g-{topic_name}"
    plan = hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group)
    assert spans(plan) == [(0, 0, 10), (1, 0, 0), (2, 0, 4)]
    hook.claim(plan, "dag/run-1")
    state = hook.committed(group, topic_name, [0, 1, 2])
    assert {p: (s.offset, s.claim) for p, s in state.items()} == {
        r.partition: (r.start, claims.planned("dag/run-1", r)) for r in plan.ranges
    }
    hook.commit(
        group,
        topic_name,
        {r.partition: (r.end, claims.committed("dag/run-1", r).encode()) for r in plan.ranges},
    )
    produce(kafka_bootstrap, topic_name, 1, [b"b"] * 5)
    again = hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group)
    assert spans(again) == [(0, 10, 10), (1, 0, 5), (2, 4, 4)]


def test_a_newer_plan_supersedes_an_older_one(hook, kafka_bootstrap: str, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 10)
    group = f"g-{topic_name}"
    old = hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group)
    hook.claim(old, "dag/old")
    produce(kafka_bootstrap, topic_name, 0, [b"y"] * 5)
    new = hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group)
    hook.claim(new, "dag/new")
    state = hook.committed(group, topic_name, [0])[0]
    old_range, new_range = old.range_for(0), new.range_for(0)
    assert (old_range.end, new_range.end) == (10, 15)
    assert claims.before_write(
        run="dag/old", rng=old_range, claim=state.claim, offset=state.offset
    ).action == ("superseded")
    assert claims.before_commit(
        run="dag/old", rng=old_range, claim=state.claim, offset=state.offset
    ).action == ("superseded")
    assert claims.before_commit(
        run="dag/new", rng=new_range, claim=state.claim, offset=state.offset
    ).action == ("commit")


def test_timestamps_resolve_to_offsets(hook, kafka_bootstrap: str, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name)
    base = int(time.time() * 1000) - 3_600_000  # recent: older timestamps fall to the 7-day retention at once
    produce(
        kafka_bootstrap,
        topic_name,
        0,
        [b"r%d" % i for i in range(10)],
        timestamps=[base + i * 1000 for i in range(10)],
    )
    plan = hook.plan(
        topic=topic_name,
        start=StartSpec(kind="timestamp", timestamp_ms=base + 2500),
        end=EndSpec(kind="timestamp", timestamp_ms=base + 7000),
    )
    assert spans(plan) == [(0, 3, 7)]
    # An end time after the last record ends at the high watermark.
    open_end = hook.plan(
        topic=topic_name,
        start=StartSpec(kind="earliest"),
        end=EndSpec(kind="timestamp", timestamp_ms=base + 10**9),
    )
    assert spans(open_end) == [(0, 0, 10)]
    # Inverted times are refused like inverted offsets (before: an empty replay that "succeeded").
    with pytest.raises(ConfigurationError, match="is not after the start time"):
        hook.plan(
            topic=topic_name,
            start=StartSpec(kind="timestamp", timestamp_ms=base + 7000),
            end=EndSpec(kind="timestamp", timestamp_ms=base + 2500),
        )
    same = base + 5000
    with pytest.raises(ConfigurationError, match="is not after the start time"):
        hook.plan(
            topic=topic_name,
            start=StartSpec(kind="timestamp", timestamp_ms=same),
            end=EndSpec(kind="timestamp", timestamp_ms=same),
        )
    # An explicit start offset with an end time that the log reaches before it.
    with pytest.raises(ConfigurationError, match="is reached at offset 3, before the start offset 8"):
        hook.plan(
            topic=topic_name,
            start=StartSpec(kind="offsets", offsets={0: 8}),
            end=EndSpec(kind="timestamp", timestamp_ms=base + 2500),
        )


def test_max_records_and_explicit_offsets(hook, kafka_bootstrap: str, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 30)
    capped = hook.plan(
        topic=topic_name, start=StartSpec(kind="earliest"), end=EndSpec(kind="max_records", max_records=12)
    )
    assert spans(capped) == [(0, 0, 12), (1, 0, 0)]
    explicit = hook.plan(
        topic=topic_name,
        start=StartSpec(kind="offsets", offsets={0: 5}),
        end=EndSpec(kind="offsets", offsets={0: 9}),
    )
    assert spans(explicit) == [(0, 5, 9)]
    with pytest.raises(ConfigurationError, match="beyond its high watermark 30"):
        hook.plan(
            topic=topic_name,
            start=StartSpec(kind="offsets", offsets={0: 5}),
            end=EndSpec(kind="offsets", offsets={0: 31}),
        )


def test_unknown_topic_is_a_clear_error(hook, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=f"topic '{topic_name}' cannot be read"):
        hook.plan(topic=topic_name, start=StartSpec(kind="earliest"), end=HWM)


def test_retention_before_the_committed_offset(hook, kafka_bootstrap: str, topic_name: str) -> None:  # type: ignore[no-untyped-def]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 50)
    group = f"g-{topic_name}"
    hook.commit(group, topic_name, {0: (10, "")})
    delete_records(kafka_bootstrap, topic_name, 0, 30)
    with pytest.raises(DataLossError, match=rf"{topic_name}\[0\]: offsets \[10, 30\) \(20 records\)"):
        hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group)
    plan = hook.plan(topic=topic_name, start=COMMITTED, end=HWM, group_id=group, on_data_loss="log_start")
    assert spans(plan) == [(0, 30, 50)]
    assert plan.lost == (OffsetRange(topic=topic_name, partition=0, start=10, end=30),)
