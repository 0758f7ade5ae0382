"""A tap's chunking and scheduling settings reach its DAG's tasks; the UI label of a load is the chunk's label."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

from airflow_provider_logtap.core.chunks import chunk_specs, label
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.dag_factory import (
    PARTITION_LABEL,
    REPLAY_PRIORITY_WEIGHT,
    dag_for,
    replay_dag,
)
from airflow_provider_logtap.taps import parse_tap

TARGET = {"type": "s3_archive", "bucket": "logtap-archive"}


def tap(**settings: Any) -> Any:
    return parse_tap({"name": "weblogs_archive", "topic": "weblogs", "target": TARGET, **settings})


@pytest.mark.parametrize("chunk_records", [None, 1, 7, 1000])
def test_the_load_label_template_renders_the_chunk_label(chunk_records: int | None) -> None:
    """Airflow renders ``map_index_template`` with the task's rendered fields (a sandboxed Jinja): its text is
    the one :func:`label` writes in the task log."""
    template = SandboxedEnvironment().from_string(PARTITION_LABEL)
    ranges = [
        OffsetRange(topic="weblogs", partition=p, start=10 * p, end=10 * p + 25).to_dict() for p in (0, 3)
    ]
    for spec in chunk_specs(ranges, chunk_records):
        rendered = template.render(task=type("Task", (), {"offset_range": spec}))
        assert rendered == label(spec)
        assert ("chunk" in rendered) == (chunk_records is not None and chunk_records < 25)


@pytest.mark.parametrize("mode", ["group", "interval"])
def test_chunk_records_pool_priority_and_max_active_chunks_reach_the_tasks(mode: str) -> None:
    extra = {"schedule": "@hourly"} if mode == "interval" else {}
    t = tap(
        mode=mode, chunk_records=500_000, pool="kafka_fetch", max_active_chunks=4, priority_weight=20, **extra
    )
    dag = dag_for(t)
    plan: Any = dag.get_task("plan")
    load: Any = dag.get_task("load")
    assert plan.chunk_records == 500_000
    assert load.partial_kwargs["pool"] == "kafka_fetch"
    assert load.partial_kwargs["max_active_tis_per_dag"] == 4
    assert load.partial_kwargs["priority_weight"] == 20
    assert str(load.partial_kwargs["weight_rule"]).lower().endswith("absolute")


def test_by_default_loads_are_not_chunked_nor_limited_and_outrank_replays() -> None:
    dag = dag_for(tap())
    plan: Any = dag.get_task("plan")
    load: Any = dag.get_task("load")
    assert plan.chunk_records is None
    assert load.partial_kwargs.get("max_active_tis_per_dag") is None
    assert load.partial_kwargs.get("pool") in (None, "default_pool")
    replay_load: Any = replay_dag([tap()]).get_task("load")
    assert replay_load.partial_kwargs["priority_weight"] == REPLAY_PRIORITY_WEIGHT
    assert load.partial_kwargs["priority_weight"] > REPLAY_PRIORITY_WEIGHT


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"chunk_records": 0}, "chunk_records"),
        ({"max_active_chunks": 0}, "max_active_chunks"),
        ({"pool": ""}, "pool"),
        ({"priority_weight": 0}, "priority_weight"),
    ],
)
def test_invalid_scheduling_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    from airflow_provider_logtap.taps import TapConfigError

    with pytest.raises(TapConfigError) as info:
        tap(**settings)
    assert info.value.field == field
