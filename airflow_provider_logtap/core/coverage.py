"""Which offsets of one partition a target holds, and how often: arithmetic on half-open spans (pure).

A target's holdings are spans ``[start, end)`` (an archive object's coverage, a recorded write, a bucket of
search documents); the same offset may be held by several spans (a file written twice) or by none (an object
deleted by hand). :func:`depths` sweeps them into disjoint pieces with the number of spans holding each;
:func:`missing`, :func:`doubled` and :func:`beyond` read the answers a replay (archive gaps) and a
reconciliation need off it, and :func:`compact` writes a list of spans as short text for a log line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Span(NamedTuple):
    """The offsets ``[start, end)``; ``start <= end``."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


class Piece(NamedTuple):
    """Offsets ``[start, end)`` held by ``depth`` spans (0: by none)."""

    start: int
    end: int
    depth: int


def depths(spans: Iterable[tuple[int, int]], start: int | None = None, end: int | None = None) -> list[Piece]:
    """Disjoint pieces, in offset order, with how many of ``spans`` hold each; within ``[start, end)`` when
    given (the pieces then tile it, uncovered parts with depth 0), else over the spans' own extent (depth-0
    pieces between them included). Empty spans hold nothing."""
    events: dict[int, int] = {}
    for s, e in spans:
        if e < s:
            raise ValueError(f"a span must have start <= end. Got [{s}, {e})")
        if e > s:
            events[s] = events.get(s, 0) + 1
            events[e] = events.get(e, 0) - 1
    points = sorted(events)
    lo = points[0] if start is None and points else start
    hi = points[-1] if end is None and points else end
    if lo is None or hi is None or hi <= lo:
        return []
    pieces: list[Piece] = []
    depth = 0
    cursor = lo
    for point in points:
        if point > cursor and point > lo:
            a, b = max(cursor, lo), min(point, hi)
            if b > a:
                _append(pieces, Piece(a, b, depth))
        depth += events[point]
        cursor = max(cursor, point)
        if cursor >= hi:
            break
    if cursor < hi:
        _append(pieces, Piece(max(cursor, lo), hi, depth))
    return pieces


def _append(pieces: list[Piece], piece: Piece) -> None:
    if pieces and pieces[-1].depth == piece.depth and pieces[-1].end == piece.start:
        pieces[-1] = Piece(pieces[-1].start, piece.end, piece.depth)
    else:
        pieces.append(piece)


def missing(spans: Iterable[tuple[int, int]], start: int, end: int) -> list[Span]:
    """The parts of ``[start, end)`` no span holds."""
    return [Span(p.start, p.end) for p in depths(spans, start, end) if p.depth == 0]


def doubled(spans: Iterable[tuple[int, int]], start: int | None = None, end: int | None = None) -> list[Span]:
    """The offsets (within ``[start, end)`` when given) held by more than one span."""
    return _joined(Span(p.start, p.end) for p in depths(spans, start, end) if p.depth > 1)


def beyond(spans: Iterable[tuple[int, int]], end: int) -> list[Span]:
    """The offsets at or after ``end`` that some span holds (e.g. beyond a group's committed offset)."""
    return _joined(Span(max(p.start, end), p.end) for p in depths(spans) if p.depth > 0 and p.end > end)


def union(spans: Iterable[tuple[int, int]]) -> list[Span]:
    """The offsets some span holds, as disjoint spans in offset order."""
    return _joined(Span(p.start, p.end) for p in depths(spans) if p.depth > 0)


def _joined(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        if out and out[-1].end == span.start:
            out[-1] = Span(out[-1].start, span.end)
        else:
            out.append(span)
    return out


def total(spans: Sequence[tuple[int, int]]) -> int:
    """How many offsets ``spans`` cover (overlaps counted once each time they occur: the sum of sizes)."""
    return sum(e - s for s, e in spans)


def compact(spans: Sequence[tuple[int, int]], limit: int = 20) -> str:
    """``[0, 10), [20, 30) (20 offsets)`` — at most ``limit`` spans written out, then how many more."""
    if not spans:
        return "none"
    shown = ", ".join(str(Span(s, e)) for s, e in spans[:limit])
    more = f" and {len(spans) - limit} more spans" if len(spans) > limit else ""
    return f"{shown}{more} ({total(spans):,} offsets)"
