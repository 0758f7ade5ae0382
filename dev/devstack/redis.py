"""A Redis server (Debian's ``redis-server`` package) in a private directory, for the Celery executor's broker
(and result backend) when Celery workers run logtap's loads (the CeleryExecutor system test, the scale-out bench).

No persistence (no RDB snapshots, no AOF): what it holds is lost on stop, as a test wants. Loopback only, no
password. The Debian package's own service (``/etc/redis/redis.conf``, port 6379) is never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from devstack.process import Service, ServiceError, free_port, spawn


def _bin() -> str:
    found = shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if not found:
        raise ServiceError("Redis is not installed (apt-get install redis-server)")
    return found


def start(workdir: Path, port: int | None = None, attempts: int = 3) -> Service:
    """Start a fresh server (its working directory a new temporary one, log in ``workdir``); ``info["url"]`` is
    ``redis://127.0.0.1:<port>/0``."""
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        data = Path(tempfile.mkdtemp(prefix=f"logtap-redis-{p}-"))
        log = workdir / f"redis-{p}.log"
        # Settings on the command line, no config file: Redis reads "--name value" pairs as config lines.
        service = spawn(
            "redis",
            [
                _bin(),
                "--port",
                str(p),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--dir",
                str(data),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",  # to stdout: spawn's log file
                "--databases",
                "16",
            ],
            log,
            cwd=data,
        )
        service.ports = {"redis": p}
        service.info = {"url": f"redis://127.0.0.1:{p}/0"}
        service.on_stop = lambda s=service, d=data: _stop(s, d)
        try:
            service.wait_ready(lambda port=p: ping(port), timeout=30)
            return service
        except ServiceError as exc:  # port taken between free_port() and bind: try other ports
            service.stop()
            shutil.rmtree(data, ignore_errors=True)
            last = exc
            if port:
                break
    raise ServiceError(f"Redis did not start: {last}")


def _stop(service: Service, data: Path) -> None:
    """SIGTERM to the server's PID (Redis exits at once: nothing to save), then its directory goes."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(service.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        service.proc.wait(10)
    shutil.rmtree(data, ignore_errors=True)


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """``PING`` in the Redis protocol (RESP) over a plain socket; true on ``+PONG``."""
    with socket.create_connection((host, port), timeout=1) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith(b"+PONG")
