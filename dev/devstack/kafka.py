"""A real Apache Kafka 4.x broker in KRaft combined mode (broker + controller in one JVM), on Java 17.

The jars come from Maven Central through ``dev/kafka/pom.xml``; storage is formatted with Kafka's own
``StorageTool`` and the broker runs ``kafka.Kafka``, exactly what ``kafka-server-start.sh`` does.
"""

from __future__ import annotations

import subprocess
import uuid
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

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = org.apache.kafka.server
logger.server.level = INFO
"""


def _properties(port: int, controller_port: int, data: Path) -> str:
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=1000
"""


def start(workdir: Path, port: int | None = None, attempts: int = 3) -> Service:
    """Format fresh storage under ``workdir`` and start a broker; returns once it serves metadata."""
    classpath = maven_classpath(ROOT / "dev" / "kafka", "kafka")
    java = str(Path(java_home(17), "bin", "java"))
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        cp = free_port()
        data = workdir / f"kafka-data-{p}"
        workdir.mkdir(parents=True, exist_ok=True)
        props = workdir / f"server-{p}.properties"
        props.write_text(_properties(p, cp, data))
        log = workdir / f"kafka-{p}.log"
        log4j = workdir / f"log4j2-{p}.properties"
        log4j.write_text(LOG4J2.format(log=workdir / f"kafka-server-{p}.log"))
        jvm = [
            java,
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            "-Djava.awt.headless=true",
            "-cp",
            classpath,
        ]
        # ``--cluster-id=<id>`` in one argument: an id starting with '-' is never taken for an option.
        formatted = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}", "-c", str(props)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if formatted.returncode != 0:
            last = ServiceError(f"kafka-storage format failed: {formatted.stderr.strip()[-2000:]}")
            continue
        service = spawn("kafka", [*jvm, "kafka.Kafka", str(props)], log)
        service.ports = {"kafka": p, "controller": cp}
        service.info = {"bootstrap": f"127.0.0.1:{p}"}
        try:
            bootstrap = service.info["bootstrap"]
            service.wait_ready(lambda b=bootstrap: _serves_metadata(b), timeout=90)
            return service
        except ServiceError as exc:  # port taken between free_port() and bind: try other ports
            service.stop()
            last = exc
            if port:
                break
    raise ServiceError(f"Kafka did not start: {last}")


def _cluster_id() -> str:
    """A random cluster id as Kafka's own ``Uuid.randomUuid()`` makes them: 16 random bytes, URL-safe base64,
    never starting with '-' (Kafka's tools would read such an id as an option)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _serves_metadata(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    if not port_answers(int(port), host):
        return False
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
    return bool(md.brokers)
