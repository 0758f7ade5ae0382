from __future__ import annotations

from airflow_provider_logtap.core.conditions import (
    PartitionLag,
    PartitionProgress,
    backlog,
    completeness,
    retention_risk,
)

NOW = 1_000_000_000


def lag(p: int, committed: int | None, end: int, low: int = 0, oldest: int | None = None) -> PartitionLag:
    return PartitionLag(partition=p, committed=committed, log_start=low, end=end, oldest_unconsumed_ms=oldest)


def test_lag_counts_from_the_committed_offset_or_the_log_start() -> None:
    assert lag(0, 40, 100).lag == 60
    assert lag(0, None, 100, low=30).lag == 70
    assert lag(0, 10, 100, low=30).lag == 70  # retention already deleted 10..29
    assert lag(0, 100, 100).lag == 0


def test_backlog_by_records_or_by_age() -> None:
    lags = [lag(0, 90, 100, oldest=NOW - 5_000), lag(1, 50, 50)]
    assert not backlog(lags, now_ms=NOW, min_records=20).ready
    assert backlog(lags, now_ms=NOW, min_records=10).ready
    verdict = backlog(lags, now_ms=NOW, min_records=20, max_age_ms=4_000)
    assert verdict.ready and "5s old" in verdict.reason
    assert verdict.details["per_partition"] == {"0": 10, "1": 0}
    assert not backlog([lag(0, 5, 5)], now_ms=NOW).ready  # nothing to load at all
    assert backlog([lag(0, 4, 5)], now_ms=NOW).ready


def progress(p: int, done: bool = False, empty: bool = False, last: int | None = None) -> PartitionProgress:
    return PartitionProgress(partition=p, has_record_at_or_after=done, empty=empty, last_record_ms=last)


def test_completeness_waits_for_every_partition_but_not_for_idle_or_empty_ones() -> None:
    assert completeness(
        [progress(0, done=True), progress(1, empty=True)], now_ms=NOW, idle_grace_ms=60_000
    ).ready
    waiting = completeness(
        [progress(0, done=True), progress(1, last=NOW - 10_000)], now_ms=NOW, idle_grace_ms=60_000
    )
    assert not waiting.ready and "[1]" in waiting.reason
    idle = completeness(
        [progress(0, done=True), progress(1, last=NOW - 61_000)], now_ms=NOW, idle_grace_ms=60_000
    )
    assert idle.ready and idle.details["partitions"]["1"].startswith("idle for 61s")
    assert not completeness([progress(0, last=NOW - 10**9)], now_ms=NOW, idle_grace_ms=None).ready


def test_retention_risk() -> None:
    assert not retention_risk([lag(0, 500, 1000, low=100)], min_headroom=100).ready
    near = retention_risk([lag(0, 150, 1000, low=100)], min_headroom=100)
    assert near.ready and "50 records of headroom" in near.reason
    gone = retention_risk([lag(0, 50, 1000, low=100)], min_headroom=10)
    assert gone.ready and "[50, 100) already deleted" in gone.reason
    assert not retention_risk([lag(0, 100, 100, low=100)], min_headroom=10).ready  # nothing unloaded
