"""A real OpenSearch 2.19 node (single-node discovery, security off), on Java 17.

The jars come from Maven Central through ``dev/opensearch/pom.xml``: the server plus the modules
transport-netty4, analysis-common, geo, reindex, lang-painless, lang-mustache, ingest-common and
mapper-extras. ``dev/opensearch/OpenSearchNode.java`` runs as a Java
single-file source program (compiled in memory at each start, nothing lands in the repo) and starts
``org.opensearch.node.Node`` with those modules' plugin classes, as the test framework's MockNode does.
See ``dev/opensearch/NOTES.md`` for what differs from a production cluster.
"""

from __future__ import annotations

import functools
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from devstack.process import (
    ROOT,
    Service,
    ServiceError,
    free_port,
    java_home,
    maven_classpath,
    port_answers,
    spawn,
)

MAIN = ROOT / "dev" / "opensearch" / "OpenSearchNode.java"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d{{ISO8601}}][%-5p][%c{{1.}}] %m%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = ERROR
"""


def start(
    workdir: Path, port: int | None = None, attempts: int = 3, heap: str = "512m", c1_only: bool = True
) -> Service:
    """Start a fresh node with its home under ``workdir``; returns once cluster health is green or yellow.

    ``port`` fixes the HTTP port (no retry if that one is taken); the transport port is always a free one.
    ``heap`` is -Xms/-Xmx (512m is enough for test data; the RSS is then about 350-470 MiB). ``c1_only`` stops the
    JIT at C1, which starts the node about 1/3 faster and suits tests; benches measuring indexing pass False.
    """
    classpath = maven_classpath(ROOT / "dev" / "opensearch", "opensearch")
    java = str(Path(java_home(17), "bin", "java"))
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        tp = free_port()
        home = workdir / f"opensearch-{p}"
        shutil.rmtree(home, ignore_errors=True)  # a fresh node: no indices left from an earlier run
        home.mkdir(parents=True)
        log4j = workdir / f"opensearch-log4j2-{p}.properties"
        log4j.write_text(LOG4J2.format(log=home / "logs" / "opensearch.log"))
        argv = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            *(["-XX:TieredStopAtLevel=1"] if c1_only else []),  # C1 only: starts about 1/3 faster
            "-Xss1m",
            "-Djava.awt.headless=true",
            "-Dfile.encoding=UTF-8",
            "-Djava.locale.providers=SPI,COMPAT",
            "-Dio.netty.noUnsafe=true",
            "-Dio.netty.noKeySetOptimization=true",
            "-Dio.netty.recycler.maxCapacityPerThread=0",
            "-Dio.netty.allocator.numDirectArenas=0",
            "-Dlog4j.shutdownHookEnabled=false",
            "-Dlog4j2.disable.jmx=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Djava.io.tmpdir={home}",
            "-cp",
            classpath,
            str(MAIN),
            str(home),
            str(p),
            str(tp),
        ]
        service = spawn("opensearch", argv, workdir / f"opensearch-{p}.log")
        service.ports = {"http": p, "transport": tp}
        service.info = {"url": f"http://127.0.0.1:{p}"}
        try:
            service.wait_ready(functools.partial(_healthy, p, service.pid), timeout=120)
            return service
        except ServiceError as exc:  # a port taken between free_port() and bind: try other ports
            service.stop()
            last = exc
            if port and "BindHttpException" in service.log_path.read_text(errors="replace"):
                break  # the caller's HTTP port is taken: another try cannot help
    raise ServiceError(f"OpenSearch did not start: {last}")


def _get(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        body: dict[str, Any] = json.load(resp)
        return body


def _healthy(port: int, pid: int) -> bool:
    """Cluster health green/yellow, answered by our own JVM (not another server on a shared port)."""
    if not port_answers(port):
        return False
    nodes = _get(port, "/_nodes/_local/process")["nodes"]
    if [n["process"]["id"] for n in nodes.values()] != [pid]:
        return False
    return _get(port, "/_cluster/health").get("status") in ("green", "yellow")
