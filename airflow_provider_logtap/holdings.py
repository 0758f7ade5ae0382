"""What each target holds, per partition, as offset spans with multiplicity; and the reconciliation of a topic's
taps against Kafka built on it (the check and the repair that :class:`~.operators.reconcile.KafkaReconcileOperator`
and ``logtap reconcile`` run).

One collector per target type, in :data:`COLLECTORS` (a test keeps it equal to the target registry):

- ``s3_archive``: each object's coverage ``[logtap-start-offset, logtap-end-offset)`` from its metadata
  (:func:`~airflow_provider_logtap.sources.archive.list_objects`: a listing and a HEAD per object, nothing
  downloaded).
- ``hdfs_raw``: each complete file (temporary ``.<name>.inprogress`` ones are not held) covers
  ``[logtap-start-offset, logtap-end-offset)`` of the metadata the raw sink records on it (the extended
  attribute ``user.logtap``, one request per file, nothing downloaded). A file written without it (before
  logtap recorded it, or on a NameNode without extended attributes) covers its start offset (its name) plus its
  line count, counted by streaming it once (exact for log topics, whose offsets are dense: a compacted or
  transactional topic's gaps inside such a file would show as missing).
- ``hdfs_event_time``: each ``complete`` manifest's ``[start, end)`` whose files (partition files and dead
  letters) all exist, checked by listing their directories (each once), never by reading them; a pending
  manifest or one with files missing holds nothing, and a note names it.
- ``search``: documents counted per offset range by ``range`` aggregations on ``kafka.offset`` (dead letters:
  ``offset``), filtered by topic and partition, index by index (the live alias's daily indices and the
  dead-letter index; within one index a document's ``_id`` is its offset, so a count equal to a range's size
  means each offset once), drilling into ranges whose count is neither 0 nor their size, down to single
  offsets: a few requests per index for a healthy one, never a scroll of the documents. A document held in two
  daily indices, or both indexed and dead-lettered, is doubled. Offsets above 2**53 are not exact (the servers
  aggregate doubles). The tap's indices are refreshed first, so documents just indexed (a repair's) are
  counted.
"""

from __future__ import annotations

import logging
import posixpath
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.coverage import Span, union
from airflow_provider_logtap.core.manifest import Manifest
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.core.reconcile import (
    Reconciliation,
    Repair,
    TargetReport,
    check_partition,
    repairs,
)
from airflow_provider_logtap.errors import ConfigurationError, LogtapError
from airflow_provider_logtap.taps import Tap
from airflow_provider_logtap.targets import TargetModel

log = logging.getLogger(__name__)

#: Files or manifests read at once (HDFS line counts, manifest reads, directory listings).
PARALLEL = 8
#: Sub-ranges a search range whose count is neither 0 nor its size is cut into, per level of the drill-down.
FANOUT = 100
#: Ranges of one ``range`` aggregation request.
MAX_RANGES = 1000


@dataclass(frozen=True, kw_only=True)
class Holdings:
    """What one target holds: per partition, spans with multiplicity; ``notes`` on what it could not count."""

    spans: Mapping[int, tuple[Span, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --- S3 archive -----------------------------------------------------------------------------------------------


def s3_spans(client: Any, bucket: str, prefix: str, topic: str, partition: int) -> list[Span]:
    """The coverage of each archive object of one partition (metadata only)."""
    from airflow_provider_logtap.sources.archive import list_objects

    return [o.span for o in list_objects(client, bucket, prefix, topic, partition)]


def _s3_archive(target: Any, topic: str, partitions: Sequence[int]) -> Holdings:
    from airflow_provider_logtap.targets.s3_archive import s3_client

    client = s3_client(target.aws_conn_id)
    return Holdings(
        spans={p: tuple(s3_spans(client, target.bucket, target.prefix, topic, p)) for p in partitions}
    )


# --- HDFS raw -------------------------------------------------------------------------------------------------


def _line_counter(suffix: str) -> Callable[[bytes], bytes]:
    if suffix.endswith(".gz"):
        return zlib.decompressobj(47).decompress
    if suffix.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress
    return bytes


def count_lines(client: Any, path: str, suffix: str) -> int:
    """The lines of one raw file, streamed (bounded memory), decompressed by its suffix."""
    decompress = _line_counter(suffix)
    lines = 0
    with client.read(path, chunk_size=1024 * 1024) as reader:
        for chunk in reader:
            lines += decompress(chunk).count(b"\n")
    return lines


def _names(client: Any, directory: str) -> list[str]:
    status = client.status(directory, strict=False)
    if status is None or status.get("type") != "DIRECTORY":
        return []
    return list(client.list(directory))


def hdfs_raw_spans(client: Any, base: str, topic: str, partition: int) -> list[Span]:
    """Each complete raw file of one partition as ``[start, start + lines)``."""
    directory = "/" + naming.partition_dir(naming.clean_base(base), topic, partition)
    files = []
    for name in _names(client, directory):
        parsed = naming.parse_file_name(name)
        if name.startswith(".") or parsed is None or parsed.topic != topic or parsed.partition != partition:
            continue
        files.append((parsed.start, posixpath.join(directory, name), parsed.suffix))
    if not files:
        return []
    from airflow_provider_logtap.sinks.hdfs import file_metadata

    def span(file: tuple[int, str, str]) -> Span:
        start, path, suffix = file
        recorded = file_metadata(client, path)
        if recorded is not None and "logtap-end-offset" in recorded:  # the sink's record: nothing to read
            return Span(int(recorded["logtap-start-offset"]), int(recorded["logtap-end-offset"]))
        return Span(start, start + count_lines(client, path, suffix))

    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(files))) as pool:
        return [s for s in pool.map(span, files) if s.size]


def _hdfs_raw(target: Any, topic: str, partitions: Sequence[int]) -> Holdings:
    client = target.client()
    return Holdings(spans={p: tuple(hdfs_raw_spans(client, target.base_path, topic, p)) for p in partitions})


# --- HDFS by event time ---------------------------------------------------------------------------------------


def event_time_spans(client: Any, base: str, topic: str, partition: int) -> tuple[list[Span], list[str]]:
    """The ``[start, end)`` of each complete manifest of one partition whose files all exist, and a note for each
    manifest that holds nothing (pending, or files missing)."""
    from airflow_provider_logtap.sinks.hdfs import MANIFESTS

    directory = posixpath.join(naming.clean_base(base), topic, MANIFESTS, f"partition={partition}")
    paths = []
    for name in _names(client, directory):
        parsed = naming.parse_file_name(name)
        if (
            parsed is not None
            and parsed.suffix == ".json"
            and parsed.topic == topic
            and parsed.partition == partition
        ):
            paths.append(posixpath.join(directory, name))
    if not paths:
        return [], []

    def read(path: str) -> Manifest:
        with client.read(path) as reader:
            return Manifest.decode(reader.read(), path)

    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(paths))) as pool:
        manifests = list(pool.map(read, paths))
    directories = sorted({posixpath.dirname(f) for m in manifests if m.state == "complete" for f in m.files})
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(directories)))) as pool:
        listed = dict(zip(directories, pool.map(lambda d: set(_names(client, d)), directories), strict=True))
    spans: list[Span] = []
    notes: list[str] = []
    for path, m in zip(paths, manifests, strict=True):
        if m.state != "complete":
            notes.append(
                f"{topic}[{partition}] write [{m.start}, {m.end}) is {m.state} ({path}): not counted as held"
            )
            continue
        gone = [f for f in m.files if posixpath.basename(f) not in listed.get(posixpath.dirname(f), set())]
        if gone:
            notes.append(
                f"{topic}[{partition}] write [{m.start}, {m.end}) lacks {len(gone)} of its {len(m.files)} files "
                f"(e.g. {gone[0]}; manifest {path}): not counted as held"
            )
            continue
        spans.append(Span(m.start, m.end))
    return spans, notes


def _hdfs_event_time(target: Any, topic: str, partitions: Sequence[int]) -> Holdings:
    client = target.client()
    spans: dict[int, tuple[Span, ...]] = {}
    notes: list[str] = []
    for p in partitions:
        held, said = event_time_spans(client, target.base_path, topic, p)
        spans[p] = tuple(held)
        notes += said
    return Holdings(spans=spans, notes=tuple(notes))


# --- search ---------------------------------------------------------------------------------------------------


class SearchQueries:
    """The two requests the search collector makes, on an opensearch-py or elasticsearch-py client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.opensearch = type(client).__module__.split(".")[0] == "opensearchpy"

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        options = {"ignore_unavailable": True, "allow_no_indices": True}
        if self.opensearch:
            return dict(self.client.search(index=index, body=body, **options))
        return dict(self.client.search(index=index, **body, **options))

    def refresh(self, index: str) -> None:
        """Make what was indexed into ``index`` (a name or pattern list) searchable now."""
        self.client.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)

    def alias_indices(self, alias: str) -> list[str]:
        """The indices of ``alias`` (none when it does not exist)."""
        try:
            return sorted(dict(self.client.indices.get_alias(name=alias)))
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
            if status == 404:
                return []
            raise


@dataclass(frozen=True)
class _Fields:
    topic: str
    partition: str
    offset: str


LIVE_FIELDS = _Fields("kafka.topic", "kafka.partition", "kafka.offset")
DEAD_LETTER_FIELDS = _Fields("topic", "partition", "offset")


def _filter(fields: _Fields, topic: str, partition: int) -> dict[str, Any]:
    return {"bool": {"filter": [{"term": {fields.topic: topic}}, {"term": {fields.partition: partition}}]}}


def _cut(span: Span, pieces: int) -> list[Span]:
    step = -(-span.size // pieces)
    return [Span(a, min(a + step, span.end)) for a in range(span.start, span.end, step)]


def index_spans(
    queries: SearchQueries, index: str, fields: _Fields, topic: str, partition: int, fanout: int = FANOUT
) -> list[Span]:
    """The offsets of one partition one index holds, as spans (each document once), by range aggregations."""
    query = _filter(fields, topic, partition)
    stats = queries.search(
        index, {"size": 0, "query": query, "aggs": {"o": {"stats": {"field": fields.offset}}}}
    )
    found = stats["aggregations"]["o"]
    if not found.get("count"):
        return []
    low, high = int(found["min"]), int(found["max"]) + 1
    held: list[Span] = []
    pending = [Span(low, high)]
    if found["count"] == high - low:
        return pending
    while pending:
        pieces = [piece for span in pending for piece in _cut(span, fanout)]
        pending = []
        for i in range(0, len(pieces), MAX_RANGES):
            batch = pieces[i : i + MAX_RANGES]
            ranges = [{"key": str(n), "from": s.start, "to": s.end} for n, s in enumerate(batch)]
            body = {
                "size": 0,
                "query": query,
                "aggs": {"r": {"range": {"field": fields.offset, "ranges": ranges}}},
            }
            buckets = queries.search(index, body)["aggregations"]["r"]["buckets"]
            by_key = {str(b["key"]): int(b["doc_count"]) for b in buckets}
            for n, piece in enumerate(batch):
                count = by_key.get(str(n), 0)
                if count == piece.size:
                    held.append(piece)
                elif piece.size == 1:
                    held += [piece] * count  # 0, or (documents not of logtap's _id) several at one offset
                elif count:
                    pending.append(piece)
    return union(held)


def search_spans(queries: SearchQueries, index_prefix: str, topic: str, partition: int) -> list[Span]:
    """The spans of every live index of the tap's alias and of its dead-letter index (multiplicity across
    indices)."""
    from airflow_provider_logtap.sinks.search import index_names

    names = index_names(index_prefix)
    spans: list[Span] = []
    for index in queries.alias_indices(names["alias"]):
        spans += index_spans(queries, index, LIVE_FIELDS, topic, partition)
    spans += index_spans(queries, names["dead_letter"], DEAD_LETTER_FIELDS, topic, partition)
    return spans


def _search(target: Any, topic: str, partitions: Sequence[int]) -> Holdings:
    from airflow_provider_logtap.sinks.search import index_names
    from airflow_provider_logtap.targets.search import search_client

    queries = SearchQueries(search_client(target.search_conn_id).client)  # type: ignore[attr-defined]
    names = index_names(target.index_prefix)
    queries.refresh(f"{names['alias']},{names['dead_letter']}")
    return Holdings(
        spans={p: tuple(search_spans(queries, target.index_prefix, topic, p)) for p in partitions}
    )


Collector = Callable[[Any, str, Sequence[int]], Holdings]
#: The collector of each target type (by its ``type``).
COLLECTORS: dict[str, Collector] = {
    "s3_archive": _s3_archive,
    "hdfs_raw": _hdfs_raw,
    "hdfs_event_time": _hdfs_event_time,
    "search": _search,
}


def holdings(target: TargetModel, topic: str, partitions: Sequence[int]) -> Holdings:
    """What ``target`` holds of ``topic``'s ``partitions``."""
    collector = COLLECTORS.get(target.type)
    if collector is None:
        raise ConfigurationError(
            f"target type must be one of {set(COLLECTORS)} to be reconciled. Got {target.type!r}: add its "
            "collector to airflow_provider_logtap.holdings.COLLECTORS"
        )
    return collector(target, topic, partitions)


# --- the check and the repair ---------------------------------------------------------------------------------


def select_taps(taps: Sequence[Tap], *, topic: str | None = None, names: Sequence[str] = ()) -> list[Tap]:
    """The taps to reconcile: those named (every one must exist), else those of ``topic``, else all."""
    if names:
        known = {t.name: t for t in taps}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigurationError(f"taps must be among {sorted(known)}. Got unknown {unknown}")
        chosen = [known[n] for n in names]
    else:
        chosen = [t for t in taps if topic is None or t.topic == topic]
    if topic is not None:
        chosen = [t for t in chosen if t.topic == topic]
    if not chosen:
        raise ConfigurationError(
            f"no tap to reconcile (topic {topic!r}, names {list(names)}): the taps file has "
            f"{sorted({t.topic for t in taps})} as topics"
        )
    return chosen


def _hook(tap: Tap) -> Any:
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    return KafkaRangeHook(kafka_config_id=tap.kafka_conn_id)


def check(taps: Sequence[Tap], *, collect: Callable[..., Holdings] = holdings) -> Reconciliation:
    """Reconcile every tap of ``taps`` against Kafka: per tap, the group's committed offsets first, then Kafka's
    watermarks, then what the target holds (in that order, so that a commit made meanwhile shows as offsets
    held beyond the committed one, never as missing). A tap whose check fails is reported under ``errors``
    (the others are still checked)."""
    from airflow_provider_logtap.kafka import offsets

    reports: list[TargetReport] = []
    errors: dict[str, str] = {}
    hooks: dict[str, Any] = {}
    for tap in taps:
        try:
            if tap.kafka_conn_id not in hooks:
                hooks[tap.kafka_conn_id] = _hook(tap)
            hook = hooks[tap.kafka_conn_id]
            partitions = offsets.partitions_of(hook.admin(), tap.topic)
            expects = tap.mode == "group"
            committed = (
                {p: c.offset for p, c in hook.committed(tap.group, tap.topic, partitions).items()}
                if expects
                else dict.fromkeys(partitions)
            )
            marks = hook.watermarks(tap.topic, partitions)
            held = collect(tap.target, tap.topic, partitions)
            notes = list(held.notes)
            if not expects:
                notes.insert(
                    0, "interval-mode tap: it commits no offsets, so only doubled offsets are checked"
                )
            # A tap that did not start at the topic's beginning is expected to hold from its first load on.
            floors = (
                {
                    p: min((s.start for s in held.spans.get(p, ())), default=committed.get(p) or 0)
                    for p in partitions
                }
                if tap.initial != "earliest"
                else {}
            )
            if floors:
                notes.insert(
                    0, f"initial: {tap.initial}: each partition is expected from the first offset held"
                )
            reports.append(
                TargetReport(
                    tap=tap.name,
                    topic=tap.topic,
                    target_type=tap.target.type,
                    where=tap.target.asset_uri,
                    partitions=tuple(
                        check_partition(
                            partition=p,
                            log_start=marks[p][0],
                            high_watermark=marks[p][1],
                            committed=committed.get(p),
                            held=held.spans.get(p, ()),
                            expects=expects,
                            floor=floors.get(p, 0),
                        )
                        for p in partitions
                    ),
                    notes=tuple(notes),
                )
            )
        except LogtapError as exc:
            errors[tap.name] = str(exc)
        except Exception as exc:  # a target that cannot be listed must not hide the others' findings
            log.exception("reconcile of tap %s failed", tap.name)
            errors[tap.name] = f"{type(exc).__name__}: {exc}"
    return Reconciliation(targets=tuple(reports), checked_at_ms=int(time.time() * 1000), errors=errors)


@dataclass(frozen=True, kw_only=True)
class RepairOutcome:
    """What a repair did: each range replayed (with its write's summary), and what it could not repair."""

    done: tuple[dict[str, Any], ...] = ()
    failed: tuple[dict[str, Any], ...] = ()
    cannot: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"done": list(self.done), "failed": list(self.failed), "cannot": list(self.cannot)}

    def lines(self) -> Iterator[str]:
        for d in self.done:
            where = f"{d['tap']} {d['topic']}[{d['partition']}] [{d['start']}, {d['end']})"
            yield f"repaired {where} from {d['source']}: {d['summary']}"
        for d in self.failed:
            yield f"REPAIR FAILED {d['tap']} {d['topic']}[{d['partition']}] [{d['start']}, {d['end']}): {d['error']}"
        for c in self.cannot:
            yield f"not repaired: {c}"


def _archive_tap(all_taps: Sequence[Tap], topic: str) -> Tap | None:
    archives = [t for t in all_taps if t.topic == topic and t.target.type == "s3_archive"]
    return archives[0] if len(archives) == 1 else None


def repair(
    report: Reconciliation,
    taps: Sequence[Tap],
    *,
    all_taps: Sequence[Tap],
    run: str,
    collect: Callable[..., Holdings] = holdings,
) -> RepairOutcome:
    """Replay exactly the missing ranges of ``report`` into the targets that lack them: read with ``auto``
    (the archive below Kafka's log start, Kafka from there) when the topic has one ``s3_archive`` tap among
    ``all_taps``, else from Kafka. Each range is one write of the target's own sink (the same names, ``_id`` s
    and event-time placement a load makes), without the bad-line ratio (the range was checked when first
    loaded, and a repaired range may be a single bad line). Doubled offsets of raw and event-time targets are
    rewritten over the whole extent of the objects that overlap them (see
    :func:`~airflow_provider_logtap.core.reconcile.rewrite_extent`). A range that fails is reported; the
    others go on."""
    from airflow_provider_logtap.sources import RecordSource, archive_reader
    from airflow_provider_logtap.targets import build_sink

    by_name = {t.name: t for t in taps}
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    cannot: list[str] = []
    for target_report in report.targets:
        tap = by_name.get(target_report.tap)
        if tap is None:
            continue
        archive = _archive_tap(all_taps, tap.topic)
        spans = None
        if any(p.doubled for p in target_report.partitions):  # which objects overlap: listed again
            spans = collect(tap.target, tap.topic, [p.partition for p in target_report.partitions]).spans
        todo, unrepairable = repairs(target_report, archive=archive.name if archive else None, spans=spans)
        cannot += [f"tap {tap.name}: {c}" for c in unrepairable]
        if not todo:
            continue
        target = tap.target
        if "max_bad_ratio" in type(target).model_fields:
            target = target.replaced(max_bad_ratio=None)
        sink = build_sink(target, run=run)
        hook = _hook(tap)
        for item in todo:
            entry = {**_repair_entry(item)}
            try:
                source = RecordSource(
                    item.source,
                    hook=hook,
                    archive=archive_reader(archive.target) if item.source != "kafka" and archive else None,  # type: ignore[arg-type]
                )
                rng = OffsetRange(
                    topic=item.topic, partition=item.partition, start=item.span.start, end=item.span.end
                )
                result = sink.write(rng, source.read(rng, on_data_loss="fail"))
                done.append({**entry, "summary": result.summary(), "records": result.records})
            except Exception as exc:
                log.warning("repair of %s %s failed: %s", tap.name, item.span, exc)
                failed.append({**entry, "error": f"{type(exc).__name__}: {exc}"})
    return RepairOutcome(done=tuple(done), failed=tuple(failed), cannot=tuple(cannot))


def _repair_entry(item: Repair) -> dict[str, Any]:
    return item.to_dict()


def reconcile(
    taps: Sequence[Tap],
    *,
    all_taps: Sequence[Tap] | None = None,
    fix: bool = False,
    run: str = "logtap-reconcile",
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Check ``taps`` and, with ``fix``, repair what is missing and check again. Every report line goes to
    ``say``. Returns the JSON-ready result: ``report`` (the first check), ``repair`` and ``after`` (with
    ``fix``), ``gaps`` and ``healthy`` of the last check."""
    first = check(taps)
    for line in first.lines():
        say(line)
    result: dict[str, Any] = {"report": first.to_dict()}
    last = first
    if fix:
        outcome = repair(first, taps, all_taps=all_taps or taps, run=run)
        for line in outcome.lines():
            say(line)
        if outcome.done or outcome.failed:
            last = check(taps)
            say("after the repair:")
            for line in last.lines():
                say(line)
        result["repair"] = outcome.to_dict()
        result["after"] = last.to_dict()
    result["gaps"] = last.gaps
    result["healthy"] = last.healthy
    return result
