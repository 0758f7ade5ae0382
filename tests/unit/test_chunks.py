"""Chunks of a planned range: boundaries, determinism, tiny and huge ranges, the label and the commit's view."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.chunks import (
    chunk_of,
    chunk_specs,
    label,
    split,
    whole_range,
    whole_ranges,
)
from airflow_provider_logtap.core.ranges import MAX_OFFSET, OffsetRange
from airflow_provider_logtap.errors import ConfigurationError

TOPIC = "weblogs"


def rng(start: int, end: int, partition: int = 0) -> OffsetRange:
    return OffsetRange(topic=TOPIC, partition=partition, start=start, end=end)


offsets = st.integers(min_value=0, max_value=MAX_OFFSET)


@st.composite
def ranges(draw: st.DrawFn, max_size: int = 10**12) -> OffsetRange:
    start = draw(st.integers(min_value=0, max_value=MAX_OFFSET - max_size))
    return rng(start, start + draw(st.integers(min_value=0, max_value=max_size)))


@given(ranges(), st.integers(min_value=1, max_value=10**13))
def test_chunks_tile_the_range_in_balanced_pieces_of_at_most_chunk_records(
    whole: OffsetRange, size: int
) -> None:
    size = max(size, -(-whole.size // 2000))  # at most 2000 chunks: what a test can build quickly
    pieces = split(whole, size)
    assert pieces[0].start == whole.start and pieces[-1].end == whole.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert all(p.size <= size for p in pieces)
    assert max(p.size for p in pieces) - min(p.size for p in pieces) <= 1
    assert len(pieces) == max(1, -(-whole.size // size))  # as few as the limit allows
    assert split(whole, size) == pieces  # deterministic: the same range and limit cut alike
    if whole.size:
        assert all(not p.empty for p in pieces)


def test_boundaries_are_exact() -> None:
    assert [(p.start, p.end) for p in split(rng(1000, 2001), 300)] == [
        (1000, 1250),
        (1250, 1500),
        (1500, 1750),
        (1750, 2001),
    ]
    assert split(rng(0, 300), 300) == (rng(0, 300),)  # exactly the limit: one chunk
    assert split(rng(0, 301), 300) == (rng(0, 150), rng(150, 301))


def test_tiny_empty_and_unchunked_ranges_stay_whole() -> None:
    assert split(rng(7, 7), 1) == (rng(7, 7),)
    assert split(rng(7, 8), 1) == (rng(7, 8),)
    assert split(rng(0, 10**9), None) == (rng(0, 10**9),)
    assert [p.size for p in split(rng(5, 10), 1)] == [1] * 5


def test_huge_ranges_cut_at_exact_integers() -> None:
    pieces = split(rng(MAX_OFFSET - 10**15, MAX_OFFSET), 10**12)
    assert len(pieces) == 1000 and pieces[-1].end == MAX_OFFSET
    assert {p.size for p in pieces} == {10**12}


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "100"])
def test_chunk_records_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="chunk_records must be an integer >= 1"):
        split(rng(0, 10), bad)  # type: ignore[arg-type]


@given(ranges(max_size=10**6), st.integers(min_value=1, max_value=10**6), st.lists(offsets))
def test_cuts_are_the_only_boundaries(whole: OffsetRange, size: int, cuts: list[int]) -> None:
    size = max(size, -(-whole.size // 2000))
    inner = sorted({whole.start + c % (whole.size + 1) for c in cuts})
    pieces = split(whole, size, inner)
    assert pieces[0].start == whole.start and pieces[-1].end == whole.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert all(p.start in inner or p.start == whole.start for p in pieces)
    for p in pieces:
        if p.size > size:  # only when no cut lies within reach: then the nearest one
            assert not any(p.start < c <= p.start + size for c in inner)


def test_cuts_join_recorded_writes_up_to_the_limit() -> None:
    got = split(rng(1000, 2001), 300, [1100, 1200, 1250, 1600, 1650, 1990])
    assert [(p.start, p.end) for p in got] == [
        (1000, 1250),
        (1250, 1600),  # no cut within 300 of 1250 but 1600: a write longer than the limit stays whole
        (1600, 1650),
        (1650, 1990),
        (1990, 2001),
    ]
    assert split(rng(0, 1000), 10, []) == (rng(0, 1000),)  # nowhere to cut: whole


def test_specs_keep_their_keys_and_name_their_place() -> None:
    unit = {**rng(0, 10, partition=2).to_dict(), "unit": "core", "interval": [1, 2], "ledger": "x"}
    small = rng(0, 3, partition=1).to_dict()
    specs = chunk_specs([small, unit], 4)
    assert specs[0] == small
    assert [s["start"] for s in specs[1:]] == [0, 3, 6]
    assert all(s["unit"] == "core" and s["ledger"] == "x" for s in specs[1:])
    assert specs[2]["chunk"] == {"index": 2, "count": 3, "start": 0, "end": 10}
    chunk = chunk_of(specs[2])
    assert chunk is not None and chunk.range == rng(3, 6, 2) and chunk.whole == rng(0, 10, 2)
    assert label(specs[2]) == "partition 2 chunk 2/3 [3, 6)"
    assert label(small) == "partition 1 [0, 3)"
    assert whole_range(specs[2]) == rng(0, 10, 2) and whole_range(small) == rng(0, 3, 1)
    assert chunk_of(small) is None


@given(st.lists(ranges(max_size=10**7), min_size=1, max_size=6), st.integers(min_value=1, max_value=10**7))
def test_the_commit_puts_the_chunks_back_together(wholes: list[OffsetRange], size: int) -> None:
    size = max(size, max(-(-r.size // 200) for r in wholes))
    plan = [OffsetRange(topic=TOPIC, partition=i, start=r.start, end=r.end) for i, r in enumerate(wholes)]
    specs = chunk_specs([r.to_dict() for r in plan], size)
    assert whole_ranges(specs) == plan
    assert whole_ranges(list(reversed(specs))) == list(reversed(plan))


def test_the_commit_refuses_chunks_that_do_not_tile_their_range() -> None:
    specs = chunk_specs([rng(0, 10).to_dict()], 4)
    with pytest.raises(ConfigurationError, match="do not cover it exactly"):
        whole_ranges(specs[:-1])
    with pytest.raises(ConfigurationError, match="two ranges for partition 0"):
        whole_ranges([*specs, rng(10, 20).to_dict()])
    bad = {**specs[0], "chunk": {"index": 1}}
    with pytest.raises(ConfigurationError, match="must hold index, count, start and end"):
        chunk_of(bad)
    outside = {**specs[0], "start": 11, "end": 12}
    with pytest.raises(ConfigurationError, match="does not lie inside"):
        chunk_of(outside)


def test_a_plan_beyond_airflows_max_map_length_is_refused_naming_the_chunk_size_that_fits() -> None:
    specs = [rng(0, 10_000, partition=p).to_dict() for p in range(4)]
    refused = r"into 400 load tasks, more than .*max_map_length \(100\).*at least 417"
    with pytest.raises(ConfigurationError, match=refused):
        chunk_specs(specs, 100, max_specs=100)
    assert len(chunk_specs(specs, 417, max_specs=100)) <= 100
    with pytest.raises(ConfigurationError, match="unset chunk_records"):
        chunk_specs(specs, 100, max_specs=4)
    with pytest.raises(ConfigurationError, match="more than 1000000 chunks"):
        split(rng(0, MAX_OFFSET), 1)


def test_specs_chosen_to_stay_whole_are_not_cut() -> None:
    zone = {**rng(0, 100).to_dict(), "unit": "zone"}
    core = {**rng(100, 1000).to_dict(), "unit": "core"}
    specs = chunk_specs([zone, core], 300, whole=lambda s: s["unit"] == "zone", max_specs=4)
    assert specs[0] == zone and [s["start"] for s in specs[1:]] == [100, 400, 700]
    with pytest.raises(ConfigurationError, match="into 4 load tasks"):
        chunk_specs([zone, core], 300, whole=lambda s: s["unit"] == "zone", max_specs=3)
