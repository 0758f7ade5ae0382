"""A PostgreSQL server (Debian's ``postgresql`` package) in a private data directory, for Airflow's metadata DB
when a scheduler, DAG processor and API server run side by side (the system tests).

PostgreSQL refuses to run as root: when we are root, ``initdb`` and ``postgres`` run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack.process import Service, ServiceError, free_port, port_answers, spawn


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ServiceError("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start(workdir: Path, port: int | None = None, attempts: int = 3) -> Service:
    """Start a fresh server (data in a new temporary directory, log in ``workdir``); ``info["url"]`` is a
    SQLAlchemy URL of database ``airflow`` (user/password ``airflow``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        # The data directory must be reachable by the postgres user: not under a root-only temp dir.
        data = Path(tempfile.mkdtemp(prefix=f"logtap-pg-{p}-"))
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        service = spawn(
            "postgres",
            _as_postgres(
                [
                    _bin("postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(p),
                    "-k",
                    str(data),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=off",
                ]
            ),
            workdir / f"postgres-{p}.log",
        )
        service.ports = {"postgres": p}
        service.on_stop = lambda d=data: _stop(d)
        service.info = {"url": f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{p}/airflow"}
        try:
            service.wait_ready(lambda port=p: port_answers(port) and _psql(port, "SELECT 1"), timeout=60)
            _psql(p, "CREATE USER airflow WITH PASSWORD 'airflow' SUPERUSER")
            _psql(p, "CREATE DATABASE airflow OWNER airflow")
            return service
        except (ServiceError, subprocess.CalledProcessError) as exc:
            service.stop()
            last = exc
            if port:
                break
    raise ServiceError(f"PostgreSQL did not start: {last}")


def _stop(data: Path) -> None:
    """``pg_ctl stop``: postgres runs as another user under runuser, out of reach of our signals."""
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w"]),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    shutil.rmtree(data, ignore_errors=True)


def _psql(port: int, sql: str) -> bool:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return True
