"""Exactly once under Kafka faults, on a real three-node KRaft cluster (replication factor 3,
``min.insync.replicas=2``; ``devstack.kafka.start_cluster``): a partition leader killed (SIGKILL) in the middle
of a read, the group coordinator killed during the commit, a broker restarted between runs, aborted
transactions around a leader kill. Each run is the real plan, load (S3 archive) and commit operators; a task
that fails is executed again with the same run, as Airflow's retry does. Every offset of the topic must be
in the archive exactly once, byte-exact, and committed with the run's claim."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic
from devstack import kafka
from devstack.loggen import generate
from kafka_helpers import produce

from airflow_provider_logtap.compat import AirflowFailException
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.offsets import watermarks
from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator
from airflow_provider_logtap.operators.plan import KafkaPlanRangesOperator
from airflow_provider_logtap.operators.s3 import KafkaToS3ArchiveOperator
from airflow_provider_logtap.sinks.archive import read_lines

CONN = "logtap_faults"
S3_CONN = "logtap_faults_s3"
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka.Cluster]:
    started = kafka.start_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def up(cluster: kafka.Cluster) -> kafka.Cluster:
    """The cluster with every node running (a node the previous test killed is started again)."""
    for node in cluster.ports:
        cluster.start(node)
    return cluster


@pytest.fixture
def connections(cluster: kafka.Cluster, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Kafka connection to the cluster: small fetches and a small prefetch queue, so that a read is still
    fetching when a broker dies (librdkafka would otherwise have fetched the whole test topic at once)."""
    extra = {
        "bootstrap.servers": cluster.bootstrap,
        "max.partition.fetch.bytes": 16384,
        "queued.max.messages.kbytes": 64,
        "queued.min.messages": 50,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    s3 = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{S3_CONN.upper()}",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": s3}),
    )


def create_replicated(cluster: kafka.Cluster, topic: str, partitions: int = 1) -> None:
    """A topic on all three nodes (the broker's default.replication.factor), every replica in sync."""
    futures = cluster.admin().create_topics([NewTopic(topic, partitions)], operation_timeout=30)
    for future in futures.values():
        future.result()
    cluster.wait_in_sync(topic, partitions)


@dataclass
class Tap:
    """One tap (topic, group, archive bucket) run by its real operators, in-process."""

    topic: str
    bucket: str
    s3_client: Any
    group: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    failures: list[str] = field(default_factory=list)  # "<task>: <error>" of every failed attempt

    def context(self, run: str) -> Any:
        return {"ti": SimpleNamespace(dag_id="faults", xcom_push=lambda **_kw: None), "run_id": run}

    def attempt(self, task: str, call: Callable[[], T], tries: int = 3) -> T:
        """``call()`` as Airflow runs a task with retries: a failure Airflow would not retry fails the test."""
        for left in range(tries - 1, -1, -1):
            try:
                return call()
            except AirflowFailException:
                raise
            except Exception as exc:
                self.failures.append(f"{task}: {type(exc).__name__}: {exc}")
                if left == 0:
                    raise
        raise AssertionError("unreachable")

    def run(self, run: str) -> list[dict[str, Any]]:
        """plan -> load of every range -> commit, each task retried; returns the plan's ranges."""
        ranges = self.attempt(
            "plan",
            lambda: KafkaPlanRangesOperator(
                task_id="plan", topic=self.topic, group_id=self.group, kafka_config_id=CONN
            ).execute(self.context(run)),
        )
        results = [self.attempt("load", lambda spec=spec: self.load(run, spec)) for spec in ranges]
        self.attempt(
            "commit",
            lambda: KafkaCommitRangesOperator(
                task_id="commit", ranges=ranges, group_id=self.group, results=results, kafka_config_id=CONN
            ).execute(self.context(run)),
        )
        return ranges

    def load(self, run: str, spec: dict[str, Any]) -> dict[str, Any]:
        operator = KafkaToS3ArchiveOperator(
            task_id="load",
            offset_range=spec,
            group_id=self.group,
            bucket=self.bucket,
            aws_conn_id=S3_CONN,
            max_records_per_object=400,
            batch_size=50,
            kafka_config_id=CONN,
        )
        result: dict[str, Any] = operator.execute(self.context(run))
        return result

    def archived(self, partition: int) -> list[bytes]:
        prefix = f"{self.topic}/partition={partition}/"
        pages = self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        lines: list[bytes] = []
        for key in sorted(o["Key"] for page in pages for o in page.get("Contents", ())):
            lines += read_lines(self.s3_client.get_object(Bucket=self.bucket, Key=key)["Body"].read(), "gzip")
        return lines

    def assert_exactly_once(self, sent: dict[int, list[bytes]], run: str) -> None:
        """Every record sent is archived once, in offset order, byte-exact; the group committed each
        partition's end (its high-water mark) with ``run``'s committed claim."""
        hook = KafkaRangeHook(kafka_config_id=CONN)
        committed = hook.committed(self.group, self.topic, sorted(sent))
        ends = {p: end for p, (_low, end) in watermarks(hook.admin(), self.topic, sorted(sent)).items()}
        for partition, values in sent.items():
            assert self.archived(partition) == values, (
                f"partition {partition}: lost or doubled records (failed attempts: {self.failures})"
            )
            state = committed[partition]
            assert state.offset == ends[partition], (partition, state, ends)
            assert state.claim is not None and state.claim.state == "committed"
            assert state.claim.run == f"faults/{run}" and state.claim.end == ends[partition]


def produce_in_small_batches(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    """Produce with ``acks=all`` in record batches of at most 4 KiB: a fetch returns at least one whole batch,
    so big batches would let the reader prefetch the whole partition before a fault."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "batch.size": 4096, "linger.ms": 1}
    )
    for value in values:
        producer.produce(topic, value, partition=partition)
        producer.poll(0)
    assert producer.flush(30) == 0


def lines(n: int, seed: int) -> list[bytes]:
    odd = [b"caf\xc3\xa9 \xff\xfe not utf-8", b"", b"  spaces  "]
    return [x.line for x in generate(n, seed=seed)] + odd


@dataclass
class Kill:
    """What :func:`kill_after` did: the node killed, and the records the read delivered after the kill."""

    node: int | None = None
    records_after: int = 0


def kill_after(cluster: kafka.Cluster, node: Callable[[], int], batches: int, monkeypatch: Any) -> Kill:
    """Make the next read SIGKILL ``node()`` once it has delivered ``batches`` batches (a test-side fault
    wrapper around the hook's real read)."""
    kill = Kill()
    read = KafkaRangeHook.read

    def faulty(self: KafkaRangeHook, rng: Any, **options: Any) -> Iterator[Any]:
        for i, batch in enumerate(read(self, rng, **options)):
            if kill.node is not None:
                kill.records_after += len(batch)
            elif i == batches:
                kill.node = node()
                cluster.kill(kill.node)
            yield batch

    monkeypatch.setattr(KafkaRangeHook, "read", faulty)
    return kill


@pytest.fixture
def tap(up: kafka.Cluster, connections: None, s3_client: Any, bucket: str) -> Tap:
    return Tap(topic=f"faults-{uuid.uuid4().hex[:10]}", bucket=bucket, s3_client=s3_client)


def test_leader_killed_in_the_middle_of_a_read(
    up: kafka.Cluster, tap: Tap, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_replicated(up, tap.topic)
    sent = {0: lines(2000, seed=1)}
    produce_in_small_batches(up.bootstrap, tap.topic, 0, sent[0])
    kill = kill_after(up, lambda: up.leader_of(tap.topic, 0), batches=3, monkeypatch=monkeypatch)
    tap.run("run-1")
    assert kill.node is not None and not up.alive(kill.node)
    assert up.leader_of(tap.topic, 0) != kill.node
    # More than the reader's prefetch (50 records / 64 KiB) came after the kill: from the new leader.
    assert kill.records_after > 1000, kill
    up.start(kill.node, wait=False)  # back for the next test, booting while this one checks
    tap.assert_exactly_once(sent, "run-1")


def test_coordinator_killed_during_the_commit_then_restarted_between_runs(
    up: kafka.Cluster, tap: Tap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit operator has read the claims; its commit request meets a dead coordinator (not yet fenced,
    then a new one loading the group's offsets): it lands, or fails and its retry lands, with the claim. The
    dead node is started again between runs; the next run loads exactly what came since."""
    create_replicated(up, tap.topic, partitions=2)
    sent: dict[int, list[bytes]] = {p: [] for p in range(2)}

    def more(seed: int) -> None:
        for p in sent:
            values = lines(200, seed=seed + p)
            produce(up.bootstrap, tap.topic, p, values)
            sent[p] += values

    more(10)
    killed: list[int] = []
    commit = KafkaRangeHook.commit

    def coordinator_dies_first(self: KafkaRangeHook, group_id: str, topic: str, ends: Any) -> None:
        if not killed:
            killed.append(up.coordinator_of(group_id))
            up.kill(killed[0])
        commit(self, group_id, topic, ends)

    monkeypatch.setattr(KafkaRangeHook, "commit", coordinator_dies_first)
    tap.run("run-1")
    assert killed and up.coordinator_of(tap.group) != killed[0]  # the coordinator moved
    tap.assert_exactly_once(sent, "run-1")
    up.start(killed[0], wait=False)  # a broker restarted between runs: it rejoins as a follower meanwhile
    more(20)
    tap.run("run-2")
    tap.assert_exactly_once(sent, "run-2")
    # The next run finds nothing left to load: nothing is loaded twice.
    assert all(r["start"] == r["end"] for r in tap.run("run-3"))
    tap.assert_exactly_once(sent, "run-3")


def transactions(
    cluster: kafka.Cluster, topic: str, count: int, kill_at: int, kill: Callable[[], None]
) -> list[bytes]:
    """``count`` transactions of 40 records into partition 0, every third aborted; ``kill()`` before
    transaction ``kill_at``. A transaction that fails (a leader moving under it) is aborted and made again, as
    a transactional producer does. Returns the committed values in order."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(30)
    committed: list[bytes] = []
    for t in range(count):
        if t == kill_at:
            kill()
        values = [b"tx-%03d-%03d %s" % (t, i, b"x" * (i % 7)) for i in range(40)]
        for _attempt in range(3):
            try:
                producer.begin_transaction()
                for value in values:
                    producer.produce(topic, value, partition=0)
                if t % 3 == 2:
                    producer.flush(30)
                    producer.abort_transaction(30)
                else:
                    producer.commit_transaction(30)
                    committed += values
                break
            except KafkaException as exc:
                if not (exc.args[0].txn_requires_abort() or exc.args[0].retriable()):
                    raise
                producer.abort_transaction(30)
        else:
            raise AssertionError(f"transaction {t} never committed")
    return committed


def test_aborted_transactions_around_a_leader_kill(up: kafka.Cluster, tap: Tap) -> None:
    """read_committed under faults: exactly the committed transactions' records; a transaction left open
    holds the range end (the last stable offset) back, and the read still ends there."""
    create_replicated(up, tap.topic)
    leader = up.leader_of(tap.topic, 0)
    committed = transactions(up, tap.topic, count=12, kill_at=6, kill=lambda: up.kill(leader))
    assert up.leader_of(tap.topic, 0, not_on=leader) != leader
    # An open transaction after the committed ones.
    open_tx = Producer({"bootstrap.servers": up.bootstrap, "transactional.id": f"open-{tap.topic}"})
    open_tx.init_transactions(30)
    open_tx.begin_transaction()
    pending = [b"pending-%03d" % i for i in range(25)]
    for value in pending:
        open_tx.produce(tap.topic, value, partition=0)
    assert open_tx.flush(30) == 0
    hook = KafkaRangeHook(kafka_config_id=CONN)
    ((_low, uncommitted_end),) = watermarks(hook.admin(), tap.topic, [0], "read_uncommitted").values()
    ranges = tap.run("run-1")
    assert ranges[0]["end"] == uncommitted_end - len(pending)  # the last stable offset
    assert tap.archived(0) == committed
    tap.assert_exactly_once({0: committed}, "run-1")
    # The range ends in a commit marker: the read ends there, and says so.
    said: list[str] = []
    rng = OffsetRange.from_dict(ranges[0])
    assert [v for b in hook.read(rng, report=said.append) for v in b.values] == committed
    assert said[-1].endswith("0 offsets remaining (lag to range end), ETA 0s (complete)"), said[-1]
    open_tx.commit_transaction(30)
    tap.run("run-2")
    tap.assert_exactly_once({0: committed + pending}, "run-2")
