"""Progress lines of a read: the first early, then every ``interval`` (a fake clock: core.progress is pure)."""

from __future__ import annotations

import pytest

from airflow_provider_logtap.core.progress import Progress
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RNG = OffsetRange(topic="weblogs", partition=0, start=0, end=10_000)


def test_the_first_progress_line_comes_with_the_first_batch_a_second_into_the_read() -> None:
    clock = Clock()
    progress = Progress(rng=RNG, interval=15, clock=clock)
    clock.now += 0.4
    assert progress.update(100, 1000, 100) is None  # the first batch, 0.4 s in: too early
    clock.now += 0.7
    first = progress.update(100, 1000, 200)  # 1.1 s in
    assert first is not None and "200 records" in first and "at offset 200" in first
    clock.now += 14
    assert progress.update(100, 1000, 300) is None
    clock.now += 1.1
    assert progress.update(100, 1000, 400) is not None  # 15 s after the first line


def test_the_progress_interval_is_a_parameter() -> None:
    clock = Clock()
    progress = Progress(rng=RNG, interval=2, clock=clock)
    due = []
    for _ in range(20):
        clock.now += 0.5
        due.append(progress.update(1, 1, 1) is not None)
    assert [i for i, d in enumerate(due) if d] == [1, 5, 9, 13, 17]  # at 1 s, then every 2 s
    short = Progress(rng=RNG, interval=0.5, clock=clock)
    clock.now += 0.5
    assert short.update(1, 1, 1) is not None  # an interval under 1 s: the first line at the interval
    with pytest.raises(ConfigurationError, match="progress_seconds must be > 0"):
        Progress(rng=RNG, interval=0, clock=clock)
