"""Progress of a long read, as task-log lines: records, bytes, rate, remaining offsets, ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError

# The first progress line of a read comes with the first batch at least this many seconds into it (or at the
# interval, if shorter), so that a short read shows how it goes too; then one every ``interval``.
FIRST_LINE_AFTER = 1.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass
class Progress:
    """Counts what a read of ``rng`` has delivered; :meth:`update` returns a line when one is due: with the
    first update at least ``first_after`` seconds after the start (at most ``interval``), then with the first
    update ``interval`` seconds after the last line."""

    rng: OffsetRange
    interval: float = 15.0
    first_after: float = FIRST_LINE_AFTER
    clock: Callable[[], float] = time.monotonic
    records: int = 0
    nbytes: int = 0
    position: int = -1
    started: float = field(default=-1.0)
    _next_report: float = field(default=-1.0)

    def __post_init__(self) -> None:
        self.started = self.clock()
        if self.interval <= 0:
            raise ConfigurationError(f"progress_seconds must be > 0. Got {self.interval!r}")
        self._next_report = self.started + min(self.first_after, self.interval)
        self.position = self.rng.start

    def update(self, records: int, nbytes: int, position: int) -> str | None:
        self.records += records
        self.nbytes += nbytes
        self.position = position
        now = self.clock()
        if now < self._next_report:
            return None
        self._next_report = now + self.interval
        return self.line(now)

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.records / elapsed
        remaining = max(self.rng.end - self.position, 0)
        done = 100.0 if self.rng.empty else 100.0 * (self.position - self.rng.start) / self.rng.size
        eta = f"{remaining / rate:.0f}s" if rate > 0 else "?"
        return (
            f"{self.rng}: {self.records} records, {human_bytes(self.nbytes)} read in {elapsed:.1f}s "
            f"({rate:,.0f} records/s, {human_bytes(self.nbytes / elapsed)}/s); at offset {self.position}, "
            f"{done:.1f}% done, {remaining} offsets remaining (lag to range end), ETA {eta}"
        )
