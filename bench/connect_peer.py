"""Kafka Connect's FileStreamSink as a peer of kcat: the same topic written to a local file.

    .venv/bin/python bench/connect_peer.py [--lines 300000] [--rounds 3]

Each round runs kcat (``-C -e -f '%s\\n'`` to /dev/null) and then Kafka Connect standalone
(``org.apache.kafka.connect.cli.ConnectStandalone``, Kafka 4.1.1 jars from ``dev/connect/pom.xml``) with one
``FileStreamSinkConnector`` task writing the topic to a file. Connect is timed from its process start until the
file holds every line ("end to end", JVM start and plugin loading included), and also from the first byte in the
file to the last ("after first line") and from the REST API reporting the task RUNNING to the last byte ("after
task running"). Every round has its own connector name, i.e. its own consumer group ``connect-<name>``, so it
reads the topic from the beginning. FileStreamSink prints ``record.value()`` with ``PrintStream.println``: a
``byte[]`` value would come out as ``[B@1b6d3586``, so values go through ``StringConverter`` (UTF-8); the file is
checked byte for byte (SHA-256) against kcat's output of the same range after every round. The task writes
each line with its own write(2) (an unbuffered ``Files.newOutputStream`` under the ``PrintStream``).
``--untuned`` runs Connect with its defaults instead of :data:`TUNED`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, fill_topic, kcat_seconds, mb, services  # common puts dev/ on sys.path first
from devstack.process import Service, ServiceError, free_port, java_home, maven_classpath, spawn

WORK = ROOT / ".dev" / "bench" / "connect"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
"""

# Settings tuned for throughput (the rest are Connect's defaults): larger polls and fetches for the sink's
# consumer, and plugins found through ServiceLoader instead of scanning every class on the classpath.
TUNED = {
    "consumer.max.poll.records": "20000",  # default 500
    "consumer.max.partition.fetch.bytes": str(16 << 20),  # default 1 MiB
    "consumer.fetch.max.bytes": str(64 << 20),  # default 50 MiB
    "plugin.discovery": "service_load",  # default hybrid_warn (reflective scan of the classpath)
}

# connect-standalone.sh's JVM options (KAFKA_JVM_PERFORMANCE_OPTS), with a smaller heap than its -Xmx2G.
JVM_OPTS = [
    "-Xms256m",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]


@dataclass(frozen=True)
class ConnectRun:
    """Seconds from the Connect process start to: the task RUNNING, the first byte, every byte in the file."""

    ready: float
    first: float
    done: float
    sha256: str


def worker_properties(bootstrap: str, rest_port: int, offsets: Path, tuned: bool = True) -> str:
    settings = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": str(offsets),
        "listeners": f"http://127.0.0.1:{rest_port}",
        **(TUNED if tuned else {}),
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def connector_properties(name: str, topic: str, out: Path) -> str:
    settings = {
        "name": name,
        "connector.class": "FileStreamSink",
        "tasks.max": "1",
        "topics": topic,
        "file": str(out),
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def task_running(rest_port: int, name: str) -> bool:
    url = f"http://127.0.0.1:{rest_port}/connectors/{name}/status"
    with urllib.request.urlopen(url, timeout=1) as response:
        status = json.load(response)
    return any(t.get("state") == "RUNNING" for t in status.get("tasks", []))


def run_connect(
    classpath: str,
    bootstrap: str,
    topic: str,
    expected: int,
    workdir: Path,
    timeout: float,
    tuned: bool = True,
) -> ConnectRun:
    """Start Connect standalone with a FileStreamSink of ``topic``; time it until the file has ``expected``
    bytes; stop it (by PID, its process group) and remove the file (its logs stay in ``workdir``)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    name = f"bench-sink-{uuid.uuid4().hex[:8]}"  # the consumer group is connect-<name>: a fresh one per round
    rest_port = free_port()
    out = workdir / "sink.txt"
    worker = workdir / "worker.properties"
    worker.write_text(worker_properties(bootstrap, rest_port, workdir / "connect.offsets", tuned))
    connector = workdir / "connector.properties"
    connector.write_text(connector_properties(name, topic, out))
    log4j = workdir / "log4j2.properties"
    log4j.write_text(LOG4J2.format(log=workdir / "connect-worker.log"))
    java = str(Path(java_home(17), "bin", "java"))
    argv = [
        java,
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
        "org.apache.kafka.connect.cli.ConnectStandalone",
        str(worker),
        str(connector),
    ]
    began = time.perf_counter()
    service: Service = spawn("connect", argv, workdir / "connect.log")
    ready = first = None
    try:
        next_status = began
        while True:
            now = time.perf_counter()
            size = out.stat().st_size if out.exists() else 0
            if first is None and size > 0:
                first = now
            if size >= expected:
                break
            if not service.alive():
                raise ServiceError(
                    f"Connect (pid {service.pid}) exited with {service.proc.returncode} after {size:,} of "
                    f"{expected:,} bytes; log {service.log_path}:\n{service.log_tail()}"
                )
            if now - began > timeout:
                raise ServiceError(f"Connect wrote {size:,} of {expected:,} bytes in {timeout:.0f}s")
            if ready is None and now >= next_status:
                next_status = now + 0.1
                try:
                    if task_running(rest_port, name):
                        ready = time.perf_counter()
                except OSError:  # REST not up yet, or the connector not created yet (404)
                    pass
            time.sleep(0.005)
        done = time.perf_counter()
        if size != expected:
            raise ServiceError(f"Connect wrote {size:,} bytes, expected {expected:,}: {out}")
    finally:
        service.stop()
    digest = sha256_file(out)
    out.unlink()  # the logs and properties stay in workdir for a look
    assert first is not None
    if ready is None or ready > first:
        ready = first  # the task wrote before a status poll saw it RUNNING: count from its first byte
    return ConnectRun(ready=ready - began, first=first - began, done=done - began, sha256=digest)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def kcat_sha256(bootstrap: str, topic: str, end: int) -> str:
    """SHA-256 of kcat's ``%s\\n`` output of offsets [0, end): the bytes the sink's file must hold."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat") or "kcat"
    argv = [kcat, "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-c", str(end)]
    proc = subprocess.Popen([*argv, "-e", "-q", "-f", "%s\n"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    h = hashlib.sha256()
    while chunk := proc.stdout.read(1 << 20):
        h.update(chunk)
    if proc.wait() != 0:
        raise SystemExit(f"kcat exited with {proc.returncode}")
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per Connect run")
    parser.add_argument(
        "--untuned", action="store_true", help="Connect's defaults instead of the TUNED worker settings"
    )
    args = parser.parse_args()

    classpath = maven_classpath(ROOT / "dev" / "connect", "connect")
    with services() as (bootstrap, _endpoint):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        began = time.perf_counter()
        produced = fill_topic(bootstrap, topic, args.lines)
        print(f"produced {args.lines:,} lines, {mb(produced)} in {time.perf_counter() - began:.0f}s")
        expected = produced + args.lines  # one '\n' per line, as kcat's '%s\n' and println write them
        reference = kcat_sha256(bootstrap, topic, args.lines)

        paths = ("end to end", "after first line", "after task running")
        seconds: dict[str, list[float]] = {p: [] for p in paths}
        ratios: dict[str, list[float]] = {p: [] for p in paths}
        kcat_all: list[float] = []
        for n in range(args.rounds):
            k = kcat_seconds(bootstrap, topic, args.lines, repeat=1)
            run = run_connect(
                classpath, bootstrap, topic, expected, WORK / f"round-{n}", args.timeout, not args.untuned
            )
            if run.sha256 != reference:
                raise SystemExit(f"round {n}: the sink's file differs from kcat's output of the same range")
            kcat_all.append(k)
            times = {
                "end to end": run.done,
                "after first line": run.done - run.first,
                "after task running": run.done - run.ready,
            }
            for p, s in times.items():
                seconds[p].append(s)
                ratios[p].append(k / s)
            print(
                f"round {n + 1}: kcat {k:.2f}s; Connect task running at {run.ready:.1f}s, first line at "
                f"{run.first:.1f}s, all {args.lines:,} lines at {run.done:.1f}s (file = kcat's output)"
            )

        settings = (
            "Connect's defaults"
            if args.untuned
            else "tuned: " + ", ".join(f"{key}={value}" for key, value in TUNED.items())
        )
        print(
            f"\n{args.lines:,} lines, {mb(produced)} ({settings}); best round, and x kcat in the same round"
        )
        k = min(kcat_all)
        print(f"{'kcat':<42}{args.lines / k:>10,.0f} lines/s  {mb(produced / k)}/s  1")
        for p in paths:
            s = min(seconds[p])
            print(
                f"{'Connect FileStreamSink ' + p:<42}{args.lines / s:>10,.0f} lines/s  {mb(produced / s)}/s  "
                f"median {statistics.median(ratios[p]):.3f} (rounds {' '.join(f'{v:.3f}' for v in ratios[p])})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
