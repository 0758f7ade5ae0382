"""The one interface of every sink, and the result every write returns."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    """What one write of one range did. JSON-ready through :meth:`to_dict` (it is the load task's XCom)."""

    sink: str
    range: OffsetRange
    records: int = 0
    written: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    objects: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    lost: tuple[OffsetRange, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    partitions: tuple[str, ...] = ()
    dead_letters: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "range": self.range.to_dict(),
            "records": self.records,
            "written": self.written,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "objects": list(self.objects),
            "removed": list(self.removed),
            "lost": [r.to_dict() for r in self.lost],
            "lost_count": sum(r.size for r in self.lost),
            "counts": dict(self.counts),
            "partitions": list(self.partitions),
            "dead_letters": self.dead_letters,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()) if v)
        lost = sum(r.size for r in self.lost)
        return (
            f"{self.sink}: {self.range} -> {self.written} of {self.records} records, {self.bytes_in} bytes in, "
            f"{self.bytes_out} bytes out, {len(self.objects)} objects written, {len(self.removed)} stale removed"
            f"{f', {len(self.partitions)} event-time partitions' if self.partitions else ''}"
            f"{f', {self.dead_letters} DEAD LETTERS' if self.dead_letters else ''}"
            f"{', ' + extra if extra else ''}{f', {lost} offsets LOST to retention' if lost else ''} "
            f"in {self.seconds:.1f}s ({rate:,.0f} records/s)"
        )


class Sink(Protocol):
    """A target: makes its content for the offsets ``[range.start, range.end)`` exactly the given records.

    Writing the same range again replaces what an earlier attempt wrote for it (idempotent); nothing outside
    the range is touched.
    """

    name: str

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult: ...


def track_lost(batches: Iterable[RecordBatch], lost: list[OffsetRange]) -> Iterator[RecordBatch]:
    """Pass batches through, noting the ranges the reader reported lost to retention."""
    for batch in batches:
        if batch.lost is not None:
            lost.append(batch.lost)
        yield batch


@dataclass(frozen=True)
class Stale:
    """What an archive write does with the objects (or files) an earlier attempt left in its range."""

    removed: tuple[str, ...] = ()
    """Their names, to delete: the range's records are now in the objects just written."""
    kept: tuple[str, ...] = ()
    """Their names, to keep: they start at offsets lost to retention, which this write could not re-read."""


def stale_objects(
    rng: OffsetRange,
    found: Iterable[tuple[str, int]],
    written: Collection[str],
    lost: Sequence[OffsetRange],
) -> Stale:
    """Of the objects ``found`` as ``(name, start offset)``, in their order, the stale ones of ``rng``.

    An object is stale when its start lies in ``rng`` and it is not one of the names just ``written``: an earlier
    attempt cut the range differently. Stale objects starting in a ``lost`` range are kept (their records are
    gone from Kafka, so deleting them would lose data); all others are removed. Objects starting outside
    ``rng`` are never touched. The sinks do only the listing and deleting around this rule.
    """
    removed: list[str] = []
    kept: list[str] = []
    for name, start in found:
        if start not in rng or name in written:
            continue
        (kept if any(start in gone for gone in lost) else removed).append(name)
    return Stale(removed=tuple(removed), kept=tuple(kept))
