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


BACKFILL_ATTEMPTS = 3  # Airflow 2: a backfill stopped "deadlocked" by Airflow's own race is run again


def backfill(airflow: AirflowEnv, dag_id: str, start: datetime, end: datetime, *, rerun: bool = False) -> Any:
    """A backfill of the runs with logical dates in ``[start, end]``, with the installation's own command, as the
    README shows it: ``airflow backfill create`` (Airflow 3: the scheduler runs it; see
    :func:`wait_for_backfills`) or ``airflow dags backfill -s -e`` (Airflow 2: runs it to its end in the CLI's
    process). ``rerun`` runs the runs that exist again: ``--reprocess-behavior completed`` (3),
    ``--reset-dagruns --yes`` (2)."""
    if airflow.version == "2":
        resume = ("dags", "backfill", "-s", start.isoformat(), "-e", end.isoformat(), dag_id)
        done = airflow.run(
            *resume[:-1], *(("--reset-dagruns", "--yes") if rerun else ()), dag_id, check=False
        )
        for _ in range(BACKFILL_ATTEMPTS - 1):
            output = done.stdout + done.stderr
            if not done.returncode or not (
                "BackfillJob is deadlocked" in output or "deadlock detected" in output
            ):
                break
            # Airflow 2's backfill job took the plan's new state from the DB before the executor's event for it,
            # and so never expanded the mapped load: as the README says, the same command again resumes the run
            # and expands it. Nothing of that run was written yet.
            with (airflow.home / "backfill-deadlocks.log").open("a") as log:
                log.write(f"{' '.join(resume)}\n")
            done = airflow.run(*resume, check=False)
        assert not done.returncode, (
            f"airflow {' '.join(resume)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        return done
    again = ("--reprocess-behavior", "completed") if rerun else ()
    return airflow.run(
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        start.isoformat(),
        "--to-date",
        end.isoformat(),
        *again,
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
    """Trigger a run as the UI's form does (POST dagRuns with a conf); returns its run id. Airflow 3 asks for
    the logical date (none: a run of now); Airflow 2 makes it the time of the request."""
    body: dict[str, Any] = {"conf": conf or {}}
    if airflow.version == "3":
        body["logical_date"] = None
    run = airflow.api("POST", f"/dags/{dag_id}/dagRuns", body)
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
    order = "execution_date" if airflow.version == "2" else "logical_date"
    return list(airflow.api("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by={order}")["dag_runs"])


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
    """Until every backfill of ``dag_id`` is completed (one may run at a time per DAG). Airflow 3 only: an
    Airflow 2 backfill has ended when its command returns."""
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


def ui_page(airflow: AirflowEnv, path: str) -> str:
    """A page of Airflow 2's webserver UI (server-rendered), fetched as a logged-in user (FAB's login form, with
    its CSRF token). Airflow 3's UI renders its pages in the browser; there the REST API is what to check."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    from airflow_env import ADMIN

    assert airflow.version == "2", "Airflow 3's UI pages are rendered by the browser"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = opener.open(f"{airflow.api_url}/login/", timeout=120).read().decode()
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login)
    assert match, "no CSRF token in the login form"
    form = {"username": ADMIN[0], "password": ADMIN[1], "csrf_token": match.group(1)}
    opener.open(f"{airflow.api_url}/login/", urllib.parse.urlencode(form).encode(), timeout=120).read()
    with opener.open(f"{airflow.api_url}{path}", timeout=120) as page:
        assert "/login" not in page.url, "not logged in"
        return str(page.read().decode())
