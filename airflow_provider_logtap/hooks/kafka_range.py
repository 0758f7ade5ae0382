"""KafkaRangeHook: plan, read and commit bounded offset ranges, on the Kafka provider's connection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast

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
from airflow_provider_logtap.errors import NotRetryable
from airflow_provider_logtap.kafka import client, offsets, reader
from airflow_provider_logtap.kafka.client import KafkaSecurityRefusedError, KafkaUnreachableError

READER_GROUP = "logtap-reader"
# How long a hook waits for the first answer of a cluster before it fails with KafkaUnreachableError.
DEFAULT_CONNECT_TIMEOUT = 30.0
F = TypeVar("F", bound=Callable[..., Any])


def _talks(method: F) -> F:
    """A hook method that talks to Kafka: the cluster answered first (within ``connect_timeout``),
    librdkafka's repeated lines are flushed at the end, and a failure to reach any broker is a
    :class:`KafkaUnreachableError` naming the connection."""

    @wraps(method)
    def wrapper(self: KafkaRangeHook, *args: Any, **kwargs: Any) -> Any:
        with self._talking():
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class KafkaRangeHook(KafkaBaseHook):
    """Bounded offset ranges of a topic over an Apache Kafka connection (``conn_type`` ``kafka``).

    The connection is the Kafka provider's: its extra is the librdkafka configuration (``bootstrap.servers``,
    security settings). logtap sets the consumer settings a range read needs (no auto-commit, ``assign()``,
    ``read_committed``, bounded fetch buffers); a connection may override the buffer sizes.

    librdkafka's own log goes through Python logging (logger ``airflow_provider_logtap.librdkafka``) at its
    level, repeats collapsed (see :class:`~airflow_provider_logtap.kafka.client.LibrdkafkaLog`). Each hook asks
    the cluster once, before its first operation, for an answer within ``connect_timeout`` seconds; no answer
    (or losing every broker later) is a :class:`~airflow_provider_logtap.kafka.client.KafkaUnreachableError`
    naming the connection, its ``bootstrap.servers`` and what to check.

    :param kafka_config_id: the Airflow connection id, ``kafka_default`` by default.
    :param connect_timeout: seconds to wait for a first answer of the cluster (default 30).
    """

    hook_name = "Apache Kafka (logtap ranges)"

    def __init__(
        self,
        kafka_config_id: str = KafkaBaseHook.default_conn_name,
        connect_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(kafka_config_id=kafka_config_id, **kwargs)
        self.connect_timeout = DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.librdkafka = client.LibrdkafkaLog()
        self._config: dict[str, Any] | None = None
        self._admin_client: AdminClient | None = None
        self._reachable = False

    def client_config(self) -> dict[str, Any]:
        if self._config is None:
            self._config = kafka_client_config(self)
        return dict(self._config)

    @property
    def bootstrap_servers(self) -> str:
        return str(self.client_config().get("bootstrap.servers", "?"))

    def admin(self) -> AdminClient:
        """The hook's admin client (one per hook), once the cluster answered."""
        self.ensure_reachable()
        return self._admin()

    def _admin(self) -> AdminClient:
        if self._admin_client is None:
            self._admin_client = AdminClient(
                self.librdkafka.routed(client.admin_config(self.client_config()))
            )
        return self._admin_client

    @contextmanager
    def consumer(self, group_id: str | None) -> Iterator[Consumer]:
        """A consumer for ``assign()`` reads and explicit commits as ``group_id``; closed on exit."""
        self.ensure_reachable()
        config = client.reader_config(
            self.client_config(), group_id or READER_GROUP, connection=self.kafka_config_id
        )
        consumer = Consumer(self.librdkafka.routed(config))
        try:
            yield consumer
        finally:
            consumer.close()  # serves librdkafka's last lines

    def ensure_reachable(self) -> None:
        """Fail with :class:`KafkaUnreachableError` unless a broker answers within ``connect_timeout`` (asked
        once per hook: a metadata request without topics). A broker that refuses the connection's security
        settings (SASL credentials, TLS trust) fails it at once with :class:`KafkaSecurityRefusedError`."""
        if self._reachable:
            return
        admin = self._admin()
        began = time.monotonic()
        try:
            answer = admin.describe_cluster(request_timeout=self.connect_timeout)
            while not answer.done():  # serve librdkafka's lines as they come, not all at the end
                admin.poll(0.2)
                self._raise_if_refused()
                if time.monotonic() - began > self.connect_timeout + 10:  # request_timeout bounds it already
                    raise TimeoutError(f"no answer to describe_cluster in {self.connect_timeout:.0f}s")
            answer.result()
        except KafkaSecurityRefusedError:
            self._serve_logs()
            raise
        except Exception as exc:
            self._serve_logs()
            self._raise_if_refused(exc)
            code = client.kafka_error_code(exc)
            if (
                code in client.UNREACHABLE_CODES
                or isinstance(exc, TimeoutError)
                or self.librdkafka.last_failure
            ):
                raise self.librdkafka.unreachable(
                    self.kafka_config_id, self.bootstrap_servers, time.monotonic() - began
                ) from exc
            # The cluster answered, if not this request (an old broker, an ACL): the operation will tell.
            self.log.debug("describe_cluster failed (%s); going on", exc)
        self._reachable = True

    def _raise_if_refused(self, cause: BaseException | None = None) -> None:
        if self.librdkafka.refused is not None:
            raise client.refused_error(
                self.kafka_config_id, self.client_config(), self.librdkafka.refused
            ) from cause

    def _serve_logs(self) -> None:
        if self._admin_client is not None:
            self._admin_client.poll(0)
        self.librdkafka.flush()

    @contextmanager
    def _talking(self) -> Iterator[None]:
        try:
            yield
        except (NotRetryable, KafkaUnreachableError):
            raise
        except Exception as exc:
            self._serve_logs()
            self._raise_if_refused(exc)
            code = client.kafka_error_code(exc)
            stalled = isinstance(exc, reader.ReadStalledError)
            if self.librdkafka.last_failure and (code in client.UNREACHABLE_CODES or stalled):
                raise self.librdkafka.unreachable(self.kafka_config_id, self.bootstrap_servers) from exc
            raise
        finally:
            self._serve_logs()

    @_talks
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

    @_talks
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

    @_talks
    def committed(self, group_id: str, topic: str, partitions: Sequence[int]) -> dict[int, offsets.Committed]:
        with self.consumer(group_id) as consumer:
            return offsets.committed_offsets(consumer, topic, partitions)

    @_talks
    def commit(self, group_id: str, topic: str, ends: dict[int, tuple[int, str]]) -> None:
        """Commit ``{partition: (offset, metadata)}`` for ``group_id``."""
        with self.consumer(group_id) as consumer:
            offsets.commit_offsets(consumer, topic, ends)

    def read(
        self, rng: OffsetRange, *, progress_seconds: float = reader.PROGRESS_SECONDS, **options: Any
    ) -> Iterator[RecordBatch]:
        """The records of ``rng`` in batches (see :func:`airflow_provider_logtap.kafka.reader.read_range`).

        :param progress_seconds: seconds between progress lines (the first comes after the first batch that
            is at least one second into the read, see :class:`~airflow_provider_logtap.core.progress.Progress`).
        :param options: the other options of :func:`~airflow_provider_logtap.kafka.reader.read_range`.
        """
        options.setdefault("report", self.log.info)
        with self._talking(), self.consumer(None) as consumer:
            yield from reader.read_range(consumer, rng, progress_seconds=progress_seconds, **options)

    @_talks
    def log_start(self, topic: str, partition: int) -> int:
        """The partition's log start now (the first offset retention has not deleted)."""
        isolation = str(self.client_config().get("isolation.level", "read_committed"))
        return offsets.watermarks(self.admin(), topic, [partition], isolation)[partition][0]

    @_talks
    def watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
        """``{partition: (log start, high-water mark)}`` now (see :func:`offsets.watermarks`)."""
        isolation = str(self.client_config().get("isolation.level", "read_committed"))
        return offsets.watermarks(self.admin(), topic, partitions, isolation)

    @_talks
    def lag(self, group_id: str, topic: str, oldest: bool = True) -> list[PartitionLag]:
        """The group's lag per partition (and the oldest unconsumed record's Kafka timestamp)."""
        with self.consumer(group_id) as consumer:
            return offsets.group_lag(self.admin(), consumer, topic=topic, oldest=oldest)

    @_talks
    def retention(self, topic: str) -> Retention:
        """What ``topic`` deletes by (``retention.ms``, ``retention.bytes``, ``cleanup.policy``)."""
        return offsets.topic_retention(self.admin(), topic)

    @_talks
    def progress_after(self, topic: str, after_ms: int) -> list[PartitionProgress]:
        """Per partition: a record at or after ``after_ms`` yet, empty, last record's timestamp."""
        with self.consumer(None) as consumer:
            return offsets.progress_after(self.admin(), consumer, topic=topic, after_ms=after_ms)
