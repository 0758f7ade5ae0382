"""Sensors that make scheduled loads efficient and safe: backlog (group mode), completeness (interval mode),
and the retention-risk check. Each sensor pokes, reschedules or defers (``deferrable=True``) to
:class:`~airflow_provider_logtap.triggers.kafka.KafkaConditionTrigger`; timeouts and ``soft_fail`` behave as
for any Airflow sensor."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_provider_logtap.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    BaseOperator,
    BaseSensorOperator,
    Context,
    fail_without_retry,
)
from airflow_provider_logtap.core import conditions
from airflow_provider_logtap.core.ranges import parse_timestamp_ms
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.metrics import gauge
from airflow_provider_logtap.sensors.checks import check
from airflow_provider_logtap.triggers.kafka import KafkaConditionTrigger


def _seconds(value: timedelta | float | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


# Airflow's defer timeout stays as a backstop this long after the trigger's own deadline.
DEFER_TIMEOUT_MARGIN = 60.0


class _KafkaConditionSensor(BaseSensorOperator):
    condition = ""

    def __init__(
        self,
        *,
        kafka_config_id: str = "kafka_default",
        deferrable: bool = False,
        poll_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.kafka_config_id = kafka_config_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def params_for(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    @fail_without_retry
    def poke(self, context: Context) -> bool:
        verdict = check(self.condition, self.params_for(context))
        self.log.info("%s: %s %s", self.condition, verdict.reason, verdict.details)
        if verdict.ready:
            context["ti"].xcom_push(
                key="condition", value={"reason": verdict.reason, "details": verdict.details}
            )
        return verdict.ready

    @fail_without_retry
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        timeout = _seconds(self.timeout)
        end_at = time.time() + timeout if timeout else None
        self.defer(
            trigger=KafkaConditionTrigger(
                self.condition, self.params_for(context), self.poll_interval, end_at=end_at
            ),
            method_name="execute_complete",
            # The trigger ends itself at end_at; Airflow's timeout only if that failed (a stuck triggerer).
            timeout=(
                timedelta(seconds=timeout + max(DEFER_TIMEOUT_MARGIN, self.poll_interval))
                if timeout
                else None
            ),
        )
        return None

    @fail_without_retry
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if event and event.get("status") == "timeout":
            # An idle wait is an ordinary outcome: the sensor's timeout (a skip under soft_fail), said at INFO.
            waited = _seconds(self.timeout) or 0
            message = (
                f"{self.condition}: not met within the sensor's timeout ({waited:.0f}s): {event['reason']}"
            )
            self.log.info(message)
            raise AirflowSensorTimeout(message)
        if not event or event.get("status") != "success":
            raise AirflowException(f"{self.condition} trigger ended without success: {event}")
        self.log.info("%s: %s %s", self.condition, event["reason"], event["details"])
        return event["details"]


class KafkaBacklogSensor(_KafkaConditionSensor):
    """Wait until a tap's group lags by ``min_records`` records or its oldest unconsumed record is older than
    ``max_age`` (group mode), reporting the lag per partition (and as the ``logtap.lag`` metric).

    :param topic: the topic.
    :param group_id: the tap's consumer group.
    :param min_records: start once the total lag reaches this.
    :param max_age: ... or once the oldest unconsumed record is this old (``timedelta`` or seconds).
    :param kafka_config_id: the Kafka connection id.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds between checks.
    """

    condition = "backlog"
    template_fields: Sequence[str] = ("topic", "group_id")

    def __init__(
        self,
        *,
        topic: str,
        group_id: str,
        min_records: int | None = None,
        max_age: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.group_id = group_id
        self.min_records = min_records
        self.max_age = max_age

    def params_for(self, context: Context) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group_id": self.group_id,
            "min_records": self.min_records,
            "max_age_seconds": _seconds(self.max_age),
            "kafka_config_id": self.kafka_config_id,
        }


class KafkaIntervalCompleteSensor(_KafkaConditionSensor):
    """Wait until a data interval can be complete (interval mode): every partition holds a record stamped at or
    after ``interval_end + lateness``, or is empty, or has been idle for ``idle_grace``.

    :param topic: the topic.
    :param interval_end: the interval's end (default ``{{ data_interval_end }}``).
    :param lateness: how long after the interval end records may still arrive stamped inside it.
    :param idle_grace: a partition without new records for this long counts as complete (``None``: never).
    """

    condition = "completeness"
    template_fields: Sequence[str] = ("topic", "interval_end")

    def __init__(
        self,
        *,
        topic: str,
        interval_end: Any = "{{ data_interval_end }}",
        lateness: timedelta | float = 0,
        idle_grace: timedelta | float | None = 600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.interval_end = interval_end
        self.lateness = lateness
        self.idle_grace = idle_grace

    def params_for(self, context: Context) -> dict[str, Any]:
        after = parse_timestamp_ms(self.interval_end, "interval_end") + int(
            (_seconds(self.lateness) or 0) * 1000
        )
        return {
            "topic": self.topic,
            "after_ms": after,
            "idle_grace_seconds": _seconds(self.idle_grace),
            "kafka_config_id": self.kafka_config_id,
        }


class KafkaRetentionRiskCheckOperator(BaseOperator):
    """Warn — and with ``fail=True`` fail — when a tap's group has unloaded records that the topic's retention
    is about to delete (or deleted already): by time, when the oldest unloaded record's age reached
    ``max_retention_share`` of the topic's ``retention.ms``; by size, when they start within ``min_headroom``
    records of the log start while ``retention.bytes`` is set. The topic's configuration is read each run.

    :param topic: the topic.
    :param group_id: the tap's consumer group.
    :param min_headroom: records between the committed offset and the log start below which it is a risk
        (size-based retention).
    :param max_retention_share: share of ``retention.ms`` the oldest unloaded record may reach (0 < share <= 1).
    :param fail: fail the task on risk instead of only warning.
    :param kafka_config_id: the Kafka connection id.
    """

    template_fields: Sequence[str] = ("topic", "group_id")

    def __init__(
        self,
        *,
        topic: str,
        group_id: str,
        min_headroom: int = 100_000,
        max_retention_share: float = 0.8,
        fail: bool = False,
        kafka_config_id: str = "kafka_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.group_id = group_id
        if not 0 < max_retention_share <= 1:
            raise ConfigurationError(
                f"max_retention_share must be in (0, 1]. Got {max_retention_share!r}; e.g. 0.8 warns once the "
                "oldest unloaded record has used up 80% of the topic's retention.ms"
            )
        self.min_headroom = min_headroom
        self.max_retention_share = max_retention_share
        self.fail = fail
        self.kafka_config_id = kafka_config_id

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        retention = hook.retention(self.topic)
        lags = hook.lag(self.group_id, self.topic, oldest=retention.deletes and retention.ms is not None)
        for lag in lags:
            gauge("headroom", lag.position - lag.log_start, topic=self.topic, partition=lag.partition)
        verdict = conditions.retention_risk(
            lags,
            min_headroom=self.min_headroom,
            retention=retention,
            now_ms=int(time.time() * 1000),
            max_share=self.max_retention_share,
        )
        if verdict.ready:
            message = (
                f"{self.topic} / group {self.group_id}: {verdict.reason}. Load more often, raise the "
                "topic's retention.ms / retention.bytes, or raise the tap's max_records_per_run."
            )
            if self.fail:
                raise AirflowFailException(message)
            self.log.warning(message)
        else:
            self.log.info("%s / group %s: %s", self.topic, self.group_id, verdict.reason)
        return {"at_risk": verdict.ready, **verdict.details}
