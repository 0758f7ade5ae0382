"""core.coverage against a brute-force count of each offset's holders."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core import coverage
from airflow_provider_logtap.core.coverage import Piece, Span

spans_st = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 25)).map(lambda t: (t[0], t[0] + t[1])), max_size=8
)


def counts(spans: list[tuple[int, int]]) -> Counter[int]:
    return Counter(o for s, e in spans for o in range(s, e))


def offsets(spans: list[Span]) -> list[int]:
    return [o for s, e in spans for o in range(s, e)]


@given(spans_st, st.integers(0, 50), st.integers(0, 40))
def test_depths_tile_the_window_with_each_offsets_holders(
    spans: list[tuple[int, int]], lo: int, n: int
) -> None:
    hi = lo + n
    pieces = coverage.depths(spans, lo, hi)
    held = counts(spans)
    assert [o for p in pieces for o in range(p.start, p.end)] == list(range(lo, hi))
    for p in pieces:
        assert p.end > p.start
        assert all(held[o] == p.depth for o in range(p.start, p.end))
    for a, b in itertools.pairwise(pieces):
        assert a.depth != b.depth  # joined when equal
    assert offsets(coverage.missing(spans, lo, hi)) == [o for o in range(lo, hi) if held[o] == 0]
    assert offsets(coverage.doubled(spans, lo, hi)) == [o for o in range(lo, hi) if held[o] > 1]


@given(spans_st, st.integers(0, 90))
def test_union_beyond_and_doubled_over_the_spans_own_extent(spans: list[tuple[int, int]], end: int) -> None:
    held = counts(spans)
    assert offsets(coverage.union(spans)) == sorted(held)
    assert offsets(coverage.doubled(spans)) == sorted(o for o, c in held.items() if c > 1)
    assert offsets(coverage.beyond(spans, end)) == sorted(o for o in held if o >= end)
    for got in (coverage.union(spans), coverage.doubled(spans), coverage.beyond(spans, end)):
        assert all(a.end < b.start for a, b in itertools.pairwise(got))  # disjoint, not touching


def test_compact_writes_spans_and_their_total() -> None:
    assert coverage.compact([]) == "none"
    assert coverage.compact([(0, 10), (20, 25)]) == "[0, 10), [20, 25) (15 offsets)"
    assert (
        coverage.compact([(i, i + 1) for i in range(0, 10, 2)], limit=2)
        == "[0, 1), [2, 3) and 3 more spans (5 offsets)"
    )
    assert coverage.depths([(5, 5)]) == []
    assert coverage.depths([(3, 7)], 0, 10) == [Piece(0, 3, 0), Piece(3, 7, 1), Piece(7, 10, 0)]
