"""The plan ledger: plans that must be reproduced after a clear, kept in Airflow Variables.

XCom does not survive a clear, and an interval's units must not change once anything was written for them (see
:mod:`airflow_provider_logtap.core.intervals`). An interval's plan is recorded under
``logtap/<dag_id>/<T1>/<T2>`` (JSON), one variable per interval, and the ledger's *index* under
``logtap/<dag_id>/index`` (JSON): the planned intervals (``{T1 ms: T2 ms}``), the edges of their boundaries
(``{boundary ms: {partition: [x, y]}}``, so a new edge can be clamped between its recorded neighbours) and the
spans of plans deleted by the horizon. Edges are never recomputed: deleting an interval's plan variable makes
its next run plan it again over the same edges.

Growth is bounded by a *horizon* (``horizon_days``, default 90): when a plan is saved, the plans of intervals
that end more than the horizon before the newest planned end (or before now, if that end is in the future)
are deleted, and with them the edges of their
boundaries, except where a kept interval or an unplanned neighbour still needs one. The deleted intervals are
kept as coalesced spans (one per unbroken run of planned intervals): a zone loaded next to them still keeps
their records (they count as planned), and planning an interval inside a span, or ending before the horizon,
is refused (its edges are gone; new ones would split offsets its neighbours already wrote): reload such data
with the logtap_replay DAG, or keep a longer horizon.

Plans recorded in the old layout (the plan plus ``by-start/<T1>`` and ``by-end/<T2>`` pointers, and one
``edges`` variable) are still read; the first plan saved in the new layout moves the old pointers and edges
into the index and deletes them. Replays record their plans under ``logtap/<dag_id>/run/<run_id>``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow_provider_logtap.compat import Variable, variable_get
from airflow_provider_logtap.core.intervals import (
    CORE,
    WINDOW,
    Edge,
    IntervalPlan,
    TimestampSource,
    Unit,
    edges_of,
    plan_units,
)
from airflow_provider_logtap.core.ranges import PartitionState, Plan
from airflow_provider_logtap.errors import ConfigurationError

PREFIX = "logtap"
#: Plans of intervals ending more than this many days before the newest planned end are deleted.
DEFAULT_HORIZON_DAYS = 90
DAY_MS = 86_400_000
INDEX_LAYOUT = 2


def _stamp(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        .strftime("%Y%m%dT%H%M%S.%fZ")
        .replace(".000000Z", "Z")
    )


def check_horizon(days: Any, name: str = "ledger_horizon_days") -> float | None:
    """``days`` if it is a number of days above 0 (or ``None``: keep every plan), else the error."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days) or days <= 0:
        raise ConfigurationError(
            f"{name} must be a number of days above 0 (or null to keep every plan). Got {days!r}"
        )
    return float(days)


class _Store(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: str, description: str) -> None: ...

    def delete(self, key: str) -> None: ...


class _Variables:
    """Airflow Variables (the ledger's store inside a task; a task deletes through the Task SDK on Airflow 3)."""

    def get(self, key: str, default: Any = None) -> Any:
        return variable_get(key, default)

    def set(self, key: str, value: str, description: str) -> None:
        Variable.set(key, value, description=description)

    def delete(self, key: str) -> None:
        Variable.delete(key)


class _Mapping:
    """A mutable mapping as a store (tests, tools)."""

    def __init__(self, mapping: MutableMapping[str, str]) -> None:
        self.mapping = mapping

    def get(self, key: str, default: Any = None) -> Any:
        return self.mapping.get(key, default)

    def set(self, key: str, value: str, description: str) -> None:
        self.mapping[key] = value

    def delete(self, key: str) -> None:
        self.mapping.pop(key, None)


class _DryRun:
    """Reads ``base``, keeps every write and delete in memory (``airflow tasks test``: nothing recorded)."""

    def __init__(self, base: _Store) -> None:
        self.base = base
        self.written: dict[str, str | None] = {}

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.written:
            value = self.written[key]
            return default if value is None else value
        return self.base.get(key, default)

    def set(self, key: str, value: str, description: str) -> None:
        self.written[key] = value

    def delete(self, key: str) -> None:
        self.written[key] = None


@dataclass
class _Index:
    """What the ledger knows beyond single plans: planned intervals, edges, spans of deleted plans."""

    intervals: dict[int, int] = field(default_factory=dict)
    edges: dict[int, dict[int, Edge]] = field(default_factory=dict)
    pruned: list[tuple[int, int]] = field(default_factory=list)
    #: Old-layout variables (pointers, the edges variable) to delete once the index is written.
    legacy_keys: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "layout": INDEX_LAYOUT,
                "intervals": [[s, e] for s, e in sorted(self.intervals.items())],
                "edges": {
                    str(t): {str(p): list(e) for p, e in sorted(parts.items())}
                    for t, parts in sorted(self.edges.items())
                },
                "pruned": [list(span) for span in self.pruned],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Index:
        return cls(
            intervals={int(s): int(e) for s, e in data.get("intervals", ())},
            edges=_edges_from(data.get("edges", {})),
            pruned=[(int(s), int(e)) for s, e in data.get("pruned", ())],
        )

    def newest_end(self) -> int | None:
        return max(self.intervals.values(), default=None)

    def ending_at(self, boundary_ms: int) -> int | None:
        """The start of the planned interval ending at ``boundary_ms``."""
        return next((s for s, e in self.intervals.items() if e == boundary_ms), None)

    def planned_ending_at(self, boundary_ms: int) -> bool:
        return self.ending_at(boundary_ms) is not None or any(s < boundary_ms <= e for s, e in self.pruned)

    def planned_starting_at(self, boundary_ms: int) -> bool:
        return boundary_ms in self.intervals or any(s <= boundary_ms < e for s, e in self.pruned)

    def add_pruned(self, start_ms: int, end_ms: int) -> None:
        spans = sorted([*self.pruned, (start_ms, end_ms)])
        merged: list[tuple[int, int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.pruned = merged


def _edges_from(raw: dict[str, Any]) -> dict[int, dict[int, Edge]]:
    return {int(t): {int(p): (int(e[0]), int(e[1])) for p, e in parts.items()} for t, parts in raw.items()}


class PlanLedger:
    """The recorded plans of one DAG.

    :param dag_id: whose plans.
    :param store: where they are kept: Airflow Variables (default), or any mutable mapping (tests, tools).
    :param horizon_days: plans of intervals ending more than this many days before the newest planned end are
        deleted when a plan is saved (``None``: never).
    :param dry_run: read the store but keep every write in memory (``airflow tasks test``).
    """

    def __init__(
        self,
        dag_id: str,
        store: MutableMapping[str, str] | None = None,
        *,
        horizon_days: float | None = DEFAULT_HORIZON_DAYS,
        dry_run: bool = False,
    ) -> None:
        self.dag_id = dag_id
        self.store = store
        days = check_horizon(horizon_days)
        self.horizon_ms = None if days is None else int(days * DAY_MS)
        base: _Store = _Variables() if store is None else _Mapping(store)
        self._store: _Store = _DryRun(base) if dry_run else base

    def _set(self, key: str, value: str, description: str) -> None:
        self._store.set(key, value, description)

    def _delete(self, key: str) -> None:
        self._store.delete(key)

    def _key(self, *parts: str) -> str:
        return "/".join((PREFIX, self.dag_id, *parts))

    def _get(self, key: str) -> Any:
        value = self._store.get(key)
        return None if value is None else json.loads(value)

    def _plan_key(self, start_ms: int, end_ms: int) -> str:
        return self._key(_stamp(start_ms), _stamp(end_ms))

    @property
    def index_key(self) -> str:
        return self._key("index")

    def get(self, start_ms: int, end_ms: int) -> tuple[IntervalPlan, str] | None:
        """The plan recorded for ``[start, end)`` and the run that made it (a plan recorded by logtap before
        zones existed becomes one core per partition: its offsets are reloaded unchanged)."""
        found = self._get(self._plan_key(start_ms, end_ms))
        if found is None:
            return None
        data = found["plan"]
        if "units" in data:
            return IntervalPlan.from_dict(data), str(found.get("run"))
        legacy = Plan.from_dict(data)
        units = tuple(Unit(range=r, kind=CORE) for r in legacy.ranges)
        plan = IntervalPlan(
            topic=legacy.topic,
            start_ms=start_ms,
            end_ms=end_ms,
            units=units,
            lost=legacy.lost,
            planned_at_ms=legacy.planned_at_ms,
        )
        return plan, str(found.get("run"))

    def index(self) -> _Index:
        """The index; before the first plan in this layout, built from the old layout's edges and pointers."""
        found = self._get(self.index_key)
        if found is not None:
            return _Index.from_dict(found)
        edges_key = self._key("edges")
        raw = self._get(edges_key)
        index = _Index(edges=_edges_from(raw or {}))
        if raw is not None:
            index.legacy_keys.append(edges_key)
        for boundary in sorted(index.edges):
            for which in ("by-start", "by-end"):
                key = self._key(which, _stamp(boundary))
                pointer = self._get(key)
                if pointer is None:
                    continue
                start, end = (boundary, int(pointer)) if which == "by-start" else (int(pointer), boundary)
                index.intervals[start] = end
                index.legacy_keys += [self._key("by-start", _stamp(start)), self._key("by-end", _stamp(end))]
        index.legacy_keys = list(dict.fromkeys(index.legacy_keys))
        return index

    def _planned(self, boundary_ms: int, which: str) -> bool:
        found = self._get(self.index_key)
        if found is not None:
            index = _Index.from_dict(found)
            if (index.planned_ending_at if which == "by-end" else index.planned_starting_at)(boundary_ms):
                return True
        # The old layout's pointer (a plan recorded before the index, not yet moved into it).
        return self._get(self._key(which, _stamp(boundary_ms))) is not None

    def planned_ending_at(self, boundary_ms: int) -> bool:
        """Whether the interval ending at ``boundary_ms`` has a recorded plan (or had one, deleted by the
        horizon)."""
        return self._planned(boundary_ms, "by-end")

    def planned_starting_at(self, boundary_ms: int) -> bool:
        """Whether the interval starting at ``boundary_ms`` has a recorded plan (or had one, deleted by the
        horizon)."""
        return self._planned(boundary_ms, "by-start")

    def _neighbour(self, index: _Index, boundary_ms: int, which: str) -> IntervalPlan | None:
        if which == "by-end":
            start = index.ending_at(boundary_ms)
            span = None if start is None else (start, boundary_ms)
        else:
            end = index.intervals.get(boundary_ms)
            span = None if end is None else (boundary_ms, end)
        if span is None:
            pointer = self._get(self._key(which, _stamp(boundary_ms)))
            if pointer is None:
                return None
            span = (int(pointer), boundary_ms) if which == "by-end" else (boundary_ms, int(pointer))
        found = self.get(*span)
        return None if found is None else found[0]

    def edges(self) -> dict[int, dict[int, Edge]]:
        """Every recorded edge: ``{boundary ms: {partition: (x, y)}}``."""
        return self.index().edges

    def _write_index(self, index: _Index) -> None:
        self._set(
            self.index_key,
            index.to_json(),
            f"logtap plan index of {self.dag_id}: planned intervals and their edges (never edit: every "
            "interval's offsets depend on them)",
        )
        for key in index.legacy_keys:
            self._delete(key)
        index.legacy_keys = []

    def save(self, start_ms: int, end_ms: int, plan: IntervalPlan, run: str) -> None:
        """Record the plan of ``[start, end)``, then delete what the horizon no longer keeps."""
        self._save(self.index(), start_ms, end_ms, plan, run)

    def _save(self, index: _Index, start_ms: int, end_ms: int, plan: IntervalPlan, run: str) -> None:
        self._set(
            self._plan_key(start_ms, end_ms),
            json.dumps({"plan": plan.to_dict(), "run": run, "start_ms": start_ms, "end_ms": end_ms}),
            f"logtap plan of {self.dag_id} for [{_stamp(start_ms)}, {_stamp(end_ms)})",
        )
        index.intervals[start_ms] = end_ms
        # The edges are already there when the ledger planned it; a plan saved from elsewhere adds its own.
        for unit in plan.units:
            if unit.boundary_ms is not None:
                edges = index.edges.setdefault(unit.boundary_ms, {})
                edges.setdefault(unit.range.partition, (unit.range.start, unit.range.end))
        expired = self._expire(index)
        self._write_index(index)
        for s, e in expired:
            self._delete(self._plan_key(s, e))

    def _cutoff(self, index: _Index) -> int | None:
        """Intervals ending before this are beyond the horizon: it counts back from the newest planned end, or
        from now if that lies in the future (a plan of a future interval must not expire the present ones)."""
        newest = index.newest_end()
        if self.horizon_ms is None or newest is None:
            return None
        return min(newest, int(time.time() * 1000)) - self.horizon_ms

    def _expire(self, index: _Index) -> list[tuple[int, int]]:
        """Move the intervals beyond the horizon into the pruned spans, drop the edges nothing needs; returns
        the intervals whose plan variables are to be deleted."""
        cutoff = self._cutoff(index)
        if cutoff is None or self.horizon_ms is None:
            return []
        expired = sorted((s, e) for s, e in index.intervals.items() if e < cutoff)
        for s, e in expired:
            del index.intervals[s]
            index.add_pruned(s, e)
        # A span far behind the horizon can no longer touch an interval that may be planned.
        index.pruned = [(s, e) for s, e in index.pruned if e >= cutoff - self.horizon_ms]
        needed = {t for span in (*index.intervals.items(), *index.pruned) for t in span}
        index.edges = {t: e for t, e in index.edges.items() if t >= cutoff or t in needed}
        return expired

    def get_run(self, run_id: str) -> Plan | None:
        """The plan a run recorded (a replay cleared after its XCom was cleared re-reads the same offsets)."""
        found = self._get(self._key("run", run_id))
        return None if found is None else Plan.from_dict(found["plan"])

    def save_run(self, run_id: str, plan: Plan) -> None:
        self._set(
            self._key("run", run_id),
            json.dumps({"plan": plan.to_dict(), "run": run_id}),
            f"logtap plan of {self.dag_id} run {run_id}",
        )

    def replay_target_key(self, tap: str, where: str) -> str:
        """The variable recording what a replay's new target ``where`` of ``tap`` holds."""
        return self._key("replay-target", tap, where.lower())

    def replay_target(self, tap: str, where: str) -> dict[str, Any] | None:
        """``{"run", "topic", "ranges": [[partition, start, end], ...]}`` of the replay written into ``where``."""
        found = self._get(self.replay_target_key(tap, where))
        return None if found is None else dict(found)

    def save_replay_target(
        self, tap: str, where: str, *, run: str, topic: str, ranges: list[list[int]]
    ) -> None:
        self._set(
            self.replay_target_key(tap, where),
            json.dumps({"run": run, "topic": topic, "ranges": ranges}),
            f"logtap: the range replay run {run} wrote into {where}",
        )

    def plan_interval(
        self,
        *,
        topic: str,
        start_ms: int,
        end_ms: int,
        observe: Callable[[], list[PartitionState]],
        source: TimestampSource,
        run: str,
        max_disorder_ms: int = 0,
        on_data_loss: str = "fail",
        window: int = WINDOW,
    ) -> tuple[IntervalPlan, str | None]:
        """The plan of ``[start, end)``: the recorded one (and who recorded it) if there is one, else a new one
        over the recorded edges of its boundaries (computed now, from ``source``, where missing), recorded before
        it is returned (``None`` as its recorder).

        ``observe()`` gives each partition's log start and high-water mark; its ``start_at_timestamp`` /
        ``end_at_timestamp``, when set, are ``offsetsForTimes(T - max_disorder)`` of the two boundaries (lower
        bounds of the edges' search).
        """
        recorded = self.get(start_ms, end_ms)
        if recorded is not None:
            return recorded
        index = self.index()
        self._check_not_expired(index, start_ms, end_ms)
        states = observe()
        edges = index.edges
        inside = sorted(t for t in edges if start_ms < t < end_ms)
        if inside:
            raise ConfigurationError(
                f"the interval [{_stamp(start_ms)}, {_stamp(end_ms)}) contains the recorded interval boundary "
                f"{_stamp(inside[0])}: the schedule changed since intervals were loaded. Keep the schedule of a "
                "tap in interval mode (or give the new schedule a new tap name, which starts a new ledger)."
            )
        changed = False
        for boundary, bounds in (
            (start_ms, {s.partition: s.start_at_timestamp for s in states}),
            (end_ms, {s.partition: s.end_at_timestamp for s in states}),
        ):
            known = edges.get(boundary, {})
            missing = [s for s in states if s.partition not in known]
            if not missing:
                continue
            if boundary not in edges:
                self._check_outside_planned(index, boundary)
            adopted = self._legacy_edges(index, boundary)
            new = {p: e for p, e in adopted.items() if p not in known}
            rest = [s for s in missing if s.partition not in new]
            if rest:
                new.update(
                    edges_of(
                        source,
                        boundary_ms=boundary,
                        states=rest,
                        recorded=edges,
                        max_disorder_ms=max_disorder_ms,
                        lower_bounds=bounds,
                        window=window,
                    )
                )
            edges[boundary] = {**known, **new}
            changed = True
        if changed:  # before the plan: an edge is recorded once, even if planning fails (data loss) below
            self._write_index(index)
        plan = plan_units(
            topic=topic,
            start_ms=start_ms,
            end_ms=end_ms,
            states=states,
            start_edges=edges[start_ms],
            end_edges=edges[end_ms],
            on_data_loss=on_data_loss,
            max_disorder_ms=max_disorder_ms,
            planned_at_ms=int(time.time() * 1000),
        )
        self._save(index, start_ms, end_ms, plan, run)
        return plan, None

    def _check_not_expired(self, index: _Index, start_ms: int, end_ms: int) -> None:
        """An interval whose plan the horizon deleted, or older than the horizon, is not planned (again)."""
        where = f"[{_stamp(start_ms)}, {_stamp(end_ms)})"
        for s, e in index.pruned:
            if start_ms < e and s < end_ms:
                raise ConfigurationError(
                    f"the plan of {where} was deleted by the ledger's horizon (the plans of [{_stamp(s)}, "
                    f"{_stamp(e)}) are gone, and the edges of their boundaries): planning it again could split "
                    "offsets its neighbours already wrote. Reload such data with the logtap_replay DAG (a "
                    "partition rebuild or a range into a new target), or keep plans longer (ledger_horizon_days)."
                )
        cutoff = self._cutoff(index)
        if cutoff is not None and self.horizon_ms is not None and end_ms < cutoff:
            raise ConfigurationError(
                f"the interval {where} ends more than the ledger's horizon ({self.horizon_ms / DAY_MS:g} days) "
                f"before the newest planned interval (up to {_stamp(cutoff + self.horizon_ms)}): its plan would "
                "not be kept. Load it with the logtap_replay DAG, or keep plans longer (ledger_horizon_days)."
            )

    def _check_outside_planned(self, index: _Index, boundary: int) -> None:
        """A new boundary must not fall inside a planned interval (a changed schedule)."""
        for s, e in sorted([*index.intervals.items(), *index.pruned]):
            if s < boundary < e:
                raise ConfigurationError(
                    f"the interval boundary {_stamp(boundary)} lies inside the planned interval "
                    f"[{_stamp(s)}, {_stamp(e)}): the schedule changed since intervals were loaded. Keep the "
                    "schedule of a tap in interval mode (or give the new schedule a new tap name)."
                )

    def _legacy_edges(self, index: _Index, boundary: int) -> dict[int, Edge]:
        """Zero-width edges where a plan recorded before zones existed ends or starts at ``boundary``."""
        out: dict[int, Edge] = {}
        for which in ("by-end", "by-start"):
            plan = self._neighbour(index, boundary, which)
            if plan is None or plan.max_disorder_ms or any(u.kind != CORE for u in plan.units):
                continue
            for u in plan.units:
                offset = u.range.end if which == "by-end" else u.range.start
                out.setdefault(u.range.partition, (offset, offset))
        return out
