"""The plan ledger: plans that must be reproduced after a clear, kept in Airflow Variables.

XCom does not survive a clear, and an interval's units must not change once anything was written for them (see
:mod:`airflow_provider_logtap.core.intervals`). An interval's plan is recorded under
``logtap/<dag_id>/<T1>/<T2>`` (JSON), with two pointers, ``logtap/<dag_id>/by-start/<T1>`` and
``logtap/<dag_id>/by-end/<T2>``, so the intervals next to a boundary can be found (a zone's load asks whether
they are planned). The edges of every boundary are kept in one variable, ``logtap/<dag_id>/edges`` (JSON,
``{boundary ms: {partition: [x, y]}}``), so a new edge can be clamped between its recorded neighbours. Edges are
never recomputed: deleting an interval's plan variables makes its next run plan it again over the same edges.
Replays record their plans under ``logtap/<dag_id>/run/<run_id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_logtap.compat import Variable
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


def _stamp(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        .strftime("%Y%m%dT%H%M%S.%fZ")
        .replace(".000000Z", "Z")
    )


class _Variables:
    """Airflow Variables as a mapping (the ledger's store inside a task)."""

    def get(self, key: str, default: Any = None) -> Any:
        return Variable.get(key, default=default)

    def set(self, key: str, value: str, description: str) -> None:
        Variable.set(key, value, description=description)


class PlanLedger:
    """The recorded plans of one DAG.

    :param dag_id: whose plans.
    :param store: where they are kept: Airflow Variables (default), or any mutable mapping (tests, tools).
    """

    def __init__(self, dag_id: str, store: MutableMapping[str, str] | None = None) -> None:
        self.dag_id = dag_id
        self.store = store

    def _set(self, key: str, value: str, description: str) -> None:
        if self.store is None:
            _Variables().set(key, value, description)
        else:
            self.store[key] = value

    def _key(self, *parts: str) -> str:
        return "/".join((PREFIX, self.dag_id, *parts))

    def _get(self, key: str) -> Any:
        value = _Variables().get(key) if self.store is None else self.store.get(key)
        return None if value is None else json.loads(value)

    def get(self, start_ms: int, end_ms: int) -> tuple[IntervalPlan, str] | None:
        """The plan recorded for ``[start, end)`` and the run that made it (a plan recorded by logtap before
        zones existed becomes one core per partition: its offsets are reloaded unchanged)."""
        found = self._get(self._key(_stamp(start_ms), _stamp(end_ms)))
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

    def planned_ending_at(self, boundary_ms: int) -> bool:
        """Whether the interval ending at ``boundary_ms`` has a recorded plan."""
        return self._get(self._key("by-end", _stamp(boundary_ms))) is not None

    def planned_starting_at(self, boundary_ms: int) -> bool:
        """Whether the interval starting at ``boundary_ms`` has a recorded plan."""
        return self._get(self._key("by-start", _stamp(boundary_ms))) is not None

    def _neighbour(self, boundary_ms: int, which: str) -> IntervalPlan | None:
        pointer = self._get(self._key(which, _stamp(boundary_ms)))
        if pointer is None:
            return None
        span = (int(pointer), boundary_ms) if which == "by-end" else (boundary_ms, int(pointer))
        found = self.get(*span)
        return None if found is None else found[0]

    def edges(self) -> dict[int, dict[int, Edge]]:
        """Every recorded edge: ``{boundary ms: {partition: (x, y)}}``."""
        raw = self._get(self._key("edges")) or {}
        return {
            int(t): {int(p): (int(e[0]), int(e[1])) for p, e in parts.items()} for t, parts in raw.items()
        }

    def save_edges(self, edges: dict[int, dict[int, Edge]]) -> None:
        self._set(
            self._key("edges"),
            json.dumps(
                {
                    str(t): {str(p): list(e) for p, e in sorted(parts.items())}
                    for t, parts in sorted(edges.items())
                }
            ),
            f"logtap interval edges of {self.dag_id} (never edit: every interval's offsets depend on them)",
        )

    def save(self, start_ms: int, end_ms: int, plan: IntervalPlan, run: str) -> None:
        description = f"logtap plan of {self.dag_id} for [{_stamp(start_ms)}, {_stamp(end_ms)})"
        self._set(
            self._key(_stamp(start_ms), _stamp(end_ms)),
            json.dumps({"plan": plan.to_dict(), "run": run, "start_ms": start_ms, "end_ms": end_ms}),
            description,
        )
        self._set(self._key("by-start", _stamp(start_ms)), json.dumps(end_ms), description)
        self._set(self._key("by-end", _stamp(end_ms)), json.dumps(start_ms), description)

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
        states = observe()
        edges = self.edges()
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
                self._check_outside_planned(edges, boundary)
            adopted = self._legacy_edges(boundary)
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
        if changed:
            self.save_edges(edges)
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
        self.save(start_ms, end_ms, plan, run)
        return plan, None

    def _check_outside_planned(self, edges: dict[int, dict[int, Edge]], boundary: int) -> None:
        """A new boundary must not fall inside a planned interval (a changed schedule)."""
        before = [t for t in edges if t < boundary]
        after = [t for t in edges if t > boundary]
        if not before or not after:
            return
        pointer = self._get(self._key("by-start", _stamp(max(before))))
        if pointer is not None and int(pointer) >= min(after):
            raise ConfigurationError(
                f"the interval boundary {_stamp(boundary)} lies inside the planned interval "
                f"[{_stamp(max(before))}, {_stamp(int(pointer))}): the schedule changed since intervals were "
                "loaded. Keep the schedule of a tap in interval mode (or give the new schedule a new tap name)."
            )

    def _legacy_edges(self, boundary: int) -> dict[int, Edge]:
        """Zero-width edges where a plan recorded before zones existed ends or starts at ``boundary``."""
        out: dict[int, Edge] = {}
        for which in ("by-end", "by-start"):
            plan = self._neighbour(boundary, which)
            if plan is None or plan.max_disorder_ms or any(u.kind != CORE for u in plan.units):
                continue
            for u in plan.units:
                offset = u.range.end if which == "by-end" else u.range.start
                out.setdefault(u.range.partition, (offset, offset))
        return out
