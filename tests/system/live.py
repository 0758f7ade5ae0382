"""Driving a running Airflow like a user does: the REST API (as the UI), and the ``airflow`` CLI."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_env import AirflowEnv, make_airflow_env

from airflow_provider_logtap.sinks.archive import read_lines


@contextmanager
def running_airflow(root: Path, **settings: Any) -> Iterator[AirflowEnv]:
    """A running Airflow as a deployment runs it: its own PostgreSQL metadata DB, LocalExecutor, API server,
    scheduler, DAG processor and triggerer; an empty taps file at ``<root>/home/taps.yaml`` (the tests write
    theirs; the DAG processor re-parses it). ``settings`` go to :func:`make_airflow_env`."""
    from devstack import postgres

    pg = postgres.start(root / "postgres")
    try:
        home = root / "home"
        airflow = make_airflow_env(
            home, taps_file=home / "taps.yaml", database_url=pg.info["url"], **settings
        )
        (home / "taps.yaml").write_text("taps: []\n")
        airflow.start_components("api-server", "scheduler", "dag-processor", "triggerer")
        try:
            yield airflow
        finally:
            airflow.stop_components()
    finally:
        pg.stop()


def backfill(airflow: AirflowEnv, dag_id: str, start: datetime, end: datetime, *extra: str) -> Any:
    """``airflow backfill create`` of ``[start, end]`` (logical dates), as the README shows it."""
    return airflow.run(
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        start.isoformat(),
        "--to-date",
        end.isoformat(),
        *extra,
    )


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


def lines_under(s3_client: Any, bucket: str, prefix: str) -> dict[int, list[bytes]]:
    """``{partition: lines}`` of the archive objects under ``prefix``, in key order."""
    out: dict[int, list[bytes]] = {}
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for key in sorted(o["Key"] for page in pages for o in page.get("Contents", ())):
        partition = int(key.split("/partition=")[1].split("/")[0])
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        out.setdefault(partition, []).extend(read_lines(body, "gzip"))
    return out
