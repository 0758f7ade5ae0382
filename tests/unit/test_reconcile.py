"""core.reconcile against a brute-force count of each offset's holders; the report's JSON and text."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap import holdings
from airflow_provider_logtap.core import reconcile
from airflow_provider_logtap.core.coverage import Span
from airflow_provider_logtap.core.reconcile import Reconciliation, TargetReport, check_partition
from airflow_provider_logtap.targets import TARGET_TYPES

spans_st = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 25)).map(lambda t: (t[0], t[0] + t[1])), max_size=8
)


def offsets(spans: tuple[Span, ...]) -> list[int]:
    return [o for s, e in spans for o in range(s, e)]


def joined(spans: tuple[Span, ...]) -> bool:
    """Sorted, non-empty, disjoint and not touching: compact ranges, never offset lists."""
    return all(s < e for s, e in spans) and all(a.end < b.start for a, b in itertools.pairwise(spans))


@given(
    spans_st,
    st.integers(0, 50),
    st.integers(0, 40),
    st.one_of(st.none(), st.integers(0, 90)),
    st.sampled_from([0, 0, 7, 30]),
)
def test_findings_are_each_offsets_holders_counted_one_by_one(
    held: list[tuple[int, int]], log_start: int, extra: int, committed: int | None, floor: int
) -> None:
    report = check_partition(
        partition=3,
        log_start=log_start,
        high_watermark=log_start + extra,
        committed=committed,
        held=held,
        floor=floor,
    )
    count = Counter(o for s, e in held for o in range(s, e))
    end = committed or 0
    assert offsets(report.missing) == [o for o in range(max(log_start, floor), end) if not count[o]]
    assert offsets(report.below_log_start) == [o for o in range(floor, min(log_start, end)) if not count[o]]
    assert offsets(report.doubled) == sorted(o for o, c in count.items() if c > 1)
    assert offsets(report.beyond) == sorted(o for o in count if o >= end)
    assert offsets(report.held) == sorted(count)
    assert report.held_offsets == len(count)
    for kind in reconcile.FINDINGS:
        assert joined(getattr(report, kind))
    assert report.gaps == bool(report.missing or report.doubled)
    again = reconcile.PartitionReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


@given(spans_st, st.integers(0, 50))
def test_a_tap_without_commits_is_checked_for_doubles_only(
    held: list[tuple[int, int]], log_start: int
) -> None:
    report = check_partition(
        partition=0, log_start=log_start, high_watermark=log_start, committed=None, held=held, expects=False
    )
    count = Counter(o for s, e in held for o in range(s, e))
    assert offsets(report.doubled) == sorted(o for o, c in count.items() if c > 1)
    assert report.missing == report.below_log_start == report.beyond == ()


def _target(tap: str, kind: str, *parts: reconcile.PartitionReport) -> TargetReport:
    return TargetReport(tap=tap, topic="weblogs", target_type=kind, where=f"{kind}://x", partitions=parts)


def test_the_text_has_one_line_per_finding_and_says_nothing_missing_when_healthy() -> None:
    healthy = _target(
        "arch",
        "s3_archive",
        check_partition(
            partition=0, log_start=0, high_watermark=900, committed=900, held=[(0, 500), (500, 900)]
        ),
        check_partition(partition=1, log_start=100, high_watermark=900, committed=800, held=[(0, 800)]),
    )
    sick = _target(
        "raw",
        "hdfs_raw",
        check_partition(
            partition=0,
            log_start=100,
            high_watermark=900,
            committed=800,
            held=[(50, 300), (400, 700), (600, 900)],
        ),
    )
    good = Reconciliation(targets=(healthy,))
    assert good.healthy and not good.gaps
    assert good.lines()[1:] == [
        "  nothing missing: 2 partitions hold each offset of [log start, committed) once (1,600 offsets), "
        "nothing doubled, nothing beyond",
        "reconcile: 1 targets checked, nothing missing, nothing doubled",
    ]
    both = Reconciliation(targets=(healthy, sick), errors={"search": "ConnectionError: refused"})
    lines = both.lines()
    assert lines[2:] == [
        "hdfs_raw tap raw (hdfs_raw://x), topic weblogs:",
        "  weblogs[0]: MISSING: [300, 400) (100 offsets)",
        "  weblogs[0]: MISSING BELOW LOG START 100 (gone from Kafka): [0, 50) (50 offsets)",
        "  weblogs[0]: DOUBLED: [600, 700) (100 offsets)",
        "  weblogs[0]: BEYOND the committed offset 800: [800, 900) (100 offsets)",
        "tap search: NOT CHECKED: ConnectionError: refused",
        "reconcile: 2 targets checked; missing or doubled offsets in raw; not checked: search",
    ]
    assert both.gaps and not both.healthy
    assert Reconciliation.from_dict(json.loads(json.dumps(both.to_dict()))) == both


def test_repairs_replay_exactly_the_missing_spans_from_the_source_that_has_them() -> None:
    part = check_partition(
        partition=2,
        log_start=100,
        high_watermark=900,
        committed=800,
        held=[(50, 300), (400, 700), (650, 800)],
    )
    raw = _target("raw", "hdfs_raw", part)
    todo, cannot = reconcile.repairs(raw, archive="arch")
    assert [(r.span, r.source, r.finding) for r in todo] == [
        (Span(300, 400), "auto", "missing"),
        (Span(0, 50), "auto", "below_log_start"),
    ]
    assert len(cannot) == 1 and "doubled [650, 700)" in cannot[0]
    todo, cannot = reconcile.repairs(raw, archive=None)
    assert [(r.span, r.source) for r in todo] == [(Span(300, 400), "kafka")]
    assert any("no s3_archive tap" in c for c in cannot)
    todo, cannot = reconcile.repairs(_target("arch", "s3_archive", part), archive="arch")
    assert [(r.span, r.source) for r in todo] == [(Span(300, 400), "kafka")]  # never from itself
    assert any("the archive itself" in c for c in cannot)


def test_a_partition_report_refuses_impossible_watermarks() -> None:
    with pytest.raises(ValueError, match="log_start <= high_watermark"):
        check_partition(partition=0, log_start=10, high_watermark=5, committed=None, held=[])


def test_every_target_type_has_a_collector() -> None:
    assert set(holdings.COLLECTORS) == set(TARGET_TYPES)


@given(st.lists(st.integers(0, 300), unique=True, max_size=60), st.integers(2, 7))
def test_the_search_drill_down_finds_every_held_offset_with_few_requests(
    held: list[int], fanout: int
) -> None:
    """index_spans against an in-memory index answering stats and range aggregations like the servers."""
    docs = set(held)

    class Index:
        requests = 0

        def search(self, index: str, body: dict) -> dict:  # type: ignore[type-arg]
            self.requests += 1
            aggs = body["aggs"]
            if "o" in aggs:
                return {
                    "aggregations": {
                        "o": {
                            "count": len(docs),
                            "min": min(docs, default=None),
                            "max": max(docs, default=None),
                        }
                    }
                }
            ranges = aggs["r"]["range"]["ranges"]
            buckets = [
                {"key": r["key"], "doc_count": sum(r["from"] <= d < r["to"] for d in docs)} for r in ranges
            ]
            return {"aggregations": {"r": {"buckets": buckets}}}

    index = Index()
    got = holdings.index_spans(index, "i", holdings.LIVE_FIELDS, "t", 0, fanout=fanout)  # type: ignore[arg-type]
    assert offsets(tuple(got)) == sorted(docs)
    assert joined(tuple(got))
    assert index.requests <= 12  # one per level of the drill-down (ranges batched), not one per offset


@given(spans_st)
def test_a_rewrite_extent_holds_every_span_it_touches_and_every_doubled_offset(
    held: list[tuple[int, int]],
) -> None:
    doubled = reconcile.coverage.doubled(held)
    extents = reconcile.rewrite_extent(held, doubled)
    assert joined(tuple(extents))
    assert set(offsets(tuple(doubled))) <= set(offsets(tuple(extents)))
    for s, e in held:
        for x in extents:
            if s < x.end and e > x.start and e > s:
                assert x.start <= s and e <= x.end  # a write of the extent replaces the whole span


def test_doubles_of_raw_targets_are_rewritten_over_their_objects_extent_and_search_doubles_are_not() -> None:
    objects = [(0, 500), (500, 1000), (700, 1200), (1000, 1500), (1500, 1800)]
    part = check_partition(partition=0, log_start=0, high_watermark=1800, committed=1800, held=objects)
    assert part.doubled == (Span(700, 1200),)
    todo, cannot = reconcile.repairs(_target("raw", "hdfs_raw", part), archive=None, spans={0: objects})
    assert [(r.span, r.source, r.finding) for r in todo] == [(Span(500, 1500), "kafka", "doubled")]
    assert cannot == []
    todo, cannot = reconcile.repairs(_target("s", "search", part), archive=None, spans={0: objects})
    assert todo == [] and "cannot remove" in cannot[0]
