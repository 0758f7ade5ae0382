"""Which run owns a consumer group's next range: claims kept in Kafka's own offset-commit metadata.

In group mode every run plans from the group's committed offsets. The plan step commits the *unchanged*
offsets with metadata naming the run and its range (state ``planned``); the commit step moves them to the
range end (state ``committed``). A load or commit whose run no longer holds the claim — a newer run planned
the same offsets after this one failed — must not write or commit: the newer run's range covers it, and an
older, shorter write over the newer objects would lose or duplicate records. Kafka keeps the claim atomically
per partition, next to the offsets it guards, so no other store is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from airflow_provider_logtap.core.ranges import OffsetRange

State = Literal["planned", "committed"]
Action = Literal["write", "commit", "done", "superseded", "conflict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """``run`` planned (or committed) ``[start, end)`` of a partition for its group."""

    run: str
    start: int
    end: int
    state: State

    def encode(self) -> str:
        return json.dumps(
            {"logtap": 1, "run": self.run, "start": self.start, "end": self.end, "state": self.state},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, metadata: str | None) -> Claim | None:
        """The claim in a commit's metadata, or ``None`` when it holds none (or something else)."""
        if not metadata:
            return None
        try:
            data = json.loads(metadata)
            if not isinstance(data, dict) or data.get("logtap") != 1:
                return None
            state = data["state"]
            if state not in ("planned", "committed"):
                return None
            return cls(run=str(data["run"]), start=int(data["start"]), end=int(data["end"]), state=state)
        except (ValueError, KeyError, TypeError):
            return None

    def holds(self, run: str, rng: OffsetRange) -> bool:
        return self.run == run and self.start == rng.start and self.end == rng.end


def planned(run: str, rng: OffsetRange) -> Claim:
    return Claim(run=run, start=rng.start, end=rng.end, state="planned")


def committed(run: str, rng: OffsetRange) -> Claim:
    return Claim(run=run, start=rng.start, end=rng.end, state="committed")


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


def before_write(*, run: str, rng: OffsetRange, claim: Claim | None, offset: int | None) -> Decision:
    """May ``run`` write ``rng`` now? (``offset``: the group's committed offset of the partition.)"""
    if claim is None:
        return Decision("write", f"no logtap claim on the group's offset ({offset}); writing {rng}")
    if claim.holds(run, rng):
        return Decision("write", f"{run} holds the claim on {rng} ({claim.state})")
    return Decision(
        "superseded",
        f"{rng} of run {run} was superseded: run {claim.run} has since {claim.state} "
        f"[{claim.start}, {claim.end}); that run loads these offsets, so this one writes nothing",
    )


def before_commit(*, run: str, rng: OffsetRange, claim: Claim | None, offset: int | None) -> Decision:
    """What the commit step of ``run`` does for ``rng``."""
    if claim is not None and not claim.holds(run, rng):
        return Decision(
            "superseded",
            f"not committing {rng}: run {claim.run} has since {claim.state} [{claim.start}, {claim.end}) "
            "of this partition",
        )
    if claim is not None and claim.state == "committed":
        if offset == rng.end:
            return Decision("done", f"{rng} is already committed by this run")
    elif offset is None or offset == rng.start:
        return Decision("commit", f"committing {rng}: offset {offset} -> {rng.end}")
    elif claim is None and offset == rng.end:
        return Decision("done", f"{rng} is already committed")
    return Decision(
        "conflict",
        f"cannot commit {rng}: the group's committed offset is {offset}, neither the range start nor its "
        "end; someone moved it (kafka-consumer-groups.sh --reset-offsets?). Re-run the DAG to plan from it.",
    )
