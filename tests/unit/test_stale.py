"""The one rule both archive sinks (S3, HDFS raw) apply to what earlier attempts left in a range."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.sinks.base import Stale, stale_objects


def rng(start: int, end: int) -> OffsetRange:
    return OffsetRange(topic="t", partition=0, start=start, end=end)


def test_earlier_cuts_in_the_range_are_removed_and_lost_ones_kept() -> None:
    found = [("a", 0), ("b", 70), ("c", 140), ("d", 210), ("e", 280), ("f", 500)]
    result = stale_objects(rng(70, 400), found, written={"c"}, lost=[rng(200, 250)])
    # "a" starts before the range and "f" after it: never touched. "c" was just written. "d" starts at an offset
    # lost to retention: kept (its records cannot be re-read).
    assert result == Stale(removed=("b", "e"), kept=("d",))


def test_nothing_found_nothing_stale() -> None:
    assert stale_objects(rng(0, 10), [], written=(), lost=()) == Stale()


offsets = st.integers(min_value=0, max_value=60)


@given(
    bounds=st.tuples(offsets, offsets).map(sorted),
    starts=st.lists(offsets, max_size=25),
    written_mask=st.lists(st.booleans(), min_size=25, max_size=25),
    lost_bounds=st.lists(st.tuples(offsets, offsets).map(sorted), max_size=3),
)
def test_every_found_object_is_removed_kept_or_left_alone_by_the_rule(
    bounds: list[int], starts: list[int], written_mask: list[bool], lost_bounds: list[list[int]]
) -> None:
    r = rng(*bounds)
    found = [(f"o{i}", s) for i, s in enumerate(starts)]
    written = {name for (name, _), w in zip(found, written_mask, strict=False) if w}
    lost = [rng(a, b) for a, b in lost_bounds]
    result = stale_objects(r, found, written, lost)
    for name, start in found:
        stale = r.start <= start < r.end and name not in written
        in_lost = any(g.start <= start < g.end for g in lost)
        assert (name in result.removed) == (stale and not in_lost)
        assert (name in result.kept) == (stale and in_lost)
    assert not set(result.removed) & set(result.kept)
    # In the order they were found (S3 lists keys in offset order; deletes go in that order).
    order = [n for n, _ in found]
    assert list(result.removed) == sorted(result.removed, key=order.index)
    assert list(result.kept) == sorted(result.kept, key=order.index)
