"""Reconciliation: which offsets each target holds, against what its tap committed and what Kafka still has
(pure).

For one partition of one tap's target the inputs are Kafka's log start and high-water mark, the tap group's
committed offset, and the spans the target holds, with multiplicity (an archive object's coverage, a recorded
write, a run of search documents; the same offset held twice is two spans). The offsets
``[log_start, committed)`` must be held exactly once. The findings, each a list of compact spans:

- ``missing``: offsets of ``[log_start, committed)`` the target lacks; Kafka still has them, so a replay from
  Kafka repairs them;
- ``below_log_start``: offsets below ``min(log_start, committed)`` the target lacks; retention deleted them from
  Kafka, so only the S3 archive (if it holds them) can give them back. Offsets below the log start that the
  target holds are fine;
- ``doubled``: offsets held more than once, anywhere;
- ``beyond``: offsets held at or after the committed offset (a load in progress, or a run that wrote and then
  failed before its commit: its retry or the next run writes them again, in place).

A partition without a committed offset expects nothing (everything held is ``beyond``). A tap that commits no
offsets (interval mode) has ``committed=None`` *and* ``expects=False``: only ``doubled`` is checked.

:class:`Reconciliation` is the JSON-ready report of one check over several targets (``to_dict``/``from_dict``)
and its text for a task log (:meth:`Reconciliation.lines`: one line per finding, compact ranges).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_logtap.core import coverage
from airflow_provider_logtap.core.coverage import Span
from airflow_provider_logtap.errors import NotRetryable

#: The kinds of finding, in the order a report lists them, and how a log line names each.
FINDINGS: dict[str, str] = {
    "missing": "MISSING",
    "below_log_start": "MISSING BELOW LOG START (gone from Kafka)",
    "doubled": "DOUBLED",
    "beyond": "BEYOND the committed offset",
}
#: The findings a check fails on (``fail_on_gap``): lost or doubled records in what the tap says it loaded.
GAPS = ("missing", "doubled")


def _spans(data: Iterable[Sequence[int]]) -> tuple[Span, ...]:
    return tuple(Span(int(s), int(e)) for s, e in data)


@dataclass(frozen=True, kw_only=True)
class PartitionReport:
    """One partition of one target: the Kafka and group offsets it was checked against, what it holds
    (``held``: the union, compact) and the findings."""

    partition: int
    log_start: int
    high_watermark: int
    committed: int | None
    expects: bool = True
    floor: int = 0
    held: tuple[Span, ...] = ()
    held_offsets: int = 0
    missing: tuple[Span, ...] = ()
    below_log_start: tuple[Span, ...] = ()
    doubled: tuple[Span, ...] = ()
    beyond: tuple[Span, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.log_start <= self.high_watermark:
            raise ValueError(
                f"partition {self.partition}: log start and high-water mark must satisfy 0 <= log_start <= "
                f"high_watermark. Got {self.log_start}, {self.high_watermark}"
            )

    @property
    def expected(self) -> Span:
        """The offsets that must be held once: ``[max(log_start, floor), committed)`` (empty when nothing is
        expected)."""
        start = max(self.log_start, self.floor)
        end = self.committed if self.expects and self.committed is not None else start
        return Span(start, max(start, end))

    def findings(self) -> dict[str, tuple[Span, ...]]:
        """The non-empty findings, by kind (in :data:`FINDINGS` order)."""
        return {kind: spans for kind in FINDINGS if (spans := getattr(self, kind))}

    @property
    def gaps(self) -> bool:
        return any(getattr(self, kind) for kind in GAPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "log_start": self.log_start,
            "high_watermark": self.high_watermark,
            "committed": self.committed,
            "expects": self.expects,
            "floor": self.floor,
            "held": [list(s) for s in self.held],
            "held_offsets": self.held_offsets,
            **{kind: [list(s) for s in getattr(self, kind)] for kind in FINDINGS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionReport:
        return cls(
            partition=int(data["partition"]),
            log_start=int(data["log_start"]),
            high_watermark=int(data["high_watermark"]),
            committed=None if data.get("committed") is None else int(data["committed"]),
            expects=bool(data.get("expects", True)),
            floor=int(data.get("floor", 0)),
            held=_spans(data.get("held", ())),
            held_offsets=int(data.get("held_offsets", 0)),
            **{kind: _spans(data.get(kind, ())) for kind in FINDINGS},
        )


def check_partition(
    *,
    partition: int,
    log_start: int,
    high_watermark: int,
    committed: int | None,
    held: Iterable[tuple[int, int]],
    expects: bool = True,
    floor: int = 0,
) -> PartitionReport:
    """The findings of one partition of a target that holds ``held`` (spans, with multiplicity).

    :param log_start: Kafka's log start now (the first offset retention has not deleted).
    :param high_watermark: Kafka's high-water mark now.
    :param committed: the tap group's committed offset (``None``: nothing committed).
    :param held: the target's spans ``(start, end)``; an offset held by two spans is held twice.
    :param expects: ``False`` for a tap that commits no offsets: only doubled offsets are checked.
    :param floor: the first offset the tap ever loaded, when it did not start at the beginning of the topic
        (``initial: latest``): nothing below it is expected (0: everything from the topic's start).
    """
    spans = [(int(s), int(e)) for s, e in held]
    report = PartitionReport(
        partition=partition,
        log_start=log_start,
        high_watermark=high_watermark,
        committed=committed,
        expects=expects,
        floor=floor,
    )
    union = coverage.union(spans)
    common: dict[str, Any] = {
        "held": tuple(union),
        "held_offsets": coverage.total(union),
        "doubled": tuple(coverage.doubled(spans)),
    }
    if not expects:
        return _with(report, **common)
    end = 0 if committed is None else committed
    expected = report.expected
    return _with(
        report,
        **common,
        missing=tuple(coverage.missing(spans, expected.start, expected.end)),
        below_log_start=tuple(coverage.missing(spans, floor, min(log_start, end))),
        beyond=tuple(coverage.beyond(spans, end)),
    )


def _with(report: PartitionReport, **changes: Any) -> PartitionReport:
    return PartitionReport(**{**report.__dict__, **changes})


@dataclass(frozen=True, kw_only=True)
class TargetReport:
    """One tap's target over the partitions of its topic.

    :param tap: the tap's name.
    :param topic: its topic.
    :param target_type: the target's type (``s3_archive``, ...).
    :param where: where the target is (``s3://bucket/prefix``, an HDFS path, ``search://conn/prefix``).
    :param partitions: one report per partition, in partition order.
    :param notes: what the check could not see or had to assume (e.g. an interval-mode tap's missing offsets).
    """

    tap: str
    topic: str
    target_type: str
    where: str
    partitions: tuple[PartitionReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def gaps(self) -> bool:
        return any(p.gaps for p in self.partitions)

    @property
    def findings(self) -> bool:
        return any(p.findings() for p in self.partitions)

    def partition(self, number: int) -> PartitionReport:
        for p in self.partitions:
            if p.partition == number:
                return p
        raise KeyError(f"tap {self.tap!r} has no report of partition {number}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tap": self.tap,
            "topic": self.topic,
            "target_type": self.target_type,
            "where": self.where,
            "gaps": self.gaps,
            "partitions": [p.to_dict() for p in self.partitions],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetReport:
        return cls(
            tap=str(data["tap"]),
            topic=str(data["topic"]),
            target_type=str(data["target_type"]),
            where=str(data["where"]),
            partitions=tuple(PartitionReport.from_dict(p) for p in data.get("partitions", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )

    def lines(self) -> list[str]:
        """The text of this target for a task log: a header, then one line per finding (or ``nothing missing``)."""
        out = [f"{self.target_type} tap {self.tap} ({self.where}), topic {self.topic}:"]
        out += [f"  note: {note}" for note in self.notes]
        for p in self.partitions:
            name = f"{self.topic}[{p.partition}]"
            for kind, spans in p.findings().items():
                label = FINDINGS[kind]
                if kind == "beyond":
                    label = f"{label} {p.committed}"
                elif kind == "below_log_start":
                    label = f"MISSING BELOW LOG START {p.log_start} (gone from Kafka)"
                out.append(f"  {name}: {label}: {coverage.compact(spans)}")
        if not self.findings:
            expected = sum(p.expected.size for p in self.partitions)
            out.append(
                f"  nothing missing: {len(self.partitions)} partitions hold each offset of [log start, committed) "
                f"once ({expected:,} offsets), nothing doubled, nothing beyond"
            )
        elif not any(p.missing or p.below_log_start for p in self.partitions):
            out.append("  nothing missing")
        return out


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """One check of several targets (a topic's taps), when it was made, and its findings."""

    targets: tuple[TargetReport, ...] = ()
    checked_at_ms: int = 0
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def gaps(self) -> bool:
        """Anything missing or doubled (what ``fail_on_gap`` fails on), or a target that could not be checked."""
        return bool(self.errors) or any(t.gaps for t in self.targets)

    @property
    def healthy(self) -> bool:
        """Every target holds exactly what it should: no finding of any kind, no error."""
        return not self.errors and not any(t.findings for t in self.targets)

    def target(self, tap: str) -> TargetReport:
        for t in self.targets:
            if t.tap == tap:
                return t
        raise KeyError(f"no report of tap {tap!r} (reported: {[t.tap for t in self.targets]})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at_ms": self.checked_at_ms,
            "gaps": self.gaps,
            "healthy": self.healthy,
            "targets": [t.to_dict() for t in self.targets],
            "errors": dict(self.errors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reconciliation:
        return cls(
            targets=tuple(TargetReport.from_dict(t) for t in data.get("targets", ())),
            checked_at_ms=int(data.get("checked_at_ms", 0)),
            errors={str(k): str(v) for k, v in (data.get("errors") or {}).items()},
        )

    def lines(self) -> list[str]:
        """The report as task-log lines: each target's, then each error, then a summary line."""
        out: list[str] = []
        for t in self.targets:
            out += t.lines()
        for tap, error in self.errors.items():
            out.append(f"tap {tap}: NOT CHECKED: {error}")
        out.append(self.summary())
        return out

    def summary(self) -> str:
        checked = len(self.targets)
        if self.healthy:
            return f"reconcile: {checked} targets checked, nothing missing, nothing doubled"
        with_gaps = sorted(t.tap for t in self.targets if t.gaps)
        other = sorted(t.tap for t in self.targets if t.findings and not t.gaps)
        parts = []
        if with_gaps:
            parts.append(f"missing or doubled offsets in {', '.join(with_gaps)}")
        if other:
            parts.append(f"other findings in {', '.join(other)}")
        if self.errors:
            parts.append(f"not checked: {', '.join(sorted(self.errors))}")
        return f"reconcile: {checked} targets checked; " + "; ".join(parts)

    def text(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True, kw_only=True)
class Repair:
    """One range to replay into one tap's target: a finding's span, and where its records are read from
    (a :data:`~airflow_provider_logtap.sources.SOURCES` kind)."""

    tap: str
    topic: str
    partition: int
    span: Span
    source: str
    finding: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tap": self.tap,
            "topic": self.topic,
            "partition": self.partition,
            "start": self.span.start,
            "end": self.span.end,
            "source": self.source,
            "finding": self.finding,
        }


#: The target types whose doubled offsets a rewrite removes: a write of a range replaces every object, file or
#: recorded write that starts inside it (documents in two search indices stay doubled: a write replaces a
#: document only in the index of its event day).
REWRITES_DOUBLES = ("s3_archive", "hdfs_raw", "hdfs_event_time")


def rewrite_extent(spans: Iterable[tuple[int, int]], doubled: Sequence[tuple[int, int]]) -> list[Span]:
    """The ranges whose rewrite removes ``doubled``: each doubled span widened to the whole extent of the spans
    (objects, files, writes) that overlap it, and again until no span crosses its ends, so a write of it
    replaces all of them (every one starts inside it) and covers exactly what they covered."""
    held = sorted((int(s), int(e)) for s, e in spans if e > s)
    out: list[Span] = []
    for d in doubled:
        lo, hi = d[0], d[1]
        while True:
            crossing = [(s, e) for s, e in held if s < hi and e > lo]
            new_lo = min([lo, *(s for s, _ in crossing)])
            new_hi = max([hi, *(e for _, e in crossing)])
            if (new_lo, new_hi) == (lo, hi):
                break
            lo, hi = new_lo, new_hi
        out.append(Span(lo, hi))
    return coverage.union(out)


def repairs(
    report: TargetReport, *, archive: str | None, spans: Mapping[int, Sequence[tuple[int, int]]] | None = None
) -> tuple[list[Repair], list[str]]:
    """The ranges a repair replays into ``report``'s target, and the findings it cannot repair (as text).

    Missing offsets are replayed exactly (no wider: a raw target's objects must tile, not overlap); Kafka still
    has them, so they are read with ``auto`` when the topic has an S3 archive tap (``archive``: its name) and
    from ``kafka`` otherwise. Offsets missing below the log start can come only from the archive (``auto``
    reads them there), and not into the archive itself. Doubled offsets of a raw or event-time target are
    rewritten over :func:`rewrite_extent` of the target's ``spans`` (per partition, with multiplicity; without
    them doubles are not repaired); a search target's are not repairable by a replay."""
    out: list[Repair] = []
    cannot: list[str] = []
    own_archive = report.target_type == "s3_archive"
    for p in report.partitions:
        kafka_source = "auto" if archive and not own_archive else "kafka"

        def add(span: Span, finding: str, p: PartitionReport = p, kafka_source: str = kafka_source) -> None:
            if span.start >= p.log_start:
                source = kafka_source
            elif archive and not own_archive:
                source = "auto"
            else:
                why = "it is the archive itself" if own_archive else "the topic has no s3_archive tap"
                cannot.append(
                    f"{report.topic}[{p.partition}] {finding} {span}: below the log start {p.log_start}, and {why}: "
                    "not repairable"
                )
                return
            out.append(
                Repair(
                    tap=report.tap,
                    topic=report.topic,
                    partition=p.partition,
                    span=span,
                    source=source,
                    finding=finding,
                )
            )

        for span in p.missing:
            add(span, "missing")
        for span in p.below_log_start:
            add(span, "below_log_start")
        if not p.doubled:
            continue
        if report.target_type in REWRITES_DOUBLES and spans is not None:
            for span in rewrite_extent(spans.get(p.partition, ()), p.doubled):
                add(span, "doubled")
        else:
            cannot.append(
                f"{report.topic}[{p.partition}] doubled {coverage.compact(p.doubled)}: a replay cannot remove "
                "these doubles (a document in two indices, or in an index and the dead letters); delete the extra "
                "copies"
            )
    return out, cannot


class GapError(NotRetryable):
    """A reconciliation found offsets missing or doubled (or a target it could not check): a retry would find
    them again; the report names each range and the fix (a repair, or removing the extra copies)."""

    def __init__(self, report: Reconciliation, repaired: bool = False) -> None:
        self.report = report
        found = [line.strip() for line in report.lines() if ": MISSING" in line or ": DOUBLED" in line]
        found += [f"tap {tap}: not checked: {error}" for tap, error in report.errors.items()]
        shown = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
        fix = (
            "What the repair could not fix is listed above it in the log: remove doubled copies by hand"
            if repaired
            else "Run the reconcile with repair=True (logtap reconcile --repair) to replay the missing ranges"
        )
        super().__init__(f"{report.summary()}: {shown}. {fix}.")
