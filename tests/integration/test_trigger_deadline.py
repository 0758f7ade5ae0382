"""The deferrable sensors' own deadline against a real broker: the trigger ends itself with a timeout event
when no backlog came (no cancellation, so no "Trigger cancelled due to timeout" ERROR from the triggerer), the
deadline survives a triggerer restart (it is serialized, absolute), and the sensor turns the event into its
ordinary timeout: a skip under soft_fail, said at INFO."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from kafka_helpers import create_topic

from airflow_provider_logtap.sensors.kafka import DEFER_TIMEOUT_MARGIN, KafkaBacklogSensor
from airflow_provider_logtap.triggers.kafka import KafkaConditionTrigger


def never_ready(topic: str, end_at: float | None) -> KafkaConditionTrigger:
    params = {
        "topic": topic,
        "group_id": f"g-{topic}",
        "min_records": 10**9,
        "kafka_config_id": "kafka_default",
    }
    return KafkaConditionTrigger("backlog", params, poll_interval=0.5, end_at=end_at)


async def events_of(trigger: KafkaConditionTrigger, limit: float) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(limit):
        async for event in trigger.run():
            out.append(event.payload)
    return out


def test_the_trigger_ends_itself_at_its_deadline_with_a_timeout_event(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    end_at = time.time() + 3
    trigger = never_ready(topic_name, end_at)
    began = time.monotonic()
    [event] = asyncio.run(events_of(trigger, limit=30))  # ends by itself: nothing cancels it
    took = time.monotonic() - began
    assert 2.5 < took < 6, took
    assert event["status"] == "timeout" and event["end_at"] == end_at
    assert "backlog did not hold by the deadline; last check: lag 0 records" in event["reason"]
    assert event["details"]["lag"] == 0


def test_the_deadline_is_serialized_so_a_restarted_triggerer_keeps_it(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    classpath, kwargs = never_ready(topic_name, time.time() - 1).serialize()
    assert classpath == "airflow_provider_logtap.triggers.kafka.KafkaConditionTrigger"
    rebuilt = KafkaConditionTrigger(**kwargs)  # as a new triggerer does, after the deadline passed meanwhile
    began = time.monotonic()
    [event] = asyncio.run(events_of(rebuilt, limit=10))
    assert event["status"] == "timeout" and time.monotonic() - began < 1
    assert "end_at" not in never_ready(topic_name, None).serialize()[1]  # no deadline: as before


def sensor(topic: str, **options: Any) -> KafkaBacklogSensor:
    return KafkaBacklogSensor(
        task_id="wait_for_backlog",
        topic=topic,
        group_id=f"g-{topic}",
        min_records=1,
        deferrable=True,
        poll_interval=5,
        **options,
    )


class FakeTI:
    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError("no condition met")


def test_the_sensor_defers_with_its_deadline_and_airflows_timeout_a_little_later(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    began = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor(topic_name, timeout=120).execute({"ti": FakeTI()})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, KafkaConditionTrigger)
    assert trigger.end_at is not None and began + 120 <= trigger.end_at <= time.time() + 120
    assert deferred.value.timeout == timedelta(seconds=120 + DEFER_TIMEOUT_MARGIN)


def test_a_timeout_event_is_the_sensors_timeout_a_skip_under_soft_fail_said_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = {"status": "timeout", "reason": "backlog did not hold by the deadline; last check: lag 0 records"}
    with pytest.raises(AirflowSensorTimeout, match="not met within the sensor's timeout"):
        sensor("weblogs", timeout=60).resume_execution("execute_complete", {"event": event}, {})  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException):
        sensor("weblogs", timeout=60, soft_fail=True).resume_execution(
            "execute_complete",
            {"event": event},
            {},  # type: ignore[arg-type]
        )
    said = capsys.readouterr().out  # the task's structlog lines
    assert f"[info     ] backlog: not met within the sensor's timeout (60s): {event['reason']}" in said
    assert "[error" not in said
