"""A real Airflow installation for system tests: its own AIRFLOW_HOME and metadata DB, real ``airflow`` commands.

Two installations are known: Airflow 3 (the test session's own environment, ``.venv``) and Airflow 2.11
(``.venv-airflow2``, from ``dev/airflow2/uv.lock``, or ``$LOGTAP_AIRFLOW2_VENV``). The tests drive either by its
``airflow`` command and its REST API; the differences between the two (component names, the API's version and
authentication, CLI spellings) are kept here and in ``live.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The ``bin`` directory of each Airflow installation, by major version.
INSTALLATIONS = {
    "3": Path(sys.executable).parent,
    "2": Path(os.environ.get("LOGTAP_AIRFLOW2_VENV") or ROOT / ".venv-airflow2") / "bin",
}
ADMIN = (
    "admin",
    "admin",
)  # Airflow 2's FAB user for the REST API (basic auth); Airflow 3 uses its simple auth


# Distinctive secrets in the connections of every system-test Airflow (random per test process): the S3
# connection's secret key (moto accepts any) and a sasl.password in the Kafka connection's extra (unused by the
# PLAINTEXT broker; librdkafka takes it without a word). Any of them in a home's files or metadata DB is a leak,
# whatever put it there (see AirflowEnv.secret_sightings).
SECRETS = {
    "the aws_default connection's password": f"logtap-secret-{uuid.uuid4().hex}",
    "the kafka_default connection's sasl.password": f"logtap-secret-{uuid.uuid4().hex}",
}


def installed(version: str) -> bool:
    return (INSTALLATIONS[version] / "airflow").exists()


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
    version: str = "3"  # the major version of the installation: "3" or "2"
    port: str = ""  # the API server's (3) or webserver's (2) port
    #: Run the commands in forks of one server that has imported Airflow (see airflow_fork_server.py), not each
    #: in a new interpreter; ``$LOGTAP_TEST_FORK_SERVER=0`` turns it off.
    fork_server: bool = False
    _server: Any = field(default=None, repr=False)
    _token: str | None = field(default=None, repr=False)

    @property
    def airflow(self) -> str:
        """The installation's ``airflow`` command."""
        return str(INSTALLATIONS[self.version] / "airflow")

    def start_components(self, *components: str) -> None:
        """Start ``airflow <component>`` processes, named as Airflow 3 names them (scheduler, dag-processor,
        triggerer, api-server). On Airflow 2 the API server is the webserver, and the scheduler parses the DAG
        files itself (no standalone DAG processor). They start side by side (each spends its first seconds
        importing Airflow), then each is waited for: the API server until it answers, the others until they
        log."""
        from devstack.process import spawn

        started = []
        for component in components:
            if self.version == "2" and component == "dag-processor":
                continue
            args = [self.airflow, component]
            if component == "api-server" and self.version == "2":
                args = [self.airflow, "webserver", "--port", self.port, "--hostname", "127.0.0.1"]
            elif component == "api-server":
                args += ["--port", self.port, "--host", "127.0.0.1"]
            service = spawn(
                f"airflow-{component}", args, self.home / f"{component}.log", env=self.env, cwd=self.home
            )
            self.services.append(service)
            started.append((component, service))
        for component, service in started:
            if component == "api-server":
                service.wait_ready(lambda: _health(self.api_url, self.version), timeout=180)
            else:
                service.wait_ready(
                    lambda s=service: s.alive() and bool(s.log_path.stat().st_size), timeout=120
                )

    def register_dags(self) -> None:
        """Record the DAG files' DAGs (and their datasets) in the metadata DB, as a scheduler's parsing does:
        Airflow 2's ``airflow dags test`` does not (no run list, no dataset events without it); Airflow 3's does."""
        if self.version == "2":
            self.run("dags", "reserialize")

    def run_ids(self, dag_id: str) -> list[str]:
        """The DAG's run ids, oldest first, from the metadata DB's ``dag_run`` table (what ``airflow dags
        list-runs`` lists, without the seconds of another ``airflow`` command), by the run's date as each version
        names it."""
        import sqlalchemy

        order = "execution_date" if self.version == "2" else "run_after"
        query = sqlalchemy.text(f"SELECT run_id FROM dag_run WHERE dag_id = :dag_id ORDER BY {order}, id")
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as db:
                return [str(run_id) for (run_id,) in db.execute(query, {"dag_id": dag_id})]
        finally:
            engine.dispose()

    def variables(self, prefix: str = "") -> dict[str, str]:
        """The Airflow Variables whose keys start with ``prefix``, ``{key: value}``, read from the metadata DB's
        ``variable`` table and decrypted with the home's Fernet key as Airflow does (``airflow variables
        export`` shows the same, in seconds more)."""
        import configparser

        import sqlalchemy
        from cryptography.fernet import Fernet, MultiFernet

        query = sqlalchemy.text('SELECT "key", val, is_encrypted FROM variable')
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as db:
                rows = [row for row in db.execute(query) if str(row[0]).startswith(prefix)]
        finally:
            engine.dispose()
        keys = self.env.get("AIRFLOW__CORE__FERNET_KEY")
        if keys is None and rows:
            cfg = configparser.ConfigParser(interpolation=None)
            cfg.read(self.home / "airflow.cfg")
            keys = cfg.get("core", "fernet_key", fallback="")
        fernet = (
            MultiFernet([Fernet(k.encode()) for k in (keys or "").split(",") if k.strip()]) if keys else None
        )
        found = {}
        for key, value, encrypted in rows:
            if encrypted:
                assert fernet is not None, f"variable {key} is encrypted and {self.home} has no Fernet key"
                value = fernet.decrypt(value.encode()).decode()
            found[str(key)] = str(value)
        return found

    def crash_component(self, component: str) -> None:
        """SIGKILL ``airflow <component>`` (its whole process group), as a lost machine would end it."""
        import os
        import signal

        service = next(s for s in self.services if s.name == f"airflow-{component}")
        os.killpg(service.pid, signal.SIGKILL)
        service.proc.wait(30)
        self.services.remove(service)

    @property
    def database_url(self) -> str:
        """The metadata DB's SQLAlchemy URL (Airflow's default: SQLite in the home)."""
        return self.env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{self.home}/airflow.db"

    def secret_sightings(self, secrets: Mapping[str, str] = SECRETS) -> list[str]:
        """Where any of ``secrets`` (description -> value) shows in this Airflow: each file under the home (task
        and component logs, the output of every ``airflow`` command run, configuration) by path and line, and
        each value of each table of the metadata DB (XCom, rendered template fields, asset events, DAG run
        conf, audit log, ...) by table, column and row key. Empty when none does."""
        found = []
        for path in sorted(p for p in self.home.rglob("*") if p.is_file()):
            if path.name.startswith("airflow.db"):
                continue  # the SQLite metadata DB is read by table below
            data = path.read_bytes()
            for name, secret in secrets.items():
                at = data.find(secret.encode())
                if at >= 0:
                    line = data.count(b"\n", 0, at) + 1
                    found.append(f"{name} in {path.relative_to(self.home)} line {line}")
        for table, column, key, value in self.database_values():
            for name, secret in secrets.items():
                if secret in value:
                    found.append(f"{name} in the metadata DB: table {table}, column {column}, row {key}")
        return found

    def database_values(self) -> Iterator[tuple[str, str, dict[str, Any], str]]:
        """Every non-empty value of every table of the metadata DB as text (JSON as JSON, bytes decoded, zlib
        compressed ones inflated): ``(table, column, row's primary key, text)``."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as db:
                metadata = sqlalchemy.MetaData()
                with warnings.catch_warnings():  # Airflow 2's SQLite schema: foreign keys it cannot place
                    warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)
                    metadata.reflect(db)
                for table in metadata.sorted_tables:
                    primary = [c.name for c in table.primary_key.columns]
                    for row in db.execute(table.select()).mappings():
                        key = {k: row[k] for k in primary}
                        for column, value in row.items():
                            if value is not None and value != "":
                                yield table.name, column, key, _as_text(value)
        finally:
            engine.dispose()

    def stop_components(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        self.stop_fork_server()

    def stop_fork_server(self) -> None:
        """End the fork server (its stdin closed, then by its PID if it lingers)."""
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(OSError):
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        server.stdout.close()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call to the REST API: ``/api/v2/...`` with a token from ``/auth/token`` (Airflow 3), or
        ``/api/v1/...`` with basic auth (Airflow 2). The paths and payloads used here are the same in both."""
        if self.version == "2":
            return _request(method, f"{self.api_url}/api/v1{path}", body, basic=ADMIN)
        token_url, url = f"{self.api_url}/auth/token", f"{self.api_url}/api/v2{path}"
        if self._token is None:  # one token per home (Airflow's JWTs last far longer than a test)
            self._token = _request("GET", token_url)["access_token"]
        try:
            return _request(method, url, body, self._token)
        except urllib.error.HTTPError as error:
            if error.code != 401:
                raise
        self._token = _request("GET", token_url)["access_token"]  # it expired: once more, with a new one
        return _request(method, url, body, self._token)

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        extra_env = extra_env or {}
        # A different Airflow configuration (AIRFLOW__...) is read at import: such a command gets an interpreter
        # of its own.
        forked = self.fork_server and not any(k.startswith("AIRFLOW__") for k in extra_env)
        if forked:
            proc = self._forked(list(args), extra_env, timeout)
        else:
            proc = subprocess.run(
                [self.airflow, *args],
                env={**self.env, **extra_env},
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.home,
            )
        log = self.home / "commands.log"
        took = f"{time.monotonic() - started:.1f}s{', forked' if forked else ''}"
        with log.open("a") as out:
            out.write(
                f"\n$ airflow {' '.join(args)}  (exit {proc.returncode}, {took})\n{proc.stdout}\n{proc.stderr}\n"
            )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    def _forked(
        self, args: list[str], extra_env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """``airflow *args`` in a fork of the fork server (started on first use)."""
        self.start_fork_server()
        outputs = self.home / "fork-server"
        outputs.mkdir(exist_ok=True)
        stdout, stderr = outputs / "stdout", outputs / "stderr"
        request = {
            "args": args,
            "env": extra_env,
            "stdout": str(stdout),
            "stderr": str(stderr),
            "timeout": timeout,
        }
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        self._server_reply()  # the fork's pid
        done = self._server_reply()
        out, err = stdout.read_text(errors="replace"), stderr.read_text(errors="replace")
        stdout.unlink()
        stderr.unlink()
        if done["timed_out"]:
            raise subprocess.TimeoutExpired(["airflow", *args], timeout, out, err)
        return subprocess.CompletedProcess(["airflow", *args], int(done["exit"]), out, err)

    def start_fork_server(self) -> None:
        """Start the fork server (see :attr:`fork_server`) unless it runs: it imports Airflow, in seconds."""
        if self._server is None or self._server.poll() is not None:
            with (self.home / "fork-server.log").open("a") as log:
                self._server = subprocess.Popen(
                    [
                        str(INSTALLATIONS[self.version] / "python"),
                        str(Path(__file__).with_name("airflow_fork_server.py")),
                    ],
                    env=self.env,
                    cwd=self.home,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            assert self._server_reply().get("ready"), "the fork server did not start"

    def _server_reply(self) -> dict[str, Any]:
        while line := self._server.stdout.readline():
            if line.startswith("FORKSERVER "):
                return dict(json.loads(line.removeprefix("FORKSERVER ")))
        raise AssertionError(
            f"the fork server ended (exit {self._server.wait()}); see {self.home}/fork-server.log"
        )


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
    version: str = "3",
) -> AirflowEnv:
    """An Airflow home with logtap's connections; with ``database_url``, set up to run as a deployment does.

    New DAGs start unpaused there unless ``dags_paused_at_creation`` (Airflow's own default, ``[core]
    dags_are_paused_at_creation = True``) is asked for. ``version`` picks the installation (``"3"``, ``"2"``).
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
            {
                "conn_type": "kafka",
                "extra": {
                    "bootstrap.servers": kafka_bootstrap,
                    "sasl.password": SECRETS["the kafka_default connection's sasl.password"],
                },
            }
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": SECRETS["the aws_default connection's password"],
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "PYTHONWARNINGS": "ignore",
        # The installation's own `airflow` first: the executors of both versions may start `airflow tasks run`.
        "PATH": f"{INSTALLATIONS[version]}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = ""
    if database_url:
        from devstack.process import free_port

        port = str(free_port())
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            }
        )
        if version == "2":
            env.update(
                {
                    "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": port,
                    "AIRFLOW__WEBSERVER__BASE_URL": f"http://127.0.0.1:{port}",
                    "AIRFLOW__WEBSERVER__SECRET_KEY": "logtap-system-tests",
                    "AIRFLOW__WEBSERVER__WORKERS": "1",
                    "AIRFLOW__WEBSERVER__WORKER_REFRESH_BATCH_SIZE": "0",
                    "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,"
                    "airflow.api.auth.backend.session",
                    "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                    # As the README advises Airflow 2 deployments that backfill: no "mini scheduler" in the task
                    # process, which expands the mapped load at the same time as the backfill job does
                    # (a PostgreSQL deadlock that fails the backfill command).
                    "AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION": "False",
                }
            )
        else:
            env.update(
                {
                    "AIRFLOW__API__PORT": port,
                    "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                }
            )
        if not dags_paused_at_creation:
            env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    if webhdfs is not None:
        host, hdfs_port = webhdfs["url"].removeprefix("http://").rsplit(":", 1)
        env["AIRFLOW_CONN_WEBHDFS_DEFAULT"] = json.dumps(
            {"conn_type": "webhdfs", "host": host, "port": int(hdfs_port), "login": webhdfs["user"]}
        )
    if not installed(version):
        raise AssertionError(
            f"no Airflow {version} installation at {INSTALLATIONS[version]}: run bash dev/install.sh"
        )
    airflow = AirflowEnv(home=home, env=env, version=version, port=port)
    if database_url:
        airflow.api_url = f"http://127.0.0.1:{port}"
    airflow.run("db", "migrate")
    if database_url and version == "2":
        user, password = ADMIN
        airflow.run(
            "users", "create", "--role", "Admin", "--username", user, "--password", password,
            "--firstname", "Ad", "--lastname", "Min", "--email", "admin@example.com",
        )  # fmt: skip
    return airflow


LOG_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\dT[^]]*\] \{"
)  # an Airflow log line: "[2026-12-02T05:27:18.791+0000] {"


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)  # Airflow's compressed serialized DAGs
        return data.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def cli_json(stdout: str) -> Any:
    """The JSON document of an ``airflow ... -o json`` command's output. Airflow 2 logs to stdout too (its
    plugins' set-up at INFO, before the document): those lines are left out."""
    return json.loads("\n".join(line for line in stdout.splitlines() if not LOG_LINE.match(line)))


def _request(
    method: str, url: str, body: Any = None, token: str | None = None, basic: tuple[str, str] | None = None
) -> Any:
    import base64

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if basic:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode())
    # The API server answers from one process that the tasks' own execution-API calls and the scheduler's work
    # share on a loaded machine: a read waits up to a minute and is asked again (idempotent); a write is
    # asked once, with the longest wait, so that it is never done twice.
    attempts, timeout = (3, 60) if method == "GET" else (1, 180)
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = resp.read()
            break
        except urllib.error.HTTPError:
            raise  # an answer, not a wait
        except (TimeoutError, ConnectionResetError, urllib.error.URLError) as error:
            if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, TimeoutError):
                raise  # refused, unknown host: asking again does not help
            if attempt == attempts:
                raise TimeoutError(f"{method} {url}: no answer in {attempts} attempts ({error})") from error
            print(f"{method} {url}: {error!r}, asked again", file=sys.stderr)
    return json.loads(payload) if payload else None


def _health(api_url: str, version: str) -> bool:
    return bool(
        _request("GET", f"{api_url}/health" if version == "2" else f"{api_url}/api/v2/monitor/health")
    )
