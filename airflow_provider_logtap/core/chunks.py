"""Chunks: a partition's planned range split into pieces that separate load tasks write, on whatever worker.

A run's plan holds one range per partition (group mode: the range its claim names; interval mode: one per
unit). A range longer than the tap's ``chunk_records`` is split at plan time into ``ceil(size / chunk_records)``
balanced chunks; their boundaries depend only on the range and ``chunk_records`` (and, for a partition rebuild,
on the recorded writes it must replace whole), so the same plan gives the same chunks on every retry and clear.
An interval's zones, planned by the intervals on both sides of their boundary, are never cut (see
:func:`chunk_specs`).

Each chunk is one load spec (one element of the plan task's output, a load's ``offset_range``): the chunk's own
``topic``/``partition``/``start``/``end`` and, under ``chunk``, its place (``index`` from 1, ``count``) and the
whole range it is part of (``start``/``end``). Every sink names its output by the start of the range it writes, so
chunks never collide, and writing one chunk again replaces only that chunk's output. A load checks its run's claim
on the *whole* range, and the commit waits for every chunk of the run, then commits the whole range's end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError

CHUNK_KEY = "chunk"

#: The most chunks :func:`split` makes of one range (a guard: a plan's chunks are also bounded by Airflow's
#: ``[core] max_map_length``, see :func:`chunk_specs`).
MAX_CHUNKS_PER_RANGE = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Chunk ``index`` (from 1) of ``count`` of ``whole``: the offsets ``range``."""

    range: OffsetRange
    whole: OffsetRange
    index: int
    count: int

    def __post_init__(self) -> None:
        r, w = self.range, self.whole
        if (r.topic, r.partition) != (w.topic, w.partition) or not w.start <= r.start <= r.end <= w.end:
            raise ConfigurationError(f"chunk {r} does not lie inside the range {w} it is part of")
        if not 1 <= self.index <= self.count:
            raise ConfigurationError(f"chunk {r}: index {self.index} is not in 1..{self.count}")

    @property
    def label(self) -> str:
        """``partition 3 chunk 2/8 [1200000, 1350000)``, as the load's task instance is labelled."""
        r = self.range
        return f"partition {r.partition} chunk {self.index}/{self.count} [{r.start}, {r.end})"


def split(
    rng: OffsetRange, chunk_records: int | None, cuts: Iterable[int] | None = None
) -> tuple[OffsetRange, ...]:
    """``rng`` cut into chunks of at most ``chunk_records`` offsets (``None``: not cut).

    Without ``cuts`` the chunks are balanced: ``ceil(size / chunk_records)`` of them, sizes differing by at most
    one. With ``cuts`` (the offsets a chunk may start at, e.g. where the recorded writes a rebuild replaces start)
    every boundary is one of them: each chunk runs to the furthest cut at most ``chunk_records`` away, or to the
    nearest one if none is that close (a recorded write longer than ``chunk_records`` stays whole).
    """
    if chunk_records is not None and (
        isinstance(chunk_records, bool) or not isinstance(chunk_records, int) or chunk_records < 1
    ):
        raise ConfigurationError(f"chunk_records must be an integer >= 1 or None. Got {chunk_records!r}")
    if chunk_records is None or rng.size <= chunk_records:
        return (rng,)
    count = -(-rng.size // chunk_records)
    if count > MAX_CHUNKS_PER_RANGE:
        raise ConfigurationError(
            f"chunk_records={chunk_records} would cut {rng} ({rng.size} offsets) into more than "
            f"{MAX_CHUNKS_PER_RANGE} chunks: raise chunk_records"
        )
    if cuts is None:
        bounds = [rng.start + rng.size * i // count for i in range(count + 1)]
    else:
        candidates = [*sorted({c for c in cuts if rng.start < c < rng.end}), rng.end]
        bounds, i = [rng.start], 0
        while bounds[-1] < rng.end:
            reach, j = bounds[-1] + chunk_records, i
            while j + 1 < len(candidates) and candidates[j + 1] <= reach:
                j += 1
            bounds.append(candidates[j])
            i = j + 1
    return tuple(replace(rng, start=a, end=b) for a, b in itertools.pairwise(bounds))


def chunk_specs(
    specs: Iterable[Mapping[str, Any]],
    chunk_records: int | None,
    cuts: Mapping[int, Sequence[int]] | None = None,
    *,
    max_specs: int | None = None,
    whole: Callable[[Mapping[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """The load specs of a plan (``{"topic", "partition", "start", "end", ...}``), each range longer than
    ``chunk_records`` replaced by its chunks (their other keys kept, a ``chunk`` entry added). ``cuts``: per
    partition, the offsets a chunk may start at (see :func:`split`; a partition not in it is not cut).
    ``whole``: the specs never cut (e.g. an interval's zones, which the plans of two intervals share: each could
    cut them differently, were ``chunk_records`` changed between the two).

    :raises ConfigurationError: more than ``max_specs`` load specs (Airflow's ``[core] max_map_length``: it would
        fail the plan task, and retry it in vain), naming the ``chunk_records`` that fits.
    """
    specs = list(specs)
    wholes = [OffsetRange.from_dict(s) for s in specs]
    cut = [not (whole and whole(s)) for s in specs]
    if max_specs is not None and chunk_records is not None and cuts is None:
        count = sum(max(1, -(-w.size // chunk_records)) if c else 1 for w, c in zip(wholes, cut, strict=True))
        if count > max_specs:
            total = sum(w.size for w in wholes)
            fits = (
                f"raise chunk_records to at least {-(-total // (max_specs - len(wholes)))}"
                if max_specs > len(wholes)
                else "unset chunk_records"
            )
            raise ConfigurationError(
                f"chunk_records={chunk_records} cuts this plan's {len(wholes)} ranges ({total} offsets) into "
                f"{count} load tasks, more than Airflow's [core] max_map_length ({max_specs}) allows: {fits}, or "
                "raise max_map_length (AIRFLOW__CORE__MAX_MAP_LENGTH)."
            )
    out: list[dict[str, Any]] = []
    for spec, rng, cut_it in zip(specs, wholes, cut, strict=True):
        limit = chunk_records if cut_it else None
        pieces = split(rng, limit, None if cuts is None else cuts.get(rng.partition, ()))
        if len(pieces) == 1:
            out.append(dict(spec))
            continue
        for index, piece in enumerate(pieces, start=1):
            place = {"index": index, "count": len(pieces), "start": rng.start, "end": rng.end}
            out.append({**spec, **piece.to_dict(), CHUNK_KEY: place})
    if max_specs is not None and len(out) > max_specs:
        raise ConfigurationError(
            f"this plan makes {len(out)} load tasks, more than Airflow's [core] max_map_length ({max_specs}) "
            "allows: raise chunk_records, or raise max_map_length (AIRFLOW__CORE__MAX_MAP_LENGTH)."
        )
    return out


def chunk_of(spec: Mapping[str, Any]) -> Chunk | None:
    """The chunk a load spec is, or ``None`` for a whole range."""
    place = spec.get(CHUNK_KEY) if isinstance(spec, Mapping) else None
    if place is None:
        return None
    if not isinstance(place, Mapping) or not {"index", "count", "start", "end"} <= set(place):
        raise ConfigurationError(
            f"a load spec's {CHUNK_KEY!r} must hold index, count, start and end. Got {place!r}"
        )
    rng = OffsetRange.from_dict(spec)
    whole = replace(rng, start=place["start"], end=place["end"])
    return Chunk(range=rng, whole=whole, index=place["index"], count=place["count"])


def whole_range(spec: Mapping[str, Any]) -> OffsetRange:
    """The planned range a load spec is part of: the chunk's whole range, or the spec's own range."""
    chunk = chunk_of(spec)
    return OffsetRange.from_dict(spec) if chunk is None else chunk.whole


def label(spec: Mapping[str, Any]) -> str:
    chunk = chunk_of(spec)
    if chunk is not None:
        return chunk.label
    rng = OffsetRange.from_dict(spec)
    return f"partition {rng.partition} [{rng.start}, {rng.end})"


def whole_ranges(specs: Iterable[Mapping[str, Any]]) -> list[OffsetRange]:
    """The planned ranges of a group-mode plan's load specs, one per partition (the chunks of a partition put
    back together), in the specs' order. The chunks of a partition must tile its range exactly."""
    pieces: dict[int, list[OffsetRange]] = {}
    wholes: dict[int, OffsetRange] = {}
    for spec in specs:
        chunk = chunk_of(spec)
        rng = OffsetRange.from_dict(spec)
        whole = rng if chunk is None else chunk.whole
        if wholes.setdefault(whole.partition, whole) != whole:
            raise ConfigurationError(
                f"the plan has two ranges for partition {whole.partition}: {wholes[whole.partition]} and {whole}"
            )
        pieces.setdefault(whole.partition, []).append(rng)
    for partition, parts in pieces.items():
        whole = wholes[partition]
        ordered = sorted(parts)
        bounds = [whole.start] + [p.end for p in ordered]
        if [p.start for p in ordered] != bounds[:-1] or bounds[-1] != whole.end:
            raise ConfigurationError(
                f"the chunks of {whole} do not cover it exactly: {[str(p) for p in ordered]}"
            )
    return list(wholes.values())
