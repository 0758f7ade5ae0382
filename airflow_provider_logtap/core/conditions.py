"""When a load should start, decided from what a partition's offsets and timestamps say (pure).

- **Backlog** (group mode): the tap's lag reached ``min_records``, or its oldest unconsumed record is older than
  ``max_age``.
- **Completeness** (interval mode): every partition holds a record stamped at or after the interval end plus
  the allowed lateness — or has been idle (no new record) for ``idle_grace``, or is empty — so an interval is
  never loaded before its data can be complete, and idle partitions never hang it.
- **Retention risk**: unloaded records about to be deleted by the topic's retention: by time (the oldest unloaded
  record has used up most of ``retention.ms``), by size (few records between the group and the log start while
  ``retention.bytes`` is set), or deleted already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionLag:
    """A partition of a group: committed offset (``None``: none), log start, end, and the Kafka timestamp of
    the oldest unconsumed record (``None`` when there is none)."""

    partition: int
    committed: int | None
    log_start: int
    end: int
    oldest_unconsumed_ms: int | None = None

    @property
    def position(self) -> int:
        return self.log_start if self.committed is None else max(self.committed, self.log_start)

    @property
    def lag(self) -> int:
        return max(self.end - self.position, 0)


@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool
    reason: str
    details: dict[str, object]


def backlog(
    lags: Sequence[PartitionLag],
    *,
    now_ms: int,
    min_records: int | None = None,
    max_age_ms: int | None = None,
) -> Verdict:
    """Ready when the total lag reaches ``min_records`` or the oldest unconsumed record is older than
    ``max_age_ms`` (either may be ``None``; with both ``None`` any lag is enough)."""
    total = sum(p.lag for p in lags)
    oldest = min(
        (p.oldest_unconsumed_ms for p in lags if p.lag and p.oldest_unconsumed_ms is not None), default=None
    )
    age = None if oldest is None else max(now_ms - oldest, 0)
    details: dict[str, object] = {
        "lag": total,
        "per_partition": {str(p.partition): p.lag for p in lags},
        "oldest_age_ms": age,
    }
    if min_records is not None and total >= min_records:
        return Verdict(True, f"lag {total} >= {min_records} records", details)
    if max_age_ms is not None and age is not None and age >= max_age_ms:
        return Verdict(
            True,
            f"the oldest unconsumed record is {age / 1000:.0f}s old (>= {max_age_ms / 1000:.0f}s)",
            details,
        )
    if min_records is None and max_age_ms is None and total > 0:
        return Verdict(True, f"lag {total} records", details)
    wanted = (
        " or ".join(
            w
            for w in (
                f">= {min_records} records" if min_records is not None else "",
                f"a record older than {max_age_ms / 1000:.0f}s" if max_age_ms is not None else "",
            )
            if w
        )
        or "any lag"
    )
    return Verdict(
        False,
        f"lag {total} records, oldest {'-' if age is None else f'{age / 1000:.0f}s'}; waiting for {wanted}",
        details,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProgress:
    """Whether a partition holds a record at or after the wanted time, and when its last record was stamped."""

    partition: int
    has_record_at_or_after: bool
    empty: bool
    last_record_ms: int | None


def completeness(progress: Iterable[PartitionProgress], *, now_ms: int, idle_grace_ms: int | None) -> Verdict:
    """Ready when every partition is past the wanted time, empty, or idle for ``idle_grace_ms``."""
    waiting: dict[str, str] = {}
    states: dict[str, str] = {}
    for p in progress:
        if p.has_record_at_or_after:
            states[str(p.partition)] = "complete"
        elif p.empty:
            states[str(p.partition)] = "empty"
        elif (
            idle_grace_ms is not None
            and p.last_record_ms is not None
            and now_ms - p.last_record_ms >= idle_grace_ms
        ):
            states[str(p.partition)] = f"idle for {(now_ms - p.last_record_ms) / 1000:.0f}s"
        else:
            states[str(p.partition)] = waiting[str(p.partition)] = "waiting"
    if waiting:
        return Verdict(
            False,
            f"partitions {sorted(int(p) for p in waiting)} have no record at or after the interval end "
            "plus lateness yet, and are not idle",
            {"partitions": states},
        )
    return Verdict(True, "every partition is complete, empty or idle", {"partitions": states})


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """What a topic deletes by: ``retention.ms`` and ``retention.bytes`` (``None``: unlimited), and whether its
    ``cleanup.policy`` deletes at all (``compact`` alone never moves the log start by age or size)."""

    ms: int | None
    bytes: int | None
    deletes: bool = True


def retention_risk(
    lags: Sequence[PartitionLag],
    *,
    min_headroom: int,
    retention: Retention | None = None,
    now_ms: int = 0,
    max_share: float = 0.8,
) -> Verdict:
    """At risk when a partition's unloaded records were deleted already, or are about to be:

    - by time: the oldest unloaded record's age reached ``max_share`` of ``retention.ms``;
    - by size: they start within ``min_headroom`` records of the log start while ``retention.bytes`` is set.

    With ``retention`` unknown (``None``) the record headroom alone decides, whatever the topic deletes by.
    """
    risky: dict[str, str] = {}
    by_size = retention is None or (retention.deletes and retention.bytes is not None)
    limit_ms = None if retention is None or not retention.deletes else retention.ms
    for p in lags:
        if p.lag == 0:
            continue
        headroom = p.position - p.log_start
        if p.committed is not None and p.committed < p.log_start:
            risky[str(p.partition)] = f"offsets [{p.committed}, {p.log_start}) already deleted"
        elif (
            limit_ms
            and p.oldest_unconsumed_ms is not None
            and now_ms - p.oldest_unconsumed_ms >= max_share * limit_ms
        ):
            age = now_ms - p.oldest_unconsumed_ms
            risky[str(p.partition)] = (
                f"the oldest unloaded record is {age / 3_600_000:.1f} h old, {age / limit_ms:.0%} of retention.ms"
            )
        elif by_size and headroom < min_headroom:
            risky[str(p.partition)] = f"{headroom} records of headroom before the log start"
    if risky:
        return Verdict(
            True,
            f"retention risk on partitions {sorted(int(p) for p in risky)}: {risky}",
            {"partitions": risky},
        )
    return Verdict(False, "no unloaded record is close to being deleted by retention", {"partitions": {}})
