"""The load step shared by every sink: check the claim, read one range, write it, report."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from airflow_provider_logtap.compat import (
    AirflowSkipException,
    BaseOperator,
    Context,
    emit_asset_events,
    fail_without_retry,
    run_identity,
)
from airflow_provider_logtap.core import chunks, claims
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.intervals import Membership
from airflow_provider_logtap.core.ranges import ON_DATA_LOSS, OffsetRange
from airflow_provider_logtap.errors import ConfigurationError, OutOfPlaceError, one_of
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.reader import DEFAULT_BATCH_SIZE, PROGRESS_SECONDS
from airflow_provider_logtap.ledger import PlanLedger
from airflow_provider_logtap.metrics import incr
from airflow_provider_logtap.models import check_setting, errors_text, validate
from airflow_provider_logtap.operators._templating import at_run_time, check_unless_templated
from airflow_provider_logtap.sinks.base import Sink, WriteResult
from airflow_provider_logtap.sources import parse_source, record_source
from airflow_provider_logtap.taps import Tap
from airflow_provider_logtap.targets import TargetModel, build_sink


class KafkaRangeLoadOperator(BaseOperator):
    """Base of the load operators: read the records of ``offset_range`` and write them to one sink.

    Subclasses say which sink (:meth:`make_sink`). Use one mapped task instance per partition:
    ``LoadOp.partial(...).expand(offset_range=plan.output)``.

    In interval mode (an ``offset_range`` made by :class:`KafkaPlanIntervalOperator`, with ``unit``,
    ``boundary_ms``, ``interval`` and ``ledger``) the load writes a core whole, and a zone with the records of
    each side of its boundary whose interval has a recorded plan. It counts the records of its own interval whose
    Kafka timestamp is outside the interval (*out of place*): a warning with examples, ``out_of_place`` in its
    result (under ``interval``) and the ``logtap.out_of_place`` metric.

    :param offset_range: ``{"topic", "partition", "start", "end"}``, usually one element of a plan (a chunk of a
        partition's range also names, under ``chunk``, its place and the whole range: see
        :mod:`airflow_provider_logtap.core.chunks`).
    :param group_id: the tap's consumer group: when set, the load writes only while its run holds the claim on
        this range (a chunk: on the whole range it is part of; a superseded run's load is skipped).
    :param on_data_loss: ``fail`` (default) or ``log_start`` when retention deletes offsets while reading.
    :param batch_size: records per consume call.
    :param max_out_of_place_ratio: interval mode: fail (without retries; the records are written) when more
        than this share of the interval's records in the unit are out of place (default ``None``: only report).
    :param progress_seconds: seconds between the progress lines of the read in the task log (the first one
        comes early, after the read's first second).
    :param kafka_config_id: the Kafka connection id.
    :param source: where the records come from: ``kafka`` (default), or, to rebuild a range retention has
        deleted, ``{"kind": "archive" | "auto", "archive": {"bucket": ..., "prefix": ..., "aws_conn_id": ...}}``
        naming an ``s3_archive`` tap's archive (see :mod:`airflow_provider_logtap.sources`): ``archive`` reads
        the range from its objects, ``auto`` reads from them what Kafka no longer has and the rest from Kafka.
    """

    template_fields: Sequence[str] = ("offset_range", "group_id", "on_data_loss", "source")
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        offset_range: Any,
        group_id: str | None = None,
        on_data_loss: str = "fail",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_out_of_place_ratio: float | None = None,
        progress_seconds: float = PROGRESS_SECONDS,
        kafka_config_id: str = "kafka_default",
        source: Any = "kafka",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        owner = f"{type(self).__name__}(task_id={self.task_id!r})"
        self.progress_seconds = check_setting(Tap, "progress_seconds", progress_seconds, owner=owner)
        self.offset_range = offset_range
        self.group_id = group_id
        self.on_data_loss = on_data_loss
        self.batch_size = batch_size
        self.max_out_of_place_ratio = check_setting(
            Tap, "max_out_of_place_ratio", max_out_of_place_ratio, owner=owner
        )
        self.kafka_config_id = kafka_config_id
        check_unless_templated(offset_range, OffsetRange.from_dict)
        check_unless_templated(on_data_loss, lambda v: one_of("on_data_loss", v, ON_DATA_LOSS))
        check_unless_templated(source, parse_source)

    #: The target type a subclass loads into: its settings become the subclass's keyword parameters (same
    #: names, types, defaults and docs), validated by the model when the DAG is parsed (those still templated,
    #: once rendered).
    target_model: ClassVar[type[TargetModel] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("target_model")
        if model is None:
            return
        cls.template_fields = (*KafkaRangeLoadOperator.template_fields, *model.templated_fields())
        cls.__init__ = _target_init(model)  # type: ignore[method-assign]
        cls.__doc__ = (
            f"{inspect.cleandoc(model.__doc__ or '')}\n\n{model.param_docs()}\n\n"
            "The other parameters are those of :class:`KafkaRangeLoadOperator`."
        )

    def target(self) -> TargetModel:
        """The target of this load, from the operator's (rendered) parameters named as the target's settings;
        one ``ConfigurationError`` names every invalid one."""
        model = self.target_model
        if model is None:
            raise NotImplementedError(f"{type(self).__name__} names no target_model")
        return model.of(f"task {self.task_id!r}", **{n: getattr(self, n) for n in model.setting_names()})

    def make_sink(self, context: Context) -> Sink:
        return build_sink(self.target(), run=run_identity(context))

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        rng = OffsetRange.from_dict(self.offset_range)
        one_of("on_data_loss", self.on_data_loss, ON_DATA_LOSS)
        chunk = chunks.chunk_of(self.offset_range)
        if chunk is not None:
            self.log.info("%s: chunk %d of %d of %s", chunk.label, chunk.index, chunk.count, chunk.whole)
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        if self.group_id:
            run = run_identity(context)
            claimed = rng if chunk is None else chunk.whole  # a run claims a partition's whole range
            state = hook.committed(self.group_id, rng.topic, [rng.partition])[rng.partition]
            decision = claims.before_write(run=run, rng=claimed, claim=state.claim, offset=state.offset)
            if decision.action == "superseded":
                raise AirflowSkipException(decision.reason)
            self.log.info(decision.reason)
        membership = self.membership()
        if rng.empty:
            self.log.info("%s is empty: nothing to load", rng)
            empty = WriteResult(sink="none", range=rng).to_dict()
            return empty if membership is None else {**empty, "interval": membership.to_dict()}
        sink = self.make_sink(context)
        self.log.info("loading %s (%d offsets) into %s", rng, rng.size, sink.name)
        result = self._write(hook, sink, rng, membership)
        while membership is not None and membership.boundary_ms is not None:
            # The neighbouring interval may have been planned while this zone was written (a backfill runs
            # several intervals at once): its load may have read this one's plan and written the zone before
            # this write replaced it. Written again until the zone's choice holds after the write.
            again = self.membership()
            assert again is not None
            if (again.keep_before, again.keep_after) == (membership.keep_before, membership.keep_after):
                break
            self.log.info("the neighbouring interval was planned meanwhile: writing the zone %s again", rng)
            membership = again
            result = self._write(hook, sink, rng, membership)
        self.log.info(result.summary())
        if result.partitions:
            self.log.info("event-time partitions written: %s", ", ".join(result.partitions))
        tags = {"topic": rng.topic, "partition": rng.partition, "sink": result.sink}
        incr("records", result.records, **tags)
        incr("bytes", result.bytes_in, **tags)
        incr("written", result.written, **tags)
        incr("dead_letters", result.dead_letters, **tags)
        incr("lost", sum(r.size for r in result.lost), **tags)
        emit_asset_events(
            context,
            self.outlets,
            {"range": rng.to_dict(), "records": result.records, "written": result.written},
            list(result.partitions),
        )
        if membership is None:
            return result.to_dict()
        self.report_membership(rng, membership, tags)
        return {**result.to_dict(), "interval": membership.to_dict()}

    def _write(
        self, hook: KafkaRangeHook, sink: Sink, rng: OffsetRange, membership: Membership | None
    ) -> WriteResult:
        batches: Iterable[RecordBatch] = record_source(self.source, hook).read(
            rng,
            batch_size=self.batch_size,
            on_data_loss=self.on_data_loss,
            progress_seconds=self.progress_seconds,
        )
        if membership is not None:
            batches = membership.select(batches)
        return sink.write(rng, batches)

    def membership(self) -> Membership | None:
        """The selection of an interval-mode unit (``None`` for a plain range): a zone keeps the records of
        each side whose interval has a recorded plan, looked up now (and again after the write)."""
        spec = self.offset_range
        if not isinstance(spec, Mapping) or "unit" not in spec:
            return None
        start_ms, end_ms = (int(t) for t in spec["interval"])
        boundary = spec.get("boundary_ms")
        m = Membership(kind=spec["unit"], start_ms=start_ms, end_ms=end_ms, boundary_ms=boundary)
        if boundary is not None:
            ledger = PlanLedger(str(spec["ledger"]))
            if m.side == "before":
                m.keep_after = ledger.planned_starting_at(int(boundary))
            else:
                m.keep_before = ledger.planned_ending_at(int(boundary))
            self.log.info(
                "zone of %s: this interval's records, and the %s interval's (%s)",
                _iso(int(boundary)),
                "next" if m.side == "before" else "previous",
                "planned" if (m.keep_after if m.side == "before" else m.keep_before) else "not planned yet",
            )
        return m

    def report_membership(self, rng: OffsetRange, m: Membership, tags: dict[str, Any]) -> None:
        incr("out_of_place", m.out_of_place, **tags)
        if not m.out_of_place:
            self.log.info("%s: all %d records of this interval are stamped inside it", rng, m.owned)
            return
        examples = ", ".join(f"offset {o} at {_iso(t)}" for o, t in m.examples)
        message = (
            f"{rng}: {m.out_of_place} of {m.owned} records of the interval [{_iso(m.start_ms)}, "
            f"{_iso(m.end_ms)}) are OUT OF PLACE (their Kafka timestamps lie outside it, further from their "
            f"neighbours' than max_disorder); they were loaded with this interval, e.g. {examples}"
        )
        self.log.warning(message)
        limit = self.max_out_of_place_ratio
        if limit is not None and m.ratio > limit:
            raise OutOfPlaceError(
                f"{message}. That is {m.ratio:.1%} of them, above max_out_of_place_ratio={limit}. The records "
                "are written; fix the producers' timestamps, raise max_disorder_seconds for intervals not yet "
                "planned, or raise max_out_of_place_ratio."
            )


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def _target_init(model: type[TargetModel]) -> Callable[..., None]:
    """An ``__init__`` taking ``model``'s settings as keyword parameters (its signature is what Airflow checks
    ``partial()``/``expand()`` and missing arguments against) and the load operator's others."""
    names = model.setting_names()

    def __init__(self: KafkaRangeLoadOperator, **kwargs: Any) -> None:
        settings = {n: kwargs.pop(n) for n in names if n in kwargs}
        KafkaRangeLoadOperator.__init__(self, **kwargs)
        for name in names:
            setattr(self, name, settings[name] if name in settings else model.default_of(name))
        final = {n: v for n, v in settings.items() if not at_run_time(v)}
        errors = validate(model, final)[1]
        if len(final) < len(settings):  # some are templates: check the others now, all once rendered
            errors = [e for e in errors if e.field in final]
        if errors:
            raise ConfigurationError(
                f"{type(self).__name__}(task_id={self.task_id!r}): {errors_text(errors)}"
            )

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name in names:
        info = model.model_fields[name]
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if info.is_required() else model.default_of(name),
                annotation=info.annotation,
            )
        )
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation=Any))
    __init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return __init__
