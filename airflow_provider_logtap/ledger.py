"""The plan ledger: plans that must be reproduced after a clear, kept in Airflow Variables.

XCom does not survive a clear, and an interval's ranges must not change once anything was written for it (see
:mod:`airflow_provider_logtap.core.intervals`). A plan is recorded under ``logtap/<dag_id>/<T1>/<T2>`` (JSON),
with two pointers, ``logtap/<dag_id>/by-start/<T1>`` and ``logtap/<dag_id>/by-end/<T2>``, so the intervals next
to one can be found. Deleting an interval's variables (Admin > Variables) makes its next run plan afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_logtap.compat import Variable
from airflow_provider_logtap.core.intervals import plan_interval
from airflow_provider_logtap.core.ranges import PartitionState, Plan

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

    def get(self, start_ms: int, end_ms: int) -> tuple[Plan, str] | None:
        """The plan recorded for ``[start, end)`` and the run that made it."""
        found = self._get(self._key(_stamp(start_ms), _stamp(end_ms)))
        return None if found is None else (Plan.from_dict(found["plan"]), str(found.get("run")))

    def before(self, start_ms: int) -> Plan | None:
        """The recorded plan of the interval ending where this one starts."""
        pointer = self._get(self._key("by-end", _stamp(start_ms)))
        found = None if pointer is None else self.get(int(pointer), start_ms)
        return None if found is None else found[0]

    def after(self, end_ms: int) -> Plan | None:
        """The recorded plan of the interval starting where this one ends."""
        pointer = self._get(self._key("by-start", _stamp(end_ms)))
        found = None if pointer is None else self.get(end_ms, int(pointer))
        return None if found is None else found[0]

    def save(self, start_ms: int, end_ms: int, plan: Plan, run: str) -> None:
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

    def plan_interval(
        self,
        *,
        topic: str,
        start_ms: int,
        end_ms: int,
        observe: Callable[[], list[PartitionState]],
        run: str,
        on_data_loss: str = "fail",
    ) -> tuple[Plan, str | None]:
        """The plan of ``[start, end)``: the recorded one (and who recorded it) if there is one, else a new one,
        chained to its recorded neighbours and recorded before it is returned (``None`` as its recorder)."""
        recorded = self.get(start_ms, end_ms)
        if recorded is not None:
            return recorded
        plan = plan_interval(
            topic=topic,
            states=observe(),
            before=self.before(start_ms),
            after=self.after(end_ms),
            on_data_loss=on_data_loss,
            planned_at_ms=int(time.time() * 1000),
        )
        self.save(start_ms, end_ms, plan, run)
        return plan, None
