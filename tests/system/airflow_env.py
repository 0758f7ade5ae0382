"""A real Airflow installation for system tests: its own AIRFLOW_HOME and metadata DB, real ``airflow`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

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
    dags_folder: Path = ROOT / "dags",
) -> AirflowEnv:
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
    if webhdfs is not None:
        host, port = webhdfs["url"].removeprefix("http://").rsplit(":", 1)
        env["AIRFLOW_CONN_WEBHDFS_DEFAULT"] = json.dumps(
            {"conn_type": "webhdfs", "host": host, "port": int(port), "login": webhdfs["user"]}
        )
    airflow = AirflowEnv(home=home, env=env)
    airflow.run("db", "migrate")
    return airflow
