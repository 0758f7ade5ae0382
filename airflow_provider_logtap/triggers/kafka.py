"""KafkaConditionTrigger: waits in the triggerer, costing no worker slot, until a Kafka condition holds or its
own deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from airflow_provider_logtap.compat import BaseTrigger, TriggerEvent
from airflow_provider_logtap.sensors.checks import check


class KafkaConditionTrigger(BaseTrigger):
    """Poll a condition (``backlog`` or ``completeness``, see :mod:`airflow_provider_logtap.core.conditions`)
    every ``poll_interval`` seconds until it holds, then fire once with its reason and details; or, once
    ``end_at`` has passed, fire ``{"status": "timeout", ...}`` with the last reason (an ordinary outcome: the
    sensor turns it into its timeout, a skip under ``soft_fail``).

    The blocking Kafka client runs in a worker thread (``sync_to_async``), never on the triggerer's event
    loop; each check opens and closes its own clients, so a cancelled trigger leaves none behind, and a
    triggerer restart simply re-creates the trigger from its serialized arguments (``end_at`` included, an
    absolute time) and polls on. The trigger keeps its own deadline because Airflow's defer timeout ends a
    trigger by cancelling it (the triggerer logs that as an ERROR) and ``airflow dags test`` ignores it.

    :param condition: ``backlog`` or ``completeness``.
    :param params: the condition's parameters (topic, group_id, min_records, ... and kafka_config_id).
    :param poll_interval: seconds between checks.
    :param end_at: the deadline, in seconds since the epoch (``None``: none).
    """

    def __init__(
        self,
        condition: str,
        params: dict[str, Any],
        poll_interval: float = 30.0,
        end_at: float | None = None,
    ) -> None:
        super().__init__()
        self.condition = condition
        self.params = params
        self.poll_interval = poll_interval
        self.end_at = end_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "condition": self.condition,
            "params": self.params,
            "poll_interval": self.poll_interval,
        }
        if self.end_at is not None:
            kwargs["end_at"] = self.end_at
        return "airflow_provider_logtap.triggers.kafka.KafkaConditionTrigger", kwargs

    def _left(self) -> float | None:
        return None if self.end_at is None else self.end_at - time.time()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        evaluate = sync_to_async(check, thread_sensitive=False)
        last = "not checked yet"
        details: dict[str, Any] = {}
        while True:
            left = self._left()
            if left is not None and left <= 0:
                yield TriggerEvent(self._timeout_event(last, details))
                return
            try:
                # A check that hangs past the deadline does not hold the trigger (its thread ends by itself:
                # every client call in it is bounded).
                verdict = await asyncio.wait_for(evaluate(self.condition, self.params), timeout=left)
            except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11
                continue  # the deadline passed during the check
            except Exception as exc:  # a broker that is away for a while: keep waiting, say why
                last = f"could not check: {exc}"
                self.log.warning(
                    "could not check %s (%s); retrying in %ss", self.condition, exc, self.poll_interval
                )
            else:
                if verdict.ready:
                    yield TriggerEvent(
                        {"status": "success", "reason": verdict.reason, "details": verdict.details}
                    )
                    return
                last, details = verdict.reason, verdict.details
                self.log.info("%s: %s", self.condition, verdict.reason)
            left = self._left()
            await asyncio.sleep(self.poll_interval if left is None else max(min(self.poll_interval, left), 0))

    def _timeout_event(self, last: str, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "timeout",
            "reason": f"{self.condition} did not hold by the deadline; last check: {last}",
            "details": details,
            "end_at": self.end_at,
        }

    async def cleanup(self) -> None:
        self.log.info("%s trigger on %s stopped", self.condition, self.params.get("topic"))
