"""The load step shared by every sink: check the claim, read one range, write it, report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, ClassVar

from airflow_provider_logtap.compat import (
    AirflowSkipException,
    BaseOperator,
    Context,
    emit_asset_events,
    run_identity,
)
from airflow_provider_logtap.core import claims
from airflow_provider_logtap.core.ranges import ON_DATA_LOSS, OffsetRange
from airflow_provider_logtap.errors import one_of
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.reader import DEFAULT_BATCH_SIZE
from airflow_provider_logtap.metrics import incr
from airflow_provider_logtap.operators._templating import check_unless_templated
from airflow_provider_logtap.sinks.base import Sink, WriteResult
from airflow_provider_logtap.taps import Target
from airflow_provider_logtap.targets import build_sink


class KafkaRangeLoadOperator(BaseOperator):
    """Base of the load operators: read the records of ``offset_range`` and write them to one sink.

    Subclasses say which sink (:meth:`make_sink`). Use one mapped task instance per partition:
    ``LoadOp.partial(...).expand(offset_range=plan.output)``.

    :param offset_range: ``{"topic", "partition", "start", "end"}``, usually one element of a plan.
    :param group_id: the tap's consumer group: when set, the load writes only while its run holds the claim on
        this range (a superseded run's load is skipped).
    :param on_data_loss: ``fail`` (default) or ``log_start`` when retention deletes offsets while reading.
    :param batch_size: records per consume call.
    :param kafka_config_id: the Kafka connection id.
    """

    template_fields: Sequence[str] = ("offset_range", "group_id", "on_data_loss")
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        offset_range: Any,
        group_id: str | None = None,
        on_data_loss: str = "fail",
        batch_size: int = DEFAULT_BATCH_SIZE,
        kafka_config_id: str = "kafka_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.offset_range = offset_range
        self.group_id = group_id
        self.on_data_loss = on_data_loss
        self.batch_size = batch_size
        self.kafka_config_id = kafka_config_id
        check_unless_templated(offset_range, OffsetRange.from_dict)
        check_unless_templated(on_data_loss, lambda v: one_of("on_data_loss", v, ON_DATA_LOSS))

    #: The target type a subclass loads into; its fields are the subclass's parameters of the same names.
    target_type: ClassVar[type[Target] | None] = None

    def target(self) -> Target:
        """The target of this load, from the operator's (rendered) parameters named as the target's fields."""
        if self.target_type is None:
            raise NotImplementedError(f"{type(self).__name__} names no target_type")
        return self.target_type(**{f.name: getattr(self, f.name) for f in fields(self.target_type)})

    def make_sink(self, context: Context) -> Sink:
        return build_sink(self.target(), run=run_identity(context))

    def execute(self, context: Context) -> dict[str, Any]:
        rng = OffsetRange.from_dict(self.offset_range)
        one_of("on_data_loss", self.on_data_loss, ON_DATA_LOSS)
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        if self.group_id:
            run = run_identity(context)
            state = hook.committed(self.group_id, rng.topic, [rng.partition])[rng.partition]
            decision = claims.before_write(run=run, rng=rng, claim=state.claim, offset=state.offset)
            if decision.action == "superseded":
                raise AirflowSkipException(decision.reason)
            self.log.info(decision.reason)
        if rng.empty:
            self.log.info("%s is empty: nothing to load", rng)
            return WriteResult(sink="none", range=rng).to_dict()
        sink = self.make_sink(context)
        self.log.info("loading %s (%d offsets) into %s", rng, rng.size, sink.name)
        batches = hook.read(rng, batch_size=self.batch_size, on_data_loss=self.on_data_loss)
        result = sink.write(rng, batches)
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
        return result.to_dict()
