from __future__ import annotations

from airflow_provider_logtap.core.conditions import (
    PartitionLag,
    PartitionProgress,
    Retention,
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


HOUR = 3_600_000


def test_retention_risk_by_time_uses_the_oldest_unloaded_records_share_of_retention_ms() -> None:
    week = Retention(ms=168 * HOUR, bytes=None)
    fresh = [lag(0, 0, 1000, oldest=NOW - HOUR)]  # at the log start, but an hour into a week of retention
    assert not retention_risk(fresh, min_headroom=100, retention=week, now_ms=NOW).ready
    old = [lag(0, 0, 1000, oldest=NOW - 140 * HOUR)]
    verdict = retention_risk(old, min_headroom=100, retention=week, now_ms=NOW)
    assert verdict.ready and "140.0 h old, 83% of retention.ms" in verdict.reason
    assert not retention_risk(old, min_headroom=100, retention=week, now_ms=NOW, max_share=0.9).ready


def test_retention_risk_by_size_only_where_retention_bytes_is_set() -> None:
    near = [lag(0, 150, 1000, low=100, oldest=NOW)]
    by_size = Retention(ms=None, bytes=10**9)
    assert retention_risk(near, min_headroom=100, retention=by_size, now_ms=NOW).ready
    assert not retention_risk(
        near, min_headroom=100, retention=Retention(ms=None, bytes=None), now_ms=NOW
    ).ready


def test_compacted_topics_and_deleted_offsets() -> None:
    compacted = Retention(ms=HOUR, bytes=10**9, deletes=False)
    old_near = [lag(0, 150, 1000, low=100, oldest=NOW - 10 * HOUR)]
    assert not retention_risk(old_near, min_headroom=100, retention=compacted, now_ms=NOW).ready
    gone = retention_risk([lag(0, 50, 1000, low=100)], min_headroom=1, retention=compacted, now_ms=NOW)
    assert gone.ready and "[50, 100) already deleted" in gone.reason
