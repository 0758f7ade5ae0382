"""KafkaRangeHook: plan, read and commit bounded offset ranges, on the Kafka provider's connection."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from airflow_provider_logtap.compat import kafka_client_config
from airflow_provider_logtap.core import claims
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.conditions import PartitionLag, PartitionProgress, Retention
from airflow_provider_logtap.core.ranges import (
    EndSpec,
    OffsetRange,
    PartitionState,
    Plan,
    StartSpec,
    plan_ranges,
)
from airflow_provider_logtap.kafka import client, offsets, reader

READER_GROUP = "logtap-reader"


class KafkaRangeHook(KafkaBaseHook):
    """Bounded offset ranges of a topic over an Apache Kafka connection (``conn_type`` ``kafka``).

    The connection is the Kafka provider's: its extra is the librdkafka configuration (``bootstrap.servers``,
    security settings). logtap sets the consumer settings a range read needs (no auto-commit, ``assign()``,
    ``read_committed``, bounded fetch buffers); a connection may override the buffer sizes.

    :param kafka_config_id: the Airflow connection id, ``kafka_default`` by default.
    """

    hook_name = "Apache Kafka (logtap ranges)"

    def __init__(self, kafka_config_id: str = KafkaBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(kafka_config_id=kafka_config_id, **kwargs)

    def client_config(self) -> dict[str, Any]:
        return kafka_client_config(self)

    def admin(self) -> AdminClient:
        return AdminClient(client.admin_config(self.client_config()))

    @contextmanager
    def consumer(self, group_id: str | None) -> Iterator[Consumer]:
        """A consumer for ``assign()`` reads and explicit commits as ``group_id``; closed on exit."""
        consumer = Consumer(client.reader_config(self.client_config(), group_id or READER_GROUP))
        try:
            yield consumer
        finally:
            consumer.close()

    def observe(
        self,
        *,
        topic: str,
        start: StartSpec,
        end: EndSpec,
        group_id: str | None = None,
        partitions: Sequence[int] | None = None,
    ) -> list[PartitionState]:
        """What the planner needs of ``topic``'s partitions, observed now (see :func:`offsets.observe`)."""
        isolation = str(self.client_config().get("isolation.level", "read_committed"))
        with self.consumer(group_id) as consumer:
            states, _committed = offsets.observe(
                self.admin(),
                consumer,
                topic=topic,
                start=start,
                end=end,
                partitions=partitions,
                isolation=isolation,
            )
        return states

    def plan(
        self,
        *,
        topic: str,
        start: StartSpec,
        end: EndSpec,
        group_id: str | None = None,
        partitions: Sequence[int] | None = None,
        on_data_loss: str = "fail",
    ) -> Plan:
        """Observe ``topic`` now and plan one run's ranges (see :func:`plan_ranges`)."""
        if start.kind == "committed" and not group_id:
            raise ValueError("start='committed' needs the tap's group_id")
        states = self.observe(topic=topic, start=start, end=end, group_id=group_id, partitions=partitions)
        plan = plan_ranges(
            topic=topic,
            states=states,
            start=start,
            end=end,
            on_data_loss=on_data_loss,
            group_id=group_id,
            planned_at_ms=int(time.time() * 1000),
        )
        return plan

    def claim(self, plan: Plan, run: str) -> None:
        """Commit the plan's start offsets unchanged, with claims naming ``run`` (see :mod:`core.claims`)."""
        if not plan.group_id:
            raise ValueError("only a plan made for a consumer group can be claimed")
        with self.consumer(plan.group_id) as consumer:
            offsets.commit_offsets(
                consumer,
                plan.topic,
                {r.partition: (r.start, claims.planned(run, r).encode()) for r in plan.ranges},
            )

    def committed(self, group_id: str, topic: str, partitions: Sequence[int]) -> dict[int, offsets.Committed]:
        with self.consumer(group_id) as consumer:
            return offsets.committed_offsets(consumer, topic, partitions)

    def commit(self, group_id: str, topic: str, ends: dict[int, tuple[int, str]]) -> None:
        """Commit ``{partition: (offset, metadata)}`` for ``group_id``."""
        with self.consumer(group_id) as consumer:
            offsets.commit_offsets(consumer, topic, ends)

    def read(self, rng: OffsetRange, **options: Any) -> Iterator[RecordBatch]:
        """The records of ``rng`` in batches (see :func:`airflow_provider_logtap.kafka.reader.read_range`)."""
        options.setdefault("report", self.log.info)
        with self.consumer(None) as consumer:
            yield from reader.read_range(consumer, rng, **options)

    def lag(self, group_id: str, topic: str, oldest: bool = True) -> list[PartitionLag]:
        """The group's lag per partition (and the oldest unconsumed record's Kafka timestamp)."""
        with self.consumer(group_id) as consumer:
            return offsets.group_lag(self.admin(), consumer, topic=topic, oldest=oldest)

    def retention(self, topic: str) -> Retention:
        """What ``topic`` deletes by (``retention.ms``, ``retention.bytes``, ``cleanup.policy``)."""
        return offsets.topic_retention(self.admin(), topic)

    def progress_after(self, topic: str, after_ms: int) -> list[PartitionProgress]:
        """Per partition: a record at or after ``after_ms`` yet, empty, last record's timestamp."""
        with self.consumer(None) as consumer:
            return offsets.progress_after(self.admin(), consumer, topic=topic, after_ms=after_ms)
