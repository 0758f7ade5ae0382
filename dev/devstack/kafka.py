"""A real Apache Kafka 4.x broker in KRaft combined mode (broker + controller in one JVM), on Java 17.

The jars come from Maven Central through ``dev/kafka/pom.xml``; storage is formatted with Kafka's own
``StorageTool`` and the broker runs ``kafka.Kafka``, exactly what ``kafka-server-start.sh`` does.
:func:`start_cluster` runs three such nodes as one cluster (replication factor 3) for fault tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        formatted = subprocess.run(
            format_command(jvm, _cluster_id(), props),
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


def format_command(jvm: list[str], cluster_id: str, props: Path, *extra: str) -> list[str]:
    """Kafka's ``kafka-storage.sh format`` of the node configured by ``props`` (``extra``: e.g. ``--add-scram``
    arguments). ``--cluster-id=<id>`` in one argument: an id starting with '-' is never taken for an option."""
    return [*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props), *extra]


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


# A three-node cluster for fault tests: every node a combined broker + controller, the three controllers one
# KRaft quorum (a node killed leaves a majority of two), everything replicated three times, two in sync.
CLUSTER_HEAP = ("-Xms128m", "-Xmx384m")


def _cluster_properties(node_id: int, ports: Mapping[int, tuple[int, int]], data: Path) -> str:
    """``server.properties`` of node ``node_id``; ``ports``: ``{node id: (broker port, controller port)}``."""
    port, controller_port = ports[node_id]
    voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_p, c) in sorted(ports.items()))
    replicas = len(ports)
    min_isr = min(2, replicas)
    return f"""\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
default.replication.factor={replicas}
min.insync.replicas={min_isr}
unclean.leader.election.enable=false
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=1000
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=5000
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
"""


@dataclass
class Cluster:
    """A running :func:`start_cluster` cluster. Nodes are numbered 1..n; each is one JVM (its own process
    group) that :meth:`kill`, :meth:`stop` and :meth:`start` act on by PID, on the same ports and storage."""

    workdir: Path
    ports: dict[int, tuple[int, int]]  # node id -> (broker port, controller port)
    jvm: list[str]
    nodes: dict[int, Service] = field(default_factory=dict)
    _admin: Any = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        """Every node's broker address (a client finds the live ones)."""
        return ",".join(self.address(n) for n in sorted(self.ports))

    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.ports[node_id][0]}"

    def alive(self, node_id: int) -> bool:
        service = self.nodes.get(node_id)
        return service is not None and service.alive()

    def live(self) -> list[int]:
        return [n for n in sorted(self.ports) if self.alive(n)]

    def kill(self, node_id: int) -> None:
        """SIGKILL the node's JVM (no controlled shutdown: its partitions lose their leader abruptly)."""
        service = self.nodes[node_id]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
        service.proc.wait(10)

    def stop(self, node_id: int) -> None:
        """Stop the node gracefully (SIGTERM: a controlled shutdown moves its leaders first)."""
        self.nodes[node_id].stop(timeout=30)

    def start(self, node_id: int, timeout: float = 90.0, wait: bool = True) -> None:
        """Start a stopped or killed node again; returns once the cluster sees it as a live broker (at once
        with ``wait=False``: a later ``start`` of the same node waits)."""
        if not self.alive(node_id):
            log = self.workdir / f"kafka-{node_id}.log"
            props = self.workdir / f"server-{node_id}.properties"
            service = spawn(f"kafka-{node_id}", [*self.jvm, "kafka.Kafka", str(props)], log)
            service.ports = {"kafka": self.ports[node_id][0], "controller": self.ports[node_id][1]}
            service.info = {"bootstrap": self.address(node_id)}
            self.nodes[node_id] = service
        if wait:
            self.nodes[node_id].wait_ready(
                lambda: node_id in self._brokers(self.address(node_id)), timeout=timeout
            )

    def restart(self, node_id: int) -> None:
        self.stop(node_id)
        self.start(node_id)

    def close(self) -> None:
        """Kill every node by PID: its data is thrown away, and a graceful stop of the last nodes would wait
        for a controller quorum that left with the others."""
        for node_id in sorted(self.nodes):
            if self.alive(node_id):
                self.kill(node_id)

    def admin(self) -> Any:
        """The cluster's admin client (one; its own log silenced: it sees every kill)."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        return self._admin

    def leader_of(self, topic: str, partition: int, timeout: float = 30.0, not_on: int | None = None) -> int:
        """The node that leads ``topic[partition]`` (waiting while it has none, or while it is ``not_on``)."""
        deadline = time.monotonic() + timeout
        while True:
            leader = -1
            with contextlib.suppress(Exception):
                info = self.admin().list_topics(topic=topic, timeout=5).topics[topic]
                leader = info.partitions[partition].leader
            if leader >= 0 and leader != not_on:
                return int(leader)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{topic}[{partition}] has no leader (other than {not_on}) after {timeout}s"
                )
            time.sleep(0.2)

    def in_sync(self, topic: str, partition: int) -> list[int]:
        """The partition's in-sync replicas (none while the metadata does not know it yet)."""
        info = self.admin().list_topics(topic=topic, timeout=10).topics.get(topic)
        found = info.partitions.get(partition) if info is not None and info.error is None else None
        return sorted(found.isrs) if found is not None else []

    def wait_in_sync(self, topic: str, partitions: int = 1, timeout: float = 60.0) -> None:
        """Wait until every replica of ``topic``'s partitions is in sync (after a node came back)."""
        deadline = time.monotonic() + timeout
        while any(len(self.in_sync(topic, p)) < len(self.ports) for p in range(partitions)):
            if time.monotonic() > deadline:
                raise ServiceError(f"{topic}: replicas not all in sync after {timeout}s")
            time.sleep(0.2)

    def coordinator_of(self, group: str, timeout: float = 30.0) -> int:
        """The node that is ``group``'s coordinator now."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                future = self.admin().describe_consumer_groups([group], request_timeout=5)[group]
                return int(future.result().coordinator.id)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @staticmethod
    def _brokers(bootstrap: str) -> set[int]:
        from confluent_kafka.admin import AdminClient

        host, port = bootstrap.rsplit(":", 1)
        if not port_answers(int(port), host):
            return set()
        return set(
            AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=2).brokers
        )


def start_cluster(workdir: Path, brokers: int = 3, attempts: int = 3) -> Cluster:
    """Format fresh storage for ``brokers`` combined broker + controller nodes under ``workdir`` and start them;
    returns once every node serves metadata listing all brokers."""
    classpath = maven_classpath(ROOT / "dev" / "kafka", "kafka")
    java = str(Path(java_home(17), "bin", "java"))
    workdir.mkdir(parents=True, exist_ok=True)
    log4j = workdir / "log4j2.properties"
    log4j.write_text(LOG4J2.format(log=workdir / "kafka-server.log"))
    # C1 only, serial GC: three JVMs start on two cores without fighting over JIT and GC threads.
    jvm = [
        java,
        *CLUSTER_HEAP,
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={log4j}",
        "-Djava.awt.headless=true",
        "-cp",
        classpath,
    ]
    last: Exception | None = None
    for attempt in range(attempts):
        ports = {n: (free_port(), free_port()) for n in range(1, brokers + 1)}
        cluster = Cluster(workdir=workdir / f"cluster-{attempt}", ports=ports, jvm=jvm)
        cluster.workdir.mkdir(parents=True, exist_ok=True)
        cluster_id = _cluster_id()
        formats = []
        for n in ports:
            props = cluster.workdir / f"server-{n}.properties"
            props.write_text(_cluster_properties(n, ports, cluster.workdir / f"data-{n}"))
            formats.append(
                subprocess.Popen(
                    format_command(jvm, cluster_id, props),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        errors = [p.communicate()[1].strip()[-2000:] for p in formats if p.wait() != 0]
        if errors:
            last = ServiceError(f"kafka-storage format failed: {errors[0]}")
            continue
        try:
            for n in ports:
                log = cluster.workdir / f"kafka-{n}.log"
                props = cluster.workdir / f"server-{n}.properties"
                cluster.nodes[n] = spawn(f"kafka-{n}", [*jvm, "kafka.Kafka", str(props)], log)
            for n in ports:
                address = cluster.address(n)
                cluster.nodes[n].wait_ready(
                    lambda a=address: len(Cluster._brokers(a)) == brokers,
                    timeout=120,  # type: ignore[misc]
                )
            return cluster
        except ServiceError as exc:  # a port taken between free_port() and bind: try other ports
            cluster.close()
            last = exc
    raise ServiceError(f"the Kafka cluster did not start: {last}")
