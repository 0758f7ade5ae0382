"""The plan steps: KafkaPlanRangesOperator (group mode, kept in XCom) and KafkaPlanIntervalOperator (interval
mode, kept in the plan ledger)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from airflow_provider_logtap.compat import (
    BaseOperator,
    Context,
    airflow_setting,
    fail_without_retry,
    in_task_test,
    run_identity,
)
from airflow_provider_logtap.core.chunks import CHUNK_KEY, chunk_specs
from airflow_provider_logtap.core.chunks import label as chunk_label
from airflow_provider_logtap.core.intervals import CORE, DEFAULT_MAX_DISORDER_SECONDS, check_disorder
from airflow_provider_logtap.core.ranges import (
    ON_DATA_LOSS,
    EndSpec,
    OffsetRange,
    StartSpec,
    parse_timestamp_ms,
)
from airflow_provider_logtap.errors import ConfigurationError, one_of
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.ledger import DEFAULT_HORIZON_DAYS, PlanLedger, check_horizon
from airflow_provider_logtap.models import check_setting
from airflow_provider_logtap.operators._templating import check_unless_templated
from airflow_provider_logtap.sensors.kafka import KafkaIntervalCompleteSensor
from airflow_provider_logtap.taps import Tap

PLAN_XCOM_KEY = "plan"


def try_for_real(dag_id: str) -> str:
    """How to try a tap for real without touching its live group or ledger."""
    tap = dag_id.removeprefix("logtap_")
    return (
        "To test a tap for real, replay a range of it through the logtap_replay DAG, a dry run first: "
        f"""airflow dags test logtap_replay -c '{{"tap": "{tap}", "dry_run": true}}'"""
    )


class KafkaPlanRangesOperator(BaseOperator):
    """Plan the half-open offset ranges ``[start, end)`` of one run, one per partition.

    Returns the load specs (a list of ``{"topic", "partition", "start", "end"}``, one per partition, or one per
    chunk of a range longer than ``chunk_records``, see :mod:`airflow_provider_logtap.core.chunks`; ready for
    ``.expand()``) and pushes the whole plan, including offsets lost to retention, under the XCom key
    ``plan``. A retried load task reuses this plan unchanged.

    With ``start='committed'`` and ``claim=True`` the plan claims the group's next range: it commits the
    unchanged offsets with metadata naming this run, so that a load or commit of an older, superseded run
    can no longer write or commit (see :mod:`airflow_provider_logtap.core.claims`). Under ``airflow tasks test``
    the plan is computed and logged but not claimed: a debugging run must not supersede a live run in flight
    (``airflow dags test`` is a whole DAG run and claims as any run does).

    :param topic: the Kafka topic.
    :param group_id: the tap's consumer group (needed for ``start='committed'``).
    :param start: ``committed`` (default), ``earliest``, ``latest``, ``{"offsets": {partition: offset}}`` or
        ``{"timestamp": "<ISO-8601>"|epoch_ms}``.
    :param end: ``high_watermark`` (default; snapshot at plan time), ``{"offsets": ...}``,
        ``{"timestamp": ...}`` or ``{"max_records": N}`` (per partition).
    :param initial: with ``start='committed'``, where a partition without a committed offset starts:
        ``earliest`` (default), ``latest`` or ``fail``.
    :param partitions: only these partitions (default: all).
    :param on_data_loss: ``fail`` (default) when retention deleted offsets the plan needs, or ``log_start``
        to start at the log start and record the lost offsets in the plan.
    :param claim: claim the range in the group's commit metadata (group mode only; default ``True``).
    :param chunk_records: split each range longer than this many offsets into balanced chunks, one load task
        each (default ``None``: one load per partition). The claim and the commit stay per partition.
    :param kafka_config_id: the Kafka connection id.
    """

    template_fields: Sequence[str] = ("topic", "group_id", "start", "end", "partitions", "on_data_loss")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        topic: str,
        group_id: str | None = None,
        start: Any = "committed",
        end: Any = "high_watermark",
        initial: str = "earliest",
        partitions: Sequence[int] | None = None,
        on_data_loss: str = "fail",
        claim: bool = True,
        chunk_records: int | None = None,
        kafka_config_id: str = "kafka_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = f"{type(self).__name__}(task_id={self.task_id!r})"
        self.chunk_records = check_setting(Tap, "chunk_records", chunk_records, owner=owner)
        self.topic = topic
        self.group_id = group_id
        self.start = start
        self.end = end
        self.initial = initial
        self.partitions = partitions
        self.on_data_loss = on_data_loss
        self.claim = claim
        self.kafka_config_id = kafka_config_id
        check_unless_templated(start, StartSpec.parse)
        check_unless_templated(end, EndSpec.parse)
        check_unless_templated(on_data_loss, lambda v: one_of("on_data_loss", v, ON_DATA_LOSS))

    def _start_spec(self) -> StartSpec:
        spec = StartSpec.parse(self.start)
        if spec.kind == "committed" and self.initial != spec.initial:
            spec = StartSpec(kind="committed", initial=self.initial)
        return spec

    @fail_without_retry
    def execute(self, context: Context) -> list[dict[str, Any]]:
        start, end = self._start_spec(), EndSpec.parse(self.end)
        one_of("on_data_loss", self.on_data_loss, ON_DATA_LOSS)
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        plan = hook.plan(
            topic=self.topic,
            start=start,
            end=end,
            group_id=self.group_id,
            partitions=self.partitions,
            on_data_loss=self.on_data_loss,
        )
        for rng in plan.ranges:
            self.log.info("planned %s: %d offsets", rng, rng.size)
        for gone in plan.lost:
            self.log.warning("LOST to retention (on_data_loss='log_start'): %s, %d offsets", gone, gone.size)
        self.log.info(
            "plan of %s: %d partitions, %d offsets in all, %d lost",
            self.topic,
            len(plan.ranges),
            plan.records_upper_bound,
            plan.lost_count,
        )
        if self.claim and start.kind == "committed":
            run = run_identity(context)
            if in_task_test(context):
                self.log.warning(
                    "airflow tasks test: NOT claiming the ranges in group %s (a claim would supersede a live "
                    "run of this tap in flight); the plan above is what a run would load. %s.",
                    self.group_id,
                    try_for_real(context["ti"].dag_id),
                )
            else:
                hook.claim(plan, run)
                self.log.info("claimed the ranges for %s in group %s", run, self.group_id)
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan.to_dict())
        return planned_chunks(self.log, [r.to_dict() for r in plan.ranges], self.chunk_records)


def planned_chunks(
    log: Any, specs: list[dict[str, Any]], chunk_records: int | None, cuts: Any = None, whole: Any = None
) -> list[dict[str, Any]]:
    """``specs`` split into chunks (see :func:`~airflow_provider_logtap.core.chunks.chunk_specs`), no more than
    Airflow's ``[core] max_map_length`` (it would fail the plan, in vain), the split logged."""
    out = chunk_specs(
        specs, chunk_records, cuts, max_specs=int(airflow_setting("core", "max_map_length") or 1024)
    )
    if len(out) > len(specs):
        log.info(
            "%d ranges longer than chunk_records=%s split: %d load tasks in all",
            len(specs),
            chunk_records,
            len(out),
        )
        for spec in out:
            if CHUNK_KEY in spec:
                log.info("  %s", chunk_label(spec))
    return out


class KafkaTimestamps:
    """``(offset, Kafka timestamp)`` of a topic's records, read with one consumer (the edge search's reads)."""

    def __init__(self, consumer: Any, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic

    def records(self, partition: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
        if stop <= start:
            return
        rng = OffsetRange(topic=self.topic, partition=partition, start=start, end=stop)
        batches = read_range(self.consumer, rng, report=_quiet, on_data_loss="log_start", batch_size=500)
        for batch in batches:
            yield from zip(batch.offsets, batch.timestamps, strict=True)


def _quiet(_line: str) -> None:
    pass


class KafkaPlanIntervalOperator(KafkaIntervalCompleteSensor):
    """Plan the units of a DAG run's data interval ``[interval_start, interval_end)`` (interval mode).

    Each partition's share of the interval is three units (see :mod:`airflow_provider_logtap.core.intervals`):
    the zone around the interval start, the core, and the zone around its end. A zone ``[x, y)`` holds the
    offsets where the partition's robust clock (a running median of the Kafka timestamps) is within
    ``max_disorder`` of the boundary; its records belong to the interval on the side of their own timestamp.
    The zones' edges are computed once per boundary and recorded in the plan ledger (Airflow Variables, see
    :mod:`airflow_provider_logtap.ledger`), as is the interval's plan, before anything is written. A run of an
    interval that already has a recorded plan (a clear, a second backfill) reuses it unchanged, so it rewrites
    exactly the same offsets. No consumer group's offsets are read or moved. Under ``airflow tasks test`` a
    recorded plan is reused, and a new one is computed and logged but not recorded (``airflow dags test``, a
    whole DAG run, records it).

    Returns one load spec per unit (``.expand(offset_range=...)`` of a load operator): the unit's range with
    ``unit``, ``boundary_ms``, ``interval`` and ``ledger``, which the load uses to select the unit's records.

    :param topic: the Kafka topic.
    :param interval_start: the data interval's start (default ``{{ data_interval_start }}``).
    :param interval_end: the data interval's end (default ``{{ data_interval_end }}``).
    :param ledger: the ledger's name (the DAG id by default).
    :param on_data_loss: ``fail`` (default) or ``log_start`` when retention deleted offsets of the interval.
    :param max_disorder: how far (``timedelta`` or seconds, default 300) a record's Kafka timestamp may be from
        its neighbours' and still be placed by its own time; at most half the interval. Used only for edges
        not yet recorded.
    :param chunk_records: split each core unit longer than this many offsets into balanced chunks, one load
        task each (default ``None``: one load per unit). Zones stay whole: the intervals on both sides of a
        boundary plan its zone, and must write it alike.
    :param ledger_horizon_days: the plans of intervals that end more than this many days (default 90) before
        the newest planned interval's end are deleted from the ledger when a plan is saved (``None``: keep
        every plan). Such intervals are no longer planned again (reload them with the logtap_replay DAG).
    :param kafka_config_id: the Kafka connection id.
    :param wait_for_completeness: first wait, as :class:`~airflow_provider_logtap.sensors.kafka.
        KafkaIntervalCompleteSensor` does (with its ``lateness``, ``idle_grace``, ``deferrable``, ``mode``,
        ``poke_interval`` / ``poll_interval``, ``timeout`` and ``soft_fail``), until the interval can be
        complete, then plan (default ``False``: plan at once, after a completeness sensor of the user's own).
        The tap DAGs wait in the plan task itself: Airflow 2's ``airflow dags backfill`` expands a mapped
        task only when its input comes from a task without upstream tasks (a plan after a separate sensor
        left every backfilled run "deadlocked").

    Plans of one DAG run one at a time (``max_active_tis_per_dag=1`` by default): the ledger's index is read,
    changed and written back, and a backfill runs several intervals at once.
    """

    template_fields: Sequence[str] = ("topic", "interval_start", "interval_end", "on_data_loss", "ledger")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        topic: str,
        interval_start: Any = "{{ data_interval_start }}",
        interval_end: Any = "{{ data_interval_end }}",
        ledger: str | None = None,
        on_data_loss: str = "fail",
        max_disorder: timedelta | float = DEFAULT_MAX_DISORDER_SECONDS,
        ledger_horizon_days: float | None = DEFAULT_HORIZON_DAYS,
        kafka_config_id: str = "kafka_default",
        wait_for_completeness: bool = False,
        chunk_records: int | None = None,
        **kwargs: Any,
    ) -> None:
        # The ledger's index is read, changed and written back: one plan of a DAG at a time, also when a
        # backfill runs several of its intervals at once (its own max_active_runs, not the DAG's).
        kwargs.setdefault("max_active_tis_per_dag", 1)
        super().__init__(topic=topic, interval_end=interval_end, kafka_config_id=kafka_config_id, **kwargs)
        self.wait_for_completeness = wait_for_completeness
        owner = f"{type(self).__name__}(task_id={self.task_id!r})"
        self.chunk_records = check_setting(Tap, "chunk_records", chunk_records, owner=owner)
        self.ledger_horizon_days = check_horizon(ledger_horizon_days)
        self.interval_start = interval_start
        self.ledger = ledger
        self.on_data_loss = on_data_loss
        self.max_disorder = max_disorder
        check_unless_templated(on_data_loss, lambda v: one_of("on_data_loss", v, ON_DATA_LOSS))
        check_disorder(self._disorder_ms(), None)

    def _disorder_ms(self) -> int:
        value = self.max_disorder
        seconds = value.total_seconds() if isinstance(value, timedelta) else value
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigurationError(f"max_disorder must be 0 or more seconds. Got {value!r}")
        return int(seconds * 1000)

    @fail_without_retry
    def execute(self, context: Context) -> list[dict[str, Any]]:
        if self.wait_for_completeness:
            super().execute(context)  # returns once complete; or reschedules, or defers to execute_complete
        return self._plan(context)

    @fail_without_retry
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        super().execute_complete(context, event)  # the deferred wait's outcome (a timeout raises)
        return self._plan(context)

    def _plan(self, context: Context) -> list[dict[str, Any]]:
        start_ms = parse_timestamp_ms(self.interval_start, "interval_start")
        end_ms = parse_timestamp_ms(self.interval_end, "interval_end")
        if end_ms <= start_ms:
            raise ConfigurationError(
                f"the data interval [{self.interval_start}, {self.interval_end}) is empty: interval mode loads a "
                "run's data interval (a manual trigger has none). Use airflow backfill create for past "
                "intervals, or the logtap_replay DAG for an ad-hoc range."
            )
        disorder_ms = check_disorder(self._disorder_ms(), end_ms - start_ms)
        ledger = self.ledger or context["ti"].dag_id
        testing = in_task_test(context)
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        with hook.consumer(None) as consumer:
            book = PlanLedger(ledger, horizon_days=self.ledger_horizon_days, dry_run=testing)
            plan, recorded_by = book.plan_interval(
                topic=self.topic,
                start_ms=start_ms,
                end_ms=end_ms,
                observe=lambda: hook.observe(
                    topic=self.topic,
                    start=StartSpec(kind="timestamp", timestamp_ms=max(start_ms - disorder_ms, 0)),
                    end=EndSpec(kind="timestamp", timestamp_ms=max(end_ms - disorder_ms, 0)),
                ),
                source=KafkaTimestamps(consumer, self.topic),
                run=run_identity(context),
                max_disorder_ms=disorder_ms,
                on_data_loss=self.on_data_loss,
            )
        if recorded_by is not None:
            self.log.info(
                "reusing the plan %s recorded for this interval: the same offsets again", recorded_by
            )
        elif testing:
            self.log.warning(
                "airflow tasks test: this plan (and any new edge) is NOT recorded in the ledger %s: a plan "
                "recorded now would fix the interval's offsets for the real run. %s.",
                ledger,
                try_for_real(context["ti"].dag_id),
            )
        for unit in plan.units:
            where = "core" if unit.boundary_ms is None else f"zone of {unit.boundary_ms} ms"
            self.log.info(
                "interval [%s, %s): %s %s, %d offsets",
                self.interval_start,
                self.interval_end,
                where,
                unit.range,
                unit.range.size,
            )
        for gone in plan.lost:
            self.log.warning("LOST to retention (on_data_loss='log_start'): %s, %d offsets", gone, gone.size)
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan.to_dict())
        # Only cores are cut: a zone is planned by the intervals on both sides of its boundary (and cut alike only
        # while their chunk_records agree); it spans at most max_disorder on each side.
        return planned_chunks(
            self.log, plan.load_specs(ledger), self.chunk_records, whole=lambda spec: spec["unit"] != CORE
        )
