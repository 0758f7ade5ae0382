"""The sensors' checks and the deferrable trigger against a real broker: backlog, completeness with idle and
empty partitions, the retention-risk check after the broker deleted records, the trigger firing, staying off
the event loop, and being cancelled."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from kafka_helpers import create_topic, delete_records, produce

from airflow_provider_logtap.compat import AirflowFailException
from airflow_provider_logtap.sensors.checks import check
from airflow_provider_logtap.triggers.kafka import KafkaConditionTrigger

HOUR = 3_600_000


@pytest.fixture
def now() -> int:
    """The wall clock at the test's start, in epoch ms (not at the module's import: a loaded machine may run a
    test long after that, and the ages the checks measure would grow by the wait)."""
    return int(time.time() * 1000)


@pytest.fixture
def hook(airflow_connections: None):  # type: ignore[no-untyped-def]
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    return KafkaRangeHook()


def test_backlog_by_records_and_by_age(now: int, hook: Any, kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"old"] * 5, [now - 2 * HOUR] * 5)
    produce(kafka_bootstrap, topic_name, 1, [b"new"] * 3)
    group = f"g-{topic_name}"
    hook.commit(group, topic_name, {0: (2, ""), 1: (0, "")})
    params = {"topic": topic_name, "group_id": group, "kafka_config_id": "kafka_default"}
    waiting = check("backlog", {**params, "min_records": 10})
    assert not waiting.ready and waiting.details["per_partition"] == {"0": 3, "1": 3}
    assert check("backlog", {**params, "min_records": 6}).ready
    by_age = check("backlog", {**params, "min_records": 100, "max_age_seconds": 3600})
    assert by_age.ready and by_age.details["oldest_age_ms"] >= 2 * HOUR - 60_000


def test_completeness_with_an_idle_and_an_empty_partition(
    now: int, hook: Any, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    produce(kafka_bootstrap, topic_name, 0, [b"a", b"b"], [now - HOUR, now])  # past the interval end
    produce(
        kafka_bootstrap, topic_name, 1, [b"c"], [now - 3 * HOUR]
    )  # idle for 3 hours; partition 2 is empty
    params = {"topic": topic_name, "after_ms": now - 30 * 60_000, "kafka_config_id": "kafka_default"}
    verdict = check("completeness", {**params, "idle_grace_seconds": 3600})
    assert verdict.ready
    assert verdict.details["partitions"] == {
        "0": "complete",
        "1": verdict.details["partitions"]["1"],
        "2": "empty",
    }
    assert verdict.details["partitions"]["1"].startswith("idle for")
    not_yet = check("completeness", {**params, "idle_grace_seconds": 5 * 3600})
    assert not not_yet.ready and "[1]" in not_yet.reason


async def _run_until_event(trigger: KafkaConditionTrigger, timeout: float) -> tuple[dict[str, Any], float]:
    """The trigger's event, and the longest the event loop was blocked meanwhile."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            worst = max(worst, now - last - 0.05)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        async with asyncio.timeout(timeout):
            async for event in trigger.run():
                return event.payload, worst
    finally:
        stop.set()
        await tick
    raise AssertionError("the trigger ended without an event")


def backlog_trigger(topic: str, *, min_records: int, poll_interval: float) -> KafkaConditionTrigger:
    params = {
        "topic": topic,
        "group_id": f"g-{topic}",
        "min_records": min_records,
        "kafka_config_id": "kafka_default",
    }
    return KafkaConditionTrigger("backlog", params, poll_interval=poll_interval)


def test_trigger_fires_once_the_condition_holds_without_blocking_the_loop(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    trigger = backlog_trigger(topic_name, min_records=5, poll_interval=0.5)
    assert trigger.serialize() == (
        "airflow_provider_logtap.triggers.kafka.KafkaConditionTrigger",
        {"condition": "backlog", "params": trigger.params, "poll_interval": 0.5},
    )
    threading.Timer(2.0, lambda: produce(kafka_bootstrap, topic_name, 0, [b"x"] * 5)).start()
    began = time.monotonic()
    payload, blocked = asyncio.run(_run_until_event(trigger, timeout=60))
    assert payload["status"] == "success" and payload["details"]["lag"] == 5
    assert time.monotonic() - began >= 2.0
    assert blocked < 0.5, f"the event loop was blocked for {blocked:.2f}s"


def test_a_cancelled_trigger_stops_and_cleans_up(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    trigger = backlog_trigger(topic_name, min_records=10**9, poll_interval=0.3)

    async def cancel_soon() -> tuple[str, float]:
        async def consume() -> None:
            async for _ in trigger.run():
                raise AssertionError("the condition cannot hold")

        task = asyncio.create_task(consume())
        await asyncio.sleep(2)  # a few checks went by
        began = time.monotonic()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            await trigger.cleanup()
            return "cancelled", time.monotonic() - began
        return "finished", time.monotonic() - began

    outcome, took = asyncio.run(cancel_soon())
    assert outcome == "cancelled" and took < 5, (outcome, took)


def test_retention_risk_check_warns_then_fails_on_a_real_log_start(
    hook: Any, kafka_bootstrap: str, topic_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Size-based retention (retention.bytes set): record headroom above the log start the broker moved."""
    create_topic(kafka_bootstrap, topic_name, partitions=2, **{"retention.bytes": "1000000000"})
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 100)
    produce(kafka_bootstrap, topic_name, 1, [b"y"] * 10)
    group = f"g-{topic_name}"
    hook.commit(group, topic_name, {0: (50, ""), 1: (10, "")})  # partition 1 has nothing left to load
    delete_records(kafka_bootstrap, topic_name, 0, 45)  # the log start moves to 45
    delete_records(kafka_bootstrap, topic_name, 1, 10)

    assert retention_check(topic_name, group, min_headroom=5) == {"at_risk": False, "partitions": {}}
    capsys.readouterr()
    near = retention_check(topic_name, group, min_headroom=10)
    assert near == {"at_risk": True, "partitions": {"0": "5 records of headroom before the log start"}}
    assert (
        "retention risk on partitions [0]" in (logged := capsys.readouterr().out) and "retention.ms" in logged
    )
    delete_records(kafka_bootstrap, topic_name, 0, 60)  # now past the committed offset: loss
    with pytest.raises(AirflowFailException, match=r"offsets \[50, 60\) already deleted"):
        retention_check(topic_name, group, min_headroom=1, fail=True)


def test_retention_risk_by_time_reads_the_topics_retention_ms(
    now: int, hook: Any, kafka_bootstrap: str, topic_name: str
) -> None:
    """Time-based retention: the unloaded records' age against the topic's own retention.ms, not their count."""
    create_topic(kafka_bootstrap, topic_name, partitions=2, **{"retention.ms": str(10 * HOUR)})
    produce(kafka_bootstrap, topic_name, 0, [b"old"] * 3, [now - 9 * HOUR] * 3)  # 90% of retention.ms used
    produce(kafka_bootstrap, topic_name, 1, [b"new"] * 3)  # at the log start, but fresh: no risk
    group = f"g-{topic_name}"
    verdict = retention_check(topic_name, group, min_headroom=1000)
    assert verdict["at_risk"] is True and list(verdict["partitions"]) == ["0"]
    assert "% of retention.ms" in verdict["partitions"]["0"]
    assert retention_check(topic_name, group, min_headroom=1000, max_retention_share=0.95)["at_risk"] is False
    retention = hook.retention(topic_name)
    assert (retention.ms, retention.bytes, retention.deletes) == (10 * HOUR, None, True)


def retention_check(topic: str, group: str, **options: Any) -> dict[str, Any]:
    from airflow_provider_logtap.sensors.kafka import KafkaRetentionRiskCheckOperator

    op = KafkaRetentionRiskCheckOperator(task_id="retention_risk", topic=topic, group_id=group, **options)
    return op.execute({})  # type: ignore[arg-type]


def test_the_interval_plan_waits_for_completeness_before_it_plans(
    now: int, airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    """The tap DAGs' interval plan waits itself (no sensor task before it, for Airflow 2's backfill): while the
    interval can still get records it defers to the completeness trigger and plans nothing; a timed-out wait
    raises the sensor timeout, as the sensor does."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_logtap.compat import AirflowSensorTimeout
    from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator

    create_topic(kafka_bootstrap, topic_name, partitions=1)
    produce(kafka_bootstrap, topic_name, 0, [b"inside"], [now - HOUR // 2])
    end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now / 1000))
    plan = KafkaPlanIntervalOperator(
        task_id="plan",
        topic=topic_name,
        interval_start="2000-01-01T00:00:00+00:00",
        interval_end=end,
        wait_for_completeness=True,
        deferrable=True,
        idle_grace=None,
        timeout=60,
    )
    with pytest.raises(TaskDeferred) as deferred:
        plan.execute({"ti": None})  # type: ignore[arg-type]  # not ready: nothing is pushed, nothing planned
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.trigger.condition == "completeness"
    with pytest.raises(AirflowSensorTimeout, match="not met within the sensor's timeout"):
        plan.execute_complete({"ti": None}, {"status": "timeout", "reason": "no record after the end"})  # type: ignore[arg-type]
    assert not KafkaPlanIntervalOperator(
        task_id="p", topic=topic_name
    ).wait_for_completeness  # users' default
