"""A real Airflow installation for system tests: its own AIRFLOW_HOME and metadata DB, real ``airflow`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

# Test-only failure injection through Airflow's own cluster-policy mechanism (airflow_local_settings.py in
# $AIRFLOW_HOME/config): the task named by $LOGTAP_TEST_FAIL_TASK raises instead of running.
LOCAL_SETTINGS = """
import os


def task_policy(task):
    target = os.environ.get("LOGTAP_TEST_FAIL_TASK")
    if target and task.task_id == target:
        def fail(context, _task_id=task.task_id):
            raise RuntimeError(f"injected failure in {_task_id} (LOGTAP_TEST_FAIL_TASK)")

        task.execute = fail
"""


@dataclass
class AirflowEnv:
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Any] = field(default_factory=list)
    api_url: str = ""

    def start_components(self, *components: str) -> None:
        """Start ``airflow <component>`` processes (scheduler, dag-processor, triggerer, api-server)."""
        from devstack.process import spawn

        for component in components:
            args = [AIRFLOW, component]
            if component == "api-server":
                args += ["--port", self.env["AIRFLOW__API__PORT"], "--host", "127.0.0.1"]
            service = spawn(
                f"airflow-{component}", args, self.home / f"{component}.log", env=self.env, cwd=self.home
            )
            self.services.append(service)
            if component == "api-server":
                service.wait_ready(lambda: _health(self.api_url), timeout=120)
            else:
                service.wait_ready(
                    lambda s=service: s.alive() and bool(s.log_path.stat().st_size), timeout=60
                )

    def crash_component(self, component: str) -> None:
        """SIGKILL ``airflow <component>`` (its whole process group), as a lost machine would end it."""
        import os
        import signal

        service = next(s for s in self.services if s.name == f"airflow-{component}")
        os.killpg(service.pid, signal.SIGKILL)
        service.proc.wait(30)
        self.services.remove(service)

    def stop_components(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call to the REST API (``/api/v2/...``) with a token from ``/auth/token``."""
        token = _request("GET", f"{self.api_url}/auth/token")["access_token"]
        return _request(method, f"{self.api_url}/api/v2{path}", body, token)

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [AIRFLOW, *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        log = self.home / "commands.log"
        with log.open("a") as out:
            out.write(
                f"\n$ airflow {' '.join(args)}  (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}\n"
            )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc


def make_airflow_env(
    home: Path,
    *,
    kafka_bootstrap: str,
    s3_endpoint: str,
    taps_file: Path,
    webhdfs: dict[str, str] | None = None,
    database_url: str | None = None,
    dags_folder: Path = ROOT / "dags",
    dags_paused_at_creation: bool = False,
) -> AirflowEnv:
    """An Airflow home with logtap's connections; with ``database_url``, set up to run as a deployment does.

    New DAGs start unpaused there unless ``dags_paused_at_creation`` (Airflow's own default, ``[core]
    dags_are_paused_at_creation = True``) is asked for.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LOGTAP_TEST_FAIL"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "LOGTAP_TAPS_FILE": str(taps_file),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "PYTHONWARNINGS": "ignore",
    }
    if database_url:
        from devstack.process import free_port

        port = str(free_port())
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__API__PORT": port,
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            }
        )
        if not dags_paused_at_creation:
            env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    if webhdfs is not None:
        host, port = webhdfs["url"].removeprefix("http://").rsplit(":", 1)
        env["AIRFLOW_CONN_WEBHDFS_DEFAULT"] = json.dumps(
            {"conn_type": "webhdfs", "host": host, "port": int(port), "login": webhdfs["user"]}
        )
    airflow = AirflowEnv(home=home, env=env)
    if database_url:
        airflow.api_url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    airflow.run("db", "migrate")
    return airflow


def _request(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        payload = resp.read()
    return json.loads(payload) if payload else None


def _health(api_url: str) -> bool:
    return bool(_request("GET", f"{api_url}/api/v2/monitor/health"))
