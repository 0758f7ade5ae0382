"""KafkaConditionTrigger: waits in the triggerer, costing no worker slot, until a Kafka condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from airflow_provider_logtap.compat import BaseTrigger, TriggerEvent
from airflow_provider_logtap.sensors.checks import check


class KafkaConditionTrigger(BaseTrigger):
    """Poll a condition (``backlog`` or ``completeness``, see :mod:`airflow_provider_logtap.core.conditions`)
    every ``poll_interval`` seconds until it holds, then fire once with its reason and details.

    The blocking Kafka client runs in a worker thread (``sync_to_async``), never on the triggerer's event
    loop; each check opens and closes its own clients, so a cancelled trigger leaves none behind, and a
    triggerer restart simply re-creates the trigger from its serialized arguments and polls on.

    :param condition: ``backlog`` or ``completeness``.
    :param params: the condition's parameters (topic, group_id, min_records, ... and kafka_config_id).
    :param poll_interval: seconds between checks.
    """

    def __init__(self, condition: str, params: dict[str, Any], poll_interval: float = 30.0) -> None:
        super().__init__()
        self.condition = condition
        self.params = params
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_logtap.triggers.kafka.KafkaConditionTrigger",
            {"condition": self.condition, "params": self.params, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        evaluate = sync_to_async(check, thread_sensitive=False)
        while True:
            try:
                verdict = await evaluate(self.condition, self.params)
            except Exception as exc:  # a broker that is away for a while: keep waiting, say why
                self.log.warning(
                    "could not check %s (%s); retrying in %ss", self.condition, exc, self.poll_interval
                )
            else:
                if verdict.ready:
                    yield TriggerEvent(
                        {"status": "success", "reason": verdict.reason, "details": verdict.details}
                    )
                    return
                self.log.info("%s: %s", self.condition, verdict.reason)
            await asyncio.sleep(self.poll_interval)

    async def cleanup(self) -> None:
        self.log.info("%s trigger on %s stopped", self.condition, self.params.get("topic"))
