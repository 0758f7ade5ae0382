"""Child processes of the dev stack: free ports, readiness checks, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "dev" / ".cache"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (the caller retries if it is taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class ServiceError(RuntimeError):
    """A dev service did not start; the message ends with the tail of its log."""


@dataclass
class Service:
    """One running server process started by the dev stack."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    on_stop: Callable[[], None] | None = None  # a graceful stop to try first (e.g. pg_ctl stop)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, check: Callable[[], bool], timeout: float) -> None:
        """Wait until ``check()`` is true while our own process stays alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(
                    f"{self.name} (pid {self.pid}) exited with {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        self.stop()
        raise ServiceError(
            f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """The graceful stop if there is one, then SIGTERM our process group, then SIGKILL what is left."""
        if not self.alive():
            return
        if self.on_stop is not None:
            with contextlib.suppress(Exception):
                self.on_stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def spawn(
    name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Service:
    """Start ``argv`` in its own process group, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    return Service(name=name, proc=proc, log_path=log_path)


def stop_all(services: Sequence[Service]) -> None:
    for service in reversed(services):
        service.stop()


def java_home(major: int = 17) -> str:
    """The JDK to run the servers with: $LOGTAP_JAVA_HOME, else the Debian/Temurin JDK of ``major``."""
    if env := os.environ.get("LOGTAP_JAVA_HOME"):
        return env
    for candidate in (f"/usr/lib/jvm/java-{major}-openjdk-amd64", f"/usr/lib/jvm/temurin-{major}-jdk-amd64"):
        if Path(candidate, "bin", "java").exists():
            return candidate
    raise ServiceError(f"no Java {major} found; set LOGTAP_JAVA_HOME")


def maven_classpath(pom_dir: Path, name: str) -> str:
    """Copy the jars a ``pom.xml`` lists into dev/.cache/<name>-jars once; return the classpath. Safe to call
    from several processes at once (parallel test workers): the copy is made under a file lock."""
    import fcntl

    target = CACHE / f"{name}-jars"
    stamp = target / ".pom-sha"
    pom = pom_dir / "pom.xml"
    digest = _sha(pom)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}-jars.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == digest):
            if target.exists():
                for jar in target.glob("*.jar"):
                    jar.unlink()
            subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={target}",
                ],
                check=True,
                env={**os.environ, "JAVA_HOME": java_home()},
            )
            stamp.write_text(digest)
    return str(target / "*")


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
