"""The replay DAG's plan and finish steps (its load is :class:`~.target.KafkaToTargetOperator`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_logtap.compat import (
    BaseOperator,
    Context,
    TriggerRule,
    emit_asset_events,
    fail_without_retry,
)
from airflow_provider_logtap.core import coverage
from airflow_provider_logtap.core.progress import human_bytes
from airflow_provider_logtap.core.ranges import EndSpec, PartitionState, Plan, plan_ranges
from airflow_provider_logtap.errors import ConfigurationError, UnknownTopicError
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.ledger import PlanLedger
from airflow_provider_logtap.operators.plan import planned_chunks
from airflow_provider_logtap.replay import ReplayRequest, check_replay_plan, parse_request
from airflow_provider_logtap.sinks.hdfs import HdfsEventTimeSink
from airflow_provider_logtap.sources import RecordSource, Split, archive_reader, record_source, source_to_dict
from airflow_provider_logtap.sources.archive import (
    ArchivedObject,
    ArchiveGapError,
    archive_state,
    archived_partitions,
    gaps,
    list_objects,
)
from airflow_provider_logtap.taps import HdfsEventTimeTarget, Tap
from airflow_provider_logtap.targets import build_sink, target_to_dict

REPLAY_XCOM_KEY = "replay"


@dataclass(frozen=True, kw_only=True)
class _ArchiveSeen:
    """What a plan from the archive saw: its objects and Kafka's log start, per partition."""

    where: str
    objects: dict[int, list[ArchivedObject]]
    log_starts: dict[int, int]


class KafkaReplayPlanOperator(BaseOperator):
    """Validate the replay's params, plan its ranges once (kept in the plan ledger under the run id, so a clear
    re-reads the same offsets) and describe its target for the loads (XCom ``replay``). With ``dry_run`` it
    reads the ranges to count records and bytes per partition, and writes nothing.

    :param taps: the taps a replay may name.
    """

    ui_color = "#f3e8fd"

    def __init__(self, *, taps: Sequence[Tap], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.taps = list(taps)

    @fail_without_retry
    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id = str(context["run_id"])
        request = parse_request(context["params"], self.taps, run_id=run_id)
        hook = KafkaRangeHook(kafka_config_id=request.tap.kafka_conn_id)
        ledger = PlanLedger(context["ti"].dag_id)
        plan = ledger.get_run(run_id)
        if plan is None:
            plan = self._plan(hook, request)
            ledger.save_run(run_id, plan)
        else:
            self.log.info("reusing the plan this run recorded before: the same offsets again")
        replay = self._describe(request, plan, run_id)
        if not request.overwrite and not request.dry_run:
            _claim_name(ledger, request, plan, run_id, replay["where"])
        context["ti"].xcom_push(key=REPLAY_XCOM_KEY, value=replay)
        for rng in plan.ranges:
            self.log.info("replay %s: %d offsets", rng, rng.size)
        self.log.info("replay of tap %s into %s", request.tap.name, replay["where"])
        if request.dry_run:
            self._count(record_source(replay["source"], hook), plan)
            return []
        return planned_chunks(
            self.log, [r.to_dict() for r in plan.ranges], request.tap.chunk_records, self._cuts(request, plan)
        )

    def _cuts(self, request: ReplayRequest, plan: Plan) -> dict[int, list[int]] | None:
        """Where a rebuild's chunks may start: a rebuild replaces whole recorded writes, so only at their starts
        (``None``, anywhere, for a replay into a new target)."""
        if not request.overwrite:
            return None
        sink = build_sink(request.target, run="plan", only_partitions=request.overwrite)
        assert isinstance(sink, HdfsEventTimeSink)
        return {r.partition: sink.write_starts(r.topic, r.partition) for r in plan.ranges}

    def _plan(self, hook: KafkaRangeHook, request: ReplayRequest) -> Plan:
        end = request.end
        if end is None:  # the live tap's committed offsets: read, never moved
            committed = hook.committed(request.tap.group, request.topic, _partitions(hook, request.topic))
            missing = sorted(p for p, c in committed.items() if c.offset is None)
            if missing:
                raise ConfigurationError(
                    f"the live tap {request.tap.name!r} has no committed offset for partitions {missing}: "
                    "let it load once first, or replay to 'latest' into a new target"
                )
            end = EndSpec(
                kind="offsets", offsets={p: c.offset for p, c in committed.items() if c.offset is not None}
            )
        if request.source == "kafka":
            plan = hook.plan(
                topic=request.topic, start=request.start, end=end, on_data_loss=request.tap.on_data_loss
            )
            return check_replay_plan(self._aligned(plan, request) if request.overwrite else plan)
        plan, seen = self._plan_with_archive(hook, request, end)
        plan = self._aligned(plan, request) if request.overwrite else plan
        return check_replay_plan(self._check_archive(plan, request, seen))

    def _plan_with_archive(
        self, hook: KafkaRangeHook, request: ReplayRequest, end: EndSpec
    ) -> tuple[Plan, _ArchiveSeen]:
        """Plan over what the archive and Kafka hold together (``archive``: the archive alone); also what was
        seen of both, for :meth:`_check_archive`."""
        assert request.archive is not None
        reader = archive_reader(request.archive)
        try:
            states = hook.observe(topic=request.topic, start=request.start, end=end)
        except UnknownTopicError as exc:
            partitions = archived_partitions(reader.client, reader.bucket, reader.prefix, request.topic)
            if request.source != "archive" or not partitions:
                raise
            # The topic is gone from Kafka altogether (deleted by hand): the archive alone describes it.
            self.log.warning(
                "%s Reading partitions %s from the archive %s alone.", exc, partitions, reader.where
            )
            states = [PartitionState(partition=p, log_start=0, high_watermark=0) for p in partitions]
        objects = {
            s.partition: list_objects(reader.client, reader.bucket, reader.prefix, request.topic, s.partition)
            for s in states
        }
        for s in states:
            held = objects[s.partition]
            self.log.info(
                "%s[%d]: Kafka holds [%d, %d); the archive %s holds %s in %d objects",
                request.topic,
                s.partition,
                s.log_start,
                s.high_watermark,
                reader.where,
                coverage.compact(coverage.union(o.span for o in held), limit=5),
                len(held),
            )
        views = [
            archive_state(
                request.source,
                s,
                objects[s.partition],
                start_ms=request.start.timestamp_ms,
                end_ms=end.timestamp_ms,
                to_latest=end.kind == "high_watermark",
            )
            for s in states
        ]
        on_data_loss = request.tap.on_data_loss
        plan = plan_ranges(
            topic=request.topic,
            states=views,
            start=request.start,
            end=end,
            on_data_loss=on_data_loss,
            planned_at_ms=int(time.time() * 1000),
        )
        return plan, _ArchiveSeen(
            where=reader.where, objects=objects, log_starts={s.partition: s.log_start for s in states}
        )

    def _check_archive(self, plan: Plan, request: ReplayRequest, seen: _ArchiveSeen) -> Plan:
        """Check, before anything is written, that the archive holds every offset of the plan it must serve: a
        gap is refused like a loss to retention (or, under ``on_data_loss='log_start'``, skipped and reported as
        lost)."""
        on_data_loss = request.tap.on_data_loss
        lost = list(plan.lost)
        for rng in plan.ranges:
            part = Split.of(request.source, rng, seen.log_starts.get(rng.partition, 0)).archive
            if part is None:
                continue
            missing = gaps(seen.objects.get(rng.partition, []), part)
            if missing and on_data_loss == "fail":
                raise ArchiveGapError(part, missing, seen.where)
            for span in missing:
                self.log.warning(
                    "%s: offsets %s are in neither Kafka nor the archive %s: LOST (on_data_loss='log_start')",
                    rng,
                    span,
                    seen.where,
                )
                lost.append(replace(rng, start=span.start, end=span.end))
        return replace(plan, lost=tuple(lost))

    def _aligned(self, plan: Plan, request: ReplayRequest) -> Plan:
        """A partition rebuild replaces whole recorded writes: each range starts where the live write holding
        its start began (read again, so that write is rebuilt whole)."""
        target = request.target
        assert isinstance(target, HdfsEventTimeTarget)
        sink = build_sink(target, run="plan", only_partitions=request.overwrite)
        assert isinstance(sink, HdfsEventTimeSink)
        ranges = []
        for rng in plan.ranges:
            holding = sink.write_containing(rng.topic, rng.partition, rng.start)
            if holding is not None:
                self.log.info(
                    "%s: starting at %d, where the live write %s holding offset %d began",
                    rng,
                    holding.start,
                    holding,
                    rng.start,
                )
                rng = replace(rng, start=holding.start)
            ranges.append(rng)
        return replace(plan, ranges=tuple(ranges))

    def _describe(self, request: ReplayRequest, plan: Plan, run_id: str) -> dict[str, Any]:
        target = request.target
        where = getattr(target, "asset_uri", target.type)
        if request.overwrite:
            chosen = ", ".join(request.overwrite)
            where = f"partitions {chosen} of {target.asset_uri}/{request.topic} (rebuilt in place)"
        return {
            "tap": request.tap.name,
            "topic": request.topic,
            "kafka_conn_id": request.tap.kafka_conn_id,
            "target": target_to_dict(target),
            "only_partitions": list(request.overwrite),
            "dry_run": request.dry_run,
            "where": where,
            "source": source_to_dict(request.source, request.archive),
        }

    def _count(self, source: RecordSource, plan: Plan) -> None:
        self.log.info("dry run: counting the records and bytes of each range (nothing is written)")
        totals: dict[str, list[int]] = {}
        for rng in plan.ranges:
            split = source.split(rng)
            parts = []
            for name, part in (("the archive", split.archive), ("Kafka", split.kafka)):
                if part is None:
                    continue
                records = nbytes = 0
                only = RecordSource(
                    "archive" if part is split.archive else "kafka", source.hook, source.archive
                )
                for batch in only.read(part, report=lambda line: None, on_data_loss="log_start"):
                    records += len(batch)
                    nbytes += batch.nbytes()
                counted = totals.setdefault(name, [0, 0])
                counted[0] += records
                counted[1] += nbytes
                parts.append(
                    f"{records} records, {human_bytes(nbytes)} from {name} [{part.start}, {part.end})"
                )
            self.log.info("dry run %s: %s", rng, "; ".join(parts) or "no records")
        for name, (records, nbytes) in totals.items():
            self.log.info("dry run total from %s: %d records, %s", name, records, human_bytes(nbytes))


def _claim_name(ledger: PlanLedger, request: ReplayRequest, plan: Plan, run_id: str, where: str) -> None:
    """Record which range a replay's new target holds; refuse a second replay of another range into it (the
    two would overlap there: offsets twice, or a mix of two ranges)."""
    spans = [[r.partition, r.start, r.end] for r in plan.ranges]
    tap = request.tap.name
    held = ledger.replay_target(tap, where)
    if (
        held is not None
        and held["run"] != run_id
        and (held["topic"], held["ranges"]) != (request.topic, spans)
    ):
        raise ConfigurationError(
            f"the replay target {where} already holds replay run {held['run']!r} of {held['topic']} ranges "
            f"{_spans(held['ranges'])}; this run asks for {request.topic} {_spans(spans)}. Choose another "
            "target_name (or leave it empty to name it after this run); to reuse the name, delete that target's "
            f"data and the Airflow Variable {ledger.replay_target_key(tap, where)!r} first."
        )
    ledger.save_replay_target(tap, where, run=run_id, topic=request.topic, ranges=spans)


def _spans(spans: list[list[int]]) -> str:
    return ", ".join(f"{p}:[{s}, {e})" for p, s, e in spans) or "(none)"


def _partitions(hook: KafkaRangeHook, topic: str) -> list[int]:
    from airflow_provider_logtap.kafka.offsets import partitions_of

    return partitions_of(hook.admin(), topic)


class KafkaReplayFinishOperator(BaseOperator):
    """Finish a replay: report what it wrote (a partition rebuild is in place once its loads are done).

    :param replay: the plan step's ``replay`` XCom.
    :param results: the loads' results.
    """

    template_fields: Sequence[str] = ("replay", "results")
    ui_color = "#f3e8fd"

    def __init__(self, *, replay: Any, results: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.NONE_FAILED)
        super().__init__(**kwargs)
        self.replay = replay
        self.results = results

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        replay = self.replay
        values = self.results[:] if hasattr(self.results, "__getitem__") else list(self.results or ())
        results = [r for r in values if isinstance(r, dict)]
        written = sum(int(r.get("written", 0)) for r in results)
        partitions = sorted({p for r in results for p in r.get("partitions", ())})
        self.log.info(
            "replay of tap %s into %s: %d lines written by %d loads%s",
            replay["tap"],
            replay["where"],
            written,
            len(results),
            " (dry run)" if replay["dry_run"] else "",
        )
        if replay["only_partitions"]:
            counts = [r.get("counts", {}) for r in results]
            self.log.info(
                "partitions %s rebuilt in place: %d recorded writes rebuilt whole, %d left as they were",
                ", ".join(replay["only_partitions"]),
                sum(int(c.get("writes_rebuilt", 0)) for c in counts),
                sum(int(c.get("writes_untouched", 0)) for c in counts),
            )
        emit_asset_events(context, self.outlets, {"replay": replay["where"], "written": written}, partitions)
        return {"written": written, "partitions": partitions}
