"""Driving a running Airflow like a user does: the REST API (as the UI), and the ``airflow`` CLI."""

from __future__ import annotations

import time
import urllib.error
from typing import Any

from airflow_env import AirflowEnv


def wait_for_dag(airflow: AirflowEnv, dag_id: str, timeout: float = 120) -> None:
    """Until the DAG processor has parsed ``dag_id`` (after a taps file change)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            airflow.api("GET", f"/dags/{dag_id}")
            return
        except urllib.error.HTTPError:
            time.sleep(2)
    raise AssertionError(f"{dag_id} was not parsed within {timeout}s; see {airflow.home}/dag-processor.log")


def trigger(airflow: AirflowEnv, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """Trigger a run as the UI's form does (POST dagRuns with a conf); returns its run id."""
    run = airflow.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
    return str(run["dag_run_id"])


def wait_for_run(airflow: AirflowEnv, dag_id: str, run_id: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(2)
    raise AssertionError(
        f"{dag_id} {run_id} still {state} after {timeout}s; see {airflow.home}/scheduler.log"
    )


def runs(airflow: AirflowEnv, dag_id: str) -> list[dict[str, Any]]:
    return list(airflow.api("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"])


def wait_for_all(airflow: AirflowEnv, dag_id: str, count: int, timeout: float = 600) -> list[dict[str, Any]]:
    """Until ``dag_id`` has at least ``count`` runs and none is queued or running."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = runs(airflow, dag_id)
        if len(found) >= count and all(r["state"] in ("success", "failed") for r in found):
            return found
        time.sleep(3)
    raise AssertionError(f"{dag_id}: runs {[(r['run_id'], r['state']) for r in found]} after {timeout}s")


def wait_for_backfills(airflow: AirflowEnv, dag_id: str, timeout: float = 600) -> list[dict[str, Any]]:
    """Until every backfill of ``dag_id`` is completed (one may run at a time per DAG)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = list(airflow.api("GET", f"/backfills?dag_id={dag_id}")["backfills"])
        if found and all(b.get("completed_at") for b in found):
            return found
        time.sleep(3)
    raise AssertionError(f"{dag_id}: backfills {found} not completed after {timeout}s")


def task_state(airflow: AirflowEnv, dag_id: str, run_id: str, task_id: str) -> str | None:
    found = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    return None if found is None else found.get("state")


def wait_for_task_state(
    airflow: AirflowEnv, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 180
) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        try:
            state = task_state(airflow, dag_id, run_id, task_id)
        except urllib.error.HTTPError:
            state = None
        if state in states:
            return str(state)
        time.sleep(1)
    raise AssertionError(f"{dag_id} {run_id} {task_id}: {state} after {timeout}s, not one of {states}")
