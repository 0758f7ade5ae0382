"""A distributed Airflow for system tests and the scale-out bench: the CeleryExecutor, Celery workers that run
logtap's tasks, and the components of a deployment around them.

- the metadata DB on PostgreSQL (``devstack.postgres``), which is also Celery's result backend
  (``db+postgresql``);
- Redis (``devstack.redis``) as Celery's broker;
- ``airflow api-server``, ``scheduler`` and ``dag-processor`` (and ``triggerer`` when asked: a tap whose sensor
  defers needs one; the tests set ``sensor_mode: reschedule``), as :func:`live.running_airflow` starts them;
- N ``airflow celery worker`` processes, as N machines would run them: each with its own ``--celery-hostname``,
  working directory, ``TMPDIR``, log-server port and PID file, and its own task-instance hostname. Airflow records
  ``ti.hostname`` from ``[core] hostname_callable``; the workers' points at :func:`worker_hostname` here, which
  returns the worker's name from the environment (on one machine ``socket.getfqdn()`` is the same for all).

Airflow 3 only. The failure detection is made fast, as a test needs it, not as production sets it: a task
instance without a heartbeat for ``heartbeat_timeout`` seconds (``[scheduler] task_instance_heartbeat_timeout``,
checked every 2 s) is failed and retried by the scheduler; a Celery message a dead worker had taken and not
acknowledged (``task_acks_late``) goes back to the queue after ``visibility_timeout`` seconds
(``[celery_broker_transport_options]``). That visibility timeout must stay longer than any task runs: Redis
hands a message still unacknowledged after it to another worker even when the first is alive.

This module's top level imports the standard library only: the workers import :func:`worker_hostname` from it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The worker's task-instance hostname, read by :func:`worker_hostname` in the worker's processes.
HOSTNAME_ENV = "LOGTAP_TEST_WORKER_HOSTNAME"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the test workers: ``$LOGTAP_TEST_WORKER_HOSTNAME`` (the worker's name),
    else the machine's FQDN as Airflow's default callable gives it."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


@dataclass
class CeleryAirflow:
    """A running CeleryExecutor Airflow (``airflow``: its home, env and REST API) and its workers by name."""

    airflow: Any  # airflow_env.AirflowEnv
    root: Path
    broker_url: str
    concurrency: int
    workers: dict[str, Any] = field(default_factory=dict)  # name -> devstack.process.Service

    def start_worker(self, name: str, timeout: float = 180, wait: bool = True) -> Any:
        """Start ``airflow celery worker`` as ``name`` (its Celery hostname and task-instance hostname), in a
        directory of its own; returns once Celery says it is ready to consume (``wait=False``: at once, see
        :meth:`wait_ready`)."""
        from devstack.process import free_port, spawn

        assert name not in self.workers, f"worker {name} is running"
        workdir = self.root / "workers" / name
        tmp = workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            **self.airflow.env,
            HOSTNAME_ENV: name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_env.worker_hostname",
            "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [self.airflow.env.get("PYTHONPATH")])]),
            "TMPDIR": str(tmp),
            # Each worker serves its task logs on a port of its own (the default 8793 would be shared).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        argv = [
            self.airflow.airflow,
            "celery",
            "worker",
            "--celery-hostname",
            name,
            "--concurrency",
            str(self.concurrency),
            "--pid",
            str(workdir / "worker.pid"),
        ]
        service = spawn(f"celery-worker-{name}", argv, workdir / "worker.log", env=env, cwd=workdir)
        self.workers[name] = service
        if wait:
            self.wait_ready(name, timeout)
        return service

    def wait_ready(self, name: str, timeout: float = 180) -> None:
        service = self.workers[name]
        service.wait_ready(lambda: f"celery@{name} ready".encode() in service.log_path.read_bytes(), timeout)

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker ``name`` as a lost machine ends it: its process group (the Celery main process, its pool
        processes, their task supervisors) and every process under it, also those in groups of their own (Airflow
        puts each task process in its own group)."""
        import psutil

        service = self.workers.pop(name)
        try:
            tree = psutil.Process(service.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                proc.kill()
        service.proc.wait(30)
        psutil.wait_procs(tree, timeout=30)

    def stop_worker(self, name: str) -> None:
        self.workers.pop(name).stop(timeout=60)

    def stop(self) -> None:
        """The workers (a warm shutdown each, all at once), then the other components."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, len(self.workers))) as pool:
            list(pool.map(self.stop_worker, list(self.workers)))
        self.airflow.stop_components()


@contextmanager
def celery_airflow(
    root: Path,
    *,
    workers: tuple[str, ...] = ("worker-a", "worker-b"),
    concurrency: int = 2,
    heartbeat_timeout: int = 15,
    visibility_timeout: int = 60,
    triggerer: bool = False,
    **settings: Any,
) -> Iterator[CeleryAirflow]:
    """A running CeleryExecutor Airflow in ``root`` with ``workers`` (names) of ``concurrency`` slots each; an empty
    taps file at ``<root>/home/taps.yaml``. ``settings`` go to :func:`airflow_env.make_airflow_env`
    (``kafka_bootstrap``, ``s3_endpoint``, ``webhdfs``, ...)."""
    from airflow_env import make_airflow_env
    from devstack import postgres, redis

    _check_celery()
    pg = postgres.start(root / "postgres")
    broker = None
    cluster = None
    try:
        broker = redis.start(root / "redis")
        home = root / "home"
        airflow = make_airflow_env(
            home, taps_file=home / "taps.yaml", database_url=pg.info["url"], **settings
        )
        airflow.env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": broker.info["url"],
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg.info["url"],
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(visibility_timeout),
                # kombu sweeps the unacknowledged messages every interval x throttle seconds (default 10 x 10).
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__UNACKED_RESTORE_INTERVAL": "5",
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__UNACKED_RESTORE_THROTTLE": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            }
        )
        (home / "taps.yaml").write_text("taps: []\n")
        cluster = CeleryAirflow(
            airflow=airflow, root=root, broker_url=broker.info["url"], concurrency=concurrency
        )
        for name in workers:  # they start (20-40 s on a busy machine) while the other components do
            cluster.start_worker(name, wait=False)
        airflow.start_components(
            "api-server", "scheduler", "dag-processor", *(["triggerer"] if triggerer else [])
        )
        for name in workers:
            cluster.wait_ready(name)
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        if broker is not None:
            broker.stop()
        pg.stop()


def _check_celery() -> None:
    """Fail early, naming the cause, when the installed Celery and the Celery provider cannot work together
    (celery 5.7 dropped ``celery.backends.database.retry``, which provider 3.26 imports: no worker or scheduler
    with the CeleryExecutor starts)."""
    import subprocess
    import sys

    probe = subprocess.run(
        [sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor_utils"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CELERY")},
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, (
        "the CeleryExecutor cannot be imported with the installed celery and Celery provider:\n"
        f"{probe.stderr[-2000:]}"
    )


def task_instances(airflow: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run (all map indexes) from the REST API, as the UI's grid lists them."""
    found: list[dict[str, Any]] = []
    while True:
        page = airflow.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(found)}"
        )
        found.extend(page["task_instances"])
        if not page["task_instances"] or len(found) >= page["total_entries"]:
            return found


def tries(airflow: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
    """Every try of one task instance (the earlier ones from the task instance history), oldest first."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
    return sorted(airflow.api("GET", path)["task_instances"], key=lambda t: int(t["try_number"]))


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")
