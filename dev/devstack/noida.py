"""``noida-db`` (PyPI, one native binary) serving only its Kafka and Elasticsearch look-alikes.

It is a light stand-in, not a real cluster: see ``dev/devstack/NOIDA_NOTES.md`` for what it gets wrong.
The binary is run directly (not through the ``noida-db`` Python wrapper, which would sit in between as a
second process), in the foreground, with its data under ``workdir``.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import urllib.request
from pathlib import Path

from devstack.process import ROOT, Service, ServiceError, free_port, port_answers, spawn


def binary() -> str:
    """The noida-db executable: the package's own binary, else the ``noida-db`` wrapper script."""
    try:
        from importlib.resources import files

        path = files("noida_db").joinpath("noida-db")
        if path.is_file():
            return str(path)
    except ModuleNotFoundError:
        pass
    for candidate in (
        Path(sys.executable).with_name("noida-db"),
        ROOT / ".venv" / "bin" / "noida-db",
        shutil.which("noida-db"),
    ):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise ServiceError("noida-db is not installed (pip install noida-db)")


def start(
    workdir: Path, port: int | None = None, attempts: int = 3, kafka_port: int | None = None
) -> Service:
    """Start a fresh noida-db with only kafka and elasticsearch under ``workdir``; returns once both answer.

    ``port`` fixes the Elasticsearch HTTP port and ``kafka_port`` the Kafka one (no retry if a fixed one
    is taken); otherwise free ports are picked and a clash is retried with new ones. noida-db stays at
    about 10-20 MiB RSS and answers in well under a second.
    """
    exe = binary()
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        kp = kafka_port or free_port()
        data = workdir / f"noida-data-{p}"
        shutil.rmtree(data, ignore_errors=True)  # fresh: noida-db reloads what an earlier run saved there
        data.mkdir(parents=True)
        argv = [
            exe,
            "start",
            "--data-dir",
            str(data),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka,elasticsearch",
            "--kafka-port",
            str(kp),
            "--elasticsearch-port",
            str(p),
        ]
        service = spawn("noida-db", argv, workdir / f"noida-{p}.log")
        service.ports = {"elasticsearch": p, "kafka": kp}
        service.info = {"url": f"http://127.0.0.1:{p}", "bootstrap": f"127.0.0.1:{kp}"}
        try:
            service.wait_ready(functools.partial(_ready, service, data), timeout=30)
            return service
        except ServiceError as exc:  # a port taken between free_port() and bind: try other ports
            service.stop()
            last = exc
            if (port and f"elasticsearch: port {port} " in str(exc)) or (
                kafka_port and f"kafka: port {kafka_port} " in str(exc)
            ):
                break  # a port the caller fixed is taken: another try cannot help
    raise ServiceError(f"noida-db did not start: {last}")


def _ready(service: Service, data: Path) -> bool:
    p, kp = service.ports["elasticsearch"], service.ports["kafka"]
    if not (port_answers(p) and port_answers(kp)):
        return False
    # the control file names the pid of the server that owns this data dir: ours, not another one
    control = json.loads((data / "noida.control.json").read_text())
    if control.get("pid") != service.pid and not _child_of(control.get("pid"), service.pid):
        return False
    with urllib.request.urlopen(f"http://127.0.0.1:{p}/", timeout=2) as resp:
        if resp.status != 200 or json.load(resp).get("name") != "noida-db":
            return False
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": service.info["bootstrap"]}).list_topics(timeout=2)
    return bool(md.brokers)


def _child_of(pid: object, parent: int) -> bool:
    """True if ``pid`` is a child of ``parent`` (the wrapper-script case)."""
    try:
        stat = Path(f"/proc/{int(str(pid))}/stat").read_text()
    except (OSError, ValueError):
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent
