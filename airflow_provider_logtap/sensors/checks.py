"""The checks the sensors and their triggers share: observe Kafka (blocking), decide (pure), emit metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow_provider_logtap.core import conditions
from airflow_provider_logtap.core.conditions import Verdict
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.metrics import gauge

log = logging.getLogger(__name__)


def check(condition: str, params: dict[str, Any]) -> Verdict:
    """Evaluate ``backlog`` or ``completeness`` now (blocking: run it in a thread from async code)."""
    hook = KafkaRangeHook(kafka_config_id=params.get("kafka_config_id", "kafka_default"))
    now_ms = int(time.time() * 1000)
    topic = params["topic"]
    if condition == "backlog":
        lags = hook.lag(params["group_id"], topic)
        for lag in lags:
            gauge("lag", lag.lag, topic=topic, partition=lag.partition, group=params["group_id"])
        gauge("lag", sum(p.lag for p in lags), topic=topic, group=params["group_id"])
        max_age = params.get("max_age_seconds")
        return conditions.backlog(
            lags,
            now_ms=now_ms,
            min_records=params.get("min_records"),
            max_age_ms=None if max_age is None else int(max_age * 1000),
        )
    if condition == "completeness":
        grace = params.get("idle_grace_seconds")
        return conditions.completeness(
            hook.progress_after(topic, int(params["after_ms"])),
            now_ms=now_ms,
            idle_grace_ms=None if grace is None else int(grace * 1000),
        )
    raise ValueError(f"condition must be one of {{'backlog', 'completeness'}}. Got {condition!r}")
