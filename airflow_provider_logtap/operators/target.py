"""KafkaToTargetOperator: one range into a target given as data (the replay DAG's load, whatever the target)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.compat import Context, fail_without_retry, run_identity
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.targets import build_sink, target_from_dict


class KafkaToTargetOperator(KafkaRangeLoadOperator):
    """Load one offset range into the target described by ``replay`` (made by :class:`KafkaReplayPlanOperator`).

    :param replay: ``{"target": {...}, "only_partitions": [...], "kafka_conn_id": ...}``.

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (*KafkaRangeLoadOperator.template_fields, "replay")

    def __init__(self, *, replay: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replay = replay

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        self.kafka_config_id = self.replay.get("kafka_conn_id", self.kafka_config_id)
        self.source = self.replay.get("source") or self.source
        return super().execute(context)

    def make_sink(self, context: Context) -> Sink:
        return build_sink(
            target_from_dict(self.replay["target"]),
            run=run_identity(context),
            only_partitions=tuple(self.replay.get("only_partitions") or ()),
        )
