"""A real HDFS: Hadoop's MiniDFSCluster (one NameNode + one DataNode in one JVM) with WebHDFS, on Java 17.

The jars come from Maven Central through ``dev/hdfs/pom.xml`` (``hadoop-client-minicluster``);
``dev/hdfs/MiniHdfs.java`` is launched as a single-file source program, so nothing is compiled on disk.
Simple authentication, permission checks off, replication 1; see ``dev/hdfs/NOTES.md``.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

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

LAUNCHER = ROOT / "dev" / "hdfs" / "MiniHdfs.java"

LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{{ISO8601}} %p %m (%c{{1}})%n
log4j.logger.org.apache.hadoop.hdfs.MiniDFSCluster=INFO
log4j.logger.org.apache.hadoop.hdfs.server.namenode.NameNode=INFO
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode=INFO
"""

PROBE = "/.devstack-ready-probe"


# The DataNode writes WebHDFS uploads with an embedded DFSClient whose file close retries after 400 ms when the
# block is not reported yet; in a one-DataNode MiniDFSCluster that is nearly always, so each file took ~0.3 s.
# 10 ms makes small-file writes about 5x faster (see dev/hdfs/NOTES.md).
FAST_CLOSE = {"dfs.client.block.write.locateFollowingBlock.initial.delay.ms": "10"}


def start(
    workdir: Path, http_port: int | None = None, attempts: int = 3, conf: dict[str, str] | None = None
) -> Service:
    """Format a fresh HDFS under ``workdir`` and start it; returns once WebHDFS writes via the DataNode.

    ``conf`` overrides Hadoop settings (e.g. ``{"dfs.permissions.enabled": "true"}``).
    """
    classpath = maven_classpath(ROOT / "dev" / "hdfs", "hdfs")
    java = str(Path(java_home(17), "bin", "java"))
    # Simple auth: the NameNode's superuser is whoever runs it; make that explicit and tell the caller.
    user = os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
    extra = [f"{k}={v}" for k, v in {**FAST_CLOSE, **(conf or {})}.items()]
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        http = http_port or free_port()
        rpc = free_port()
        base = workdir / f"hdfs-{http}"
        shutil.rmtree(base, ignore_errors=True)
        log4j = workdir / f"log4j-hdfs-{http}.properties"
        log4j.write_text(LOG4J.format(log=workdir / f"hdfs-server-{http}.log"))
        argv = [
            java,
            "-Xms64m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j.configuration=file:{log4j}",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            classpath,
            str(LAUNCHER),
            str(base),
            str(rpc),
            str(http),
            *extra,
        ]
        log = workdir / f"hdfs-{http}.log"
        log.unlink(missing_ok=True)  # the READY line checked below must come from this run
        service = spawn("hdfs", argv, log, env={"HADOOP_USER_NAME": user})
        service.ports = {"namenode_http": http, "namenode_rpc": rpc}
        service.info = {
            "webhdfs_url": f"http://127.0.0.1:{http}",
            "user": user,
            "hdfs_url": f"hdfs://127.0.0.1:{rpc}",
        }
        try:
            service.wait_ready(functools.partial(_ready, service), timeout=120)
            return service
        except ServiceError as exc:  # port taken between free_port() and bind: try other ports
            service.stop()
            last = exc
            if http_port:
                break
    raise ServiceError(f"HDFS did not start: {last}")


def _ready(service: Service) -> bool:
    """Our JVM said READY on our ports, WebHDFS answers, a DataNode is live and takes a block."""
    http, rpc = service.ports["namenode_http"], service.ports["namenode_rpc"]
    if not re.search(rf"^READY rpc={rpc} http={http}$", service.log_path.read_text(errors="replace"), re.M):
        return False
    if not port_answers(http):
        return False
    base, user = service.info["webhdfs_url"], service.info["user"]
    status, _ = _call("GET", f"{base}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}")
    if status != 200:
        return False
    _, jmx = _call("GET", f"{base}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState")
    beans = json.loads(jmx).get("beans") or [{}]
    if beans[0].get("NumLiveDataNodes", 0) < 1 or beans[0].get("FSState") != "Operational":
        return False
    return _probe_write(base, user)


def _probe_write(base: str, user: str) -> bool:
    """The two-step CREATE (NameNode 307 -> DataNode 201), then DELETE: the DataNode really stores blocks."""
    status, location = _call("PUT", f"{base}/webhdfs/v1{PROBE}?op=CREATE&overwrite=true&user.name={user}")
    if status != 307 or not location:
        return False
    status, _ = _call("PUT", location, b"ok", {"Content-Type": "application/octet-stream"})
    if status != 201:
        return False
    status, _ = _call("DELETE", f"{base}/webhdfs/v1{PROBE}?op=DELETE&user.name={user}")
    return status == 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _call(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """(status, body) for 2xx/4xx/5xx, (307, Location) for a redirect; never follows it."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        if exc.code in (301, 302, 303, 307, 308):
            return exc.code, exc.headers.get("Location", "")
        return exc.code, exc.read().decode(errors="replace")
