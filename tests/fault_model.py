"""A seeded random driver of logtap's DAG tasks over real services, injecting faults, checking exactly-once.

Shared by the CI profile (``tests/integration/test_exactly_once_faults.py``) and the long profile
(``bench/exactly_once.py``). One :class:`Sequence` is one world: a topic, four group-mode taps (S3 archive,
HDFS raw, HDFS event time, OpenSearch) and one interval-mode tap (S3 archive), driven as the shipped DAGs run
their tasks (``dag_factory``): a scheduled run is plan -> one load per partition -> commit; a backfill is the
interval plan -> one load per unit; a replay is the replay plan -> loads -> finish. The operators' own
``execute`` runs in this process with a context naming the run (as ``tests/integration/test_interval_loads.py``
does), except a load killed with ``SIGKILL``, which runs in a forked child.

Faults are test-side: the real client object a sink uses (boto3 S3 client, ``hdfs`` client, the search
adapter) is wrapped so that its k-th call raises before or after really doing its I/O; the commit's offset
commit raises before, after, or after committing only one partition; a load's process is killed after a random
delay. After every step, :meth:`Sequence.check` reads every target back (S3 objects, HDFS files and dead
letters, search documents by ``_id``) and asserts, per offset: never twice; every offset below the group's
committed offset present (except in a range whose writer failed and was not yet re-run); nothing beyond what
some run wrote; no temporary file left once every task succeeded; and Kafka's committed offsets and claims equal
the model's. A failure raises :class:`InvariantError` with the seed and the steps so far.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import multiprocessing
import os
import posixpath
import random
import signal
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from types import SimpleNamespace
from typing import Any

HOUR = 3_600_000
DISORDER_S = 300
PARTITIONS = 2
MAX_RECORDS_PER_FILE = 7  # several objects/files per range: stale removal and re-cuts are exercised
#: The chunk sizes a plan draws from (None: not chunked); a replay cuts with REPLAY_CHUNK (the taps' setting).
CHUNK_CHOICES = (None, None, 4, 9, 16)
REPLAY_CHUNK = 11
UID_PREFIX = "uid="
#: About how many client calls one write of a small range makes, per target type: a fault at a random one of them.
CALLS = {"s3_archive": 4, "hdfs_raw": 10, "hdfs_event_time": 12, "search": 4}


class InvariantError(AssertionError):
    """An exactly-once invariant does not hold; the message has the seed and the steps that led there."""


class InjectedFault(RuntimeError):
    """Raised by a test-side fault wrapper (a retry of the task is expected to succeed)."""


@dataclass(frozen=True)
class Services:
    bootstrap: str
    s3_endpoint: str
    webhdfs_url: str
    webhdfs_user: str
    opensearch_url: str


SEARCH_CONN = "opensearch_faults"


def connection_env(s: Services) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variables naming the services (as a deployment may define them)."""
    host, port = s.webhdfs_url.removeprefix("http://").rsplit(":", 1)
    os_host, os_port = s.opensearch_url.removeprefix("http://").rsplit(":", 1)
    return {
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": s.bootstrap}}
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s.s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "AIRFLOW_CONN_WEBHDFS_DEFAULT": json.dumps(
            {"conn_type": "webhdfs", "host": host, "port": int(port), "login": s.webhdfs_user}
        ),
        f"AIRFLOW_CONN_{SEARCH_CONN.upper()}": json.dumps(
            {"conn_type": "opensearch", "host": os_host, "port": int(os_port)}
        ),
    }


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    """The clients' own INFO lines (every WebHDFS and search request) off while a sequence runs: they cost
    as much as the steps under pytest's log capture."""
    import logging

    loggers = [logging.getLogger(n) for n in ("hdfs", "opensearch", "botocore", "urllib3")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def variables_in_memory() -> Iterator[dict[str, str]]:
    """The plan ledger's Airflow Variables held in a dict (as the interval-load tests do)."""
    from airflow_provider_logtap import ledger

    store: dict[str, str] = {}
    cls = ledger._Variables
    saved = {name: cls.__dict__[name] for name in ("get", "set", "delete")}
    cls.get = lambda _self, key, default=None: store.get(key, default)  # type: ignore[method-assign,assignment]
    cls.set = lambda _self, key, value, description: store.update({key: value})  # type: ignore[method-assign,assignment]
    cls.delete = lambda _self, key: store.pop(key, None)  # type: ignore[method-assign,assignment]
    try:
        yield store
    finally:
        for name, value in saved.items():
            setattr(cls, name, value)


# --- faults ---------------------------------------------------------------------------------------------


class Trigger:
    """Fires once, at the ``at``-th call through any wrapper sharing it: before or after the real call."""

    def __init__(self, at: int, when: str, method: str | None = None) -> None:
        self.at, self.when, self.method = at, when, method  # method: count only the calls of this one
        self.calls = 0
        self.fired: str | None = None
        self.lock = threading.Lock()

    def call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.method is not None and name != self.method:
            return fn(*args, **kwargs)
        with self.lock:
            self.calls += 1
            fire = self.calls == self.at and self.fired is None
            if fire:
                self.fired = name
        if fire and self.when == "before":
            raise InjectedFault(f"injected before call {self.at} ({name})")
        result = fn(*args, **kwargs)
        if fire:
            raise InjectedFault(f"injected after call {self.at} ({name}): its I/O was done")
        return result


class Faulty:
    """A proxy of a real client: every method call goes through the trigger (the I/O really happens)."""

    def __init__(self, real: Any, trigger: Trigger) -> None:
        self._real, self._trigger = real, trigger

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if not callable(value):
            return value
        return lambda *a, **kw: self._trigger.call(name, value, *a, **kw)


def wrap_sink(sink: Any, trigger: Trigger) -> Any:
    """The sink with its client (S3, search) or its WebHDFS client (HDFS sinks) behind the trigger."""
    if hasattr(sink, "files"):
        sink.files.client = Faulty(sink.files.client, trigger)
    else:
        sink.client = Faulty(sink.client, trigger)
    return sink


@contextlib.contextmanager
def commit_fault(kind: str) -> Iterator[list[str]]:
    """The group offset commit raises ``before`` committing, ``after`` committing, or ``partial``: after
    committing the lowest partition only. Yields a list that holds the kind once it fired."""
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    real = KafkaRangeHook.commit
    fired: list[str] = []

    def commit(self: Any, group_id: str, topic: str, ends: dict[int, tuple[int, str]]) -> None:
        if not ends:
            return real(self, group_id, topic, ends)
        fired.append(kind)
        if kind == "before":
            raise InjectedFault("injected before the offset commit")
        if kind == "partial":
            first = min(ends)
            real(self, group_id, topic, {first: ends[first]})
            raise InjectedFault(f"injected after committing partition {first} only")
        real(self, group_id, topic, ends)
        raise InjectedFault("injected after the offset commit")

    KafkaRangeHook.commit = commit  # type: ignore[method-assign]
    try:
        yield fired
    finally:
        KafkaRangeHook.commit = real  # type: ignore[method-assign]


def _child(fn: Callable[[], Any]) -> None:
    fn()


def run_killable(fn: Callable[[], Any], delay: float) -> str:
    """Run ``fn`` in a forked child and SIGKILL it after ``delay`` seconds: ``killed``, or ``done`` /
    ``failed`` when it ended first."""
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # fork of a threaded process: the child only loads
        proc = ctx.Process(target=_child, args=(fn,), daemon=True)
        proc.start()
    proc.join(delay)
    if proc.is_alive():
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        return "killed"
    return "done" if proc.exitcode == 0 else "failed"


# --- the world --------------------------------------------------------------------------------------------


@dataclass
class Record:
    partition: int
    offset: int
    timestamp: int  # Kafka timestamp
    event_ms: int | None  # the line's own time (None: unparseable)
    value: bytes


def _line(uid: str, event_ms: int | None, rnd: random.Random) -> bytes:
    if event_ms is None:
        return f"corrupt line without any time {UID_PREFIX}{uid}".encode()
    moment = datetime.fromtimestamp(event_ms / 1000, tz=timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
    ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
    status = rnd.choice([200, 200, 200, 304, 404, 500])
    return (
        f'{ip} - - [{moment}] "GET /p?{UID_PREFIX}{uid} HTTP/1.1" {status} {rnd.randrange(10, 9999)} '
        f'"-" "Mozilla/5.0 (faults)"'
    ).encode()


def uid_of(line: bytes | str) -> str:
    text = line.decode() if isinstance(line, bytes) else line
    i = text.index(UID_PREFIX) + len(UID_PREFIX)
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] == "-"):
        j += 1
    return text[i:j]


@dataclass
class Load:
    """One load task instance of a run (the state of its last attempt)."""

    spec: dict[str, Any]
    state: str = "none"  # success, skipped, failed


@dataclass
class Run:
    tap: str
    run_id: str
    ranges: list[dict[str, Any]] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    commit: str = "none"  # none, success, skipped, failed, upstream_failed


@dataclass
class Claim:
    run_id: str
    start: int
    end: int
    state: str


@dataclass
class Stats:
    sequences: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    offsets_checked: int = 0
    checks: int = 0
    duplicates: int = 0
    losses: int = 0
    chunks: int = 0  # load tasks beyond one per range: how much the plans were cut into chunks

    def line(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        return (
            f"sequences {self.sequences}, steps {sum(self.steps.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.steps.items()))}), faults injected "
            f"{sum(self.faults.values())} ({faults}), checks {self.checks}, offsets checked "
            f"{self.offsets_checked}, extra chunk loads {self.chunks}, duplicates {self.duplicates}, "
            f"losses {self.losses}"
        )


class Sequence:
    """One seeded sequence of steps over its own topic, taps and targets."""

    def __init__(
        self, services: Services, seed: int, stats: Stats, log: Callable[[str], None] = print
    ) -> None:
        from airflow_provider_logtap.taps import Tap
        from airflow_provider_logtap.targets import (
            HdfsEventTimeTarget,
            HdfsRawTarget,
            S3ArchiveTarget,
            SearchTarget,
            TargetModel,
        )

        self.services, self.seed, self.stats, self.log = services, seed, stats, log
        self.rnd = random.Random(seed)
        tag = self.tag = uuid.uuid4().hex[:8]
        self.topic = f"faults-{tag}"
        self.bucket = f"logtap-faults-{tag}"
        self.base = f"/logtap-faults/{tag}"
        targets: dict[str, TargetModel] = {
            "s3": S3ArchiveTarget(
                bucket=self.bucket, prefix="live", max_records_per_object=MAX_RECORDS_PER_FILE
            ),
            "raw": HdfsRawTarget(base_path=f"{self.base}/raw", max_records_per_file=MAX_RECORDS_PER_FILE),
            "et": HdfsEventTimeTarget(base_path=f"{self.base}/et", max_bad_ratio=None),
            "search": SearchTarget(
                search_conn_id=SEARCH_CONN, index_prefix=f"faults-{tag}", max_bad_ratio=None
            ),
        }
        # Every plan cuts its ranges with a chunk size drawn for it (or none): chunks of one run, and runs cut
        # differently, over the same targets; the replays cut with the tap's own.
        self.taps = {
            name: Tap(
                name=f"f{tag}_{name}", topic=self.topic, target=t, schedule=None, chunk_records=REPLAY_CHUNK
            )
            for name, t in targets.items()
        }
        self.interval_tap = Tap(
            name=f"f{tag}_interval",
            topic=self.topic,
            mode="interval",
            schedule="@hourly",
            max_disorder_seconds=DISORDER_S,
            target=S3ArchiveTarget(
                bucket=self.bucket, prefix="interval", max_records_per_object=MAX_RECORDS_PER_FILE
            ),
        )
        self.records: list[list[Record]] = [[] for _ in range(PARTITIONS)]
        self.by_uid: dict[str, Record] = {}
        # Kafka timestamps go forward from 12 h ago (the broker's 7-day retention keeps them).
        self.clock = (int(time.time() * 1000) // HOUR - 12) * HOUR + 1_000
        self.first_hour = self.clock // HOUR
        self.runs: dict[str, list[Run]] = {name: [] for name in self.taps}
        self.claims: dict[str, dict[int, Claim]] = {name: {} for name in self.taps}
        self.committed: dict[str, dict[int, int]] = {name: {} for name in self.taps}
        self.uncertain: dict[str, list[tuple[int, int, int]]] = {name: [] for name in self.taps}
        self.written_end: dict[str, dict[int, int]] = {name: {} for name in self.taps}
        self.full_every = 1
        self.steps_done = 0
        self.kill_delay = (0.02, 1.2)  # seconds before a load's process is killed
        self.intervals: dict[int, dict[str, Any]] = {}  # hour -> {"state", "loads": [Load]}
        self.history: list[str] = []
        self.replays = 0
        self._s3: Any = None
        self._hdfs: Any = None
        self._search: Any = None
        self._consumers: dict[str, Any] = {}
        self.touched: set[str] = set()  # the targets the current step wrote (checked after it)
        self._cache: dict[Any, list[str]] = {}
        self.temps = 0  # temporary files / multipart uploads seen by the last holdings()
        self.last_planned: dict[str, Run | None] = dict.fromkeys(self.taps)

    # --- set-up and clients ---

    def setup(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        admin = AdminClient({"bootstrap.servers": self.services.bootstrap})
        for f in admin.create_topics([NewTopic(self.topic, PARTITIONS, 1)], operation_timeout=30).values():
            f.result()
        self.s3.create_bucket(Bucket=self.bucket)
        self.hdfs.makedirs(self.base)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.services.s3_endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._s3

    @property
    def hdfs(self) -> Any:
        if self._hdfs is None:
            from hdfs import InsecureClient

            self._hdfs = InsecureClient(self.services.webhdfs_url, user=self.services.webhdfs_user)
        return self._hdfs

    @property
    def search(self) -> Any:
        if self._search is None:
            from opensearchpy import OpenSearch

            self._search = OpenSearch(self.services.opensearch_url)
        return self._search

    def note(self, text: str) -> None:
        self.history.append(text)
        self.log(f"  [{self.seed}:{len(self.history)}] {text}")

    def fail(self, problem: str) -> None:
        steps = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.history))
        raise InvariantError(f"seed {self.seed}: {problem}\nsteps:\n{steps}")

    # --- context and operators ---

    def context(self, dag_id: str, run_id: str, xcom: dict[str, Any], params: Any = None) -> Any:
        ti = SimpleNamespace(dag_id=dag_id, xcom_push=lambda key, value: xcom.update({key: value}))
        return {"ti": ti, "run_id": run_id, "params": params or {}}

    def load_operator(self, tap: Any, spec: dict[str, Any], trigger: Trigger | None) -> Any:
        from airflow_provider_logtap.compat import import_string

        cls = import_string(tap.target.operator)
        if trigger is not None:
            base = cls

            def make_sink(op: Any, context: Any) -> Any:
                return wrap_sink(base.make_sink(op, context), trigger)

            cls = type(f"Faulty{base.__name__}", (base,), {"make_sink": make_sink})
        return cls(
            task_id="load",
            offset_range=spec,
            group_id=tap.group if tap.mode == "group" else None,
            on_data_loss=tap.on_data_loss,
            **tap.target.settings(),
        )

    def run_load(self, tap: Any, spec: dict[str, Any], run_id: str, fault: str | None) -> str:
        """One attempt of a load task: ``success``, ``skipped`` or ``failed`` (a fault fired)."""
        from airflow_provider_logtap.compat import AirflowSkipException

        context = self.context(tap.dag_id, run_id, {})
        self.touched.add(next((n for n, t in self.taps.items() if t is tap), "interval"))
        if fault == "kill9":
            op = self.load_operator(tap, spec, None)

            def body() -> None:
                with contextlib.suppress(AirflowSkipException):
                    op.execute(context)

            outcome = run_killable(body, self.rnd.uniform(*self.kill_delay))
            if outcome == "killed":
                self.stats.faults["kill9"] += 1
                return "failed"
            assert outcome == "done", f"the forked load failed by itself: {spec}"
            # It ended before the kill: what did it decide? (A superseded load skips.)
            return "skipped" if self.would_skip(tap, spec, run_id) else "success"
        trigger = None
        if fault in ("before", "after"):
            trigger = Trigger(self.rnd.randint(1, CALLS[tap.target.type]), fault)
        op = self.load_operator(tap, spec, trigger)
        try:
            op.execute(context)
        except AirflowSkipException:
            return "skipped"
        except InjectedFault:
            assert trigger is not None and trigger.fired is not None
            self.stats.faults[f"{tap.target.type}:{fault}_{trigger.fired}"] += 1
            return "failed"
        return "success"

    def would_skip(self, tap: Any, spec: dict[str, Any], run_id: str) -> bool:
        from airflow_provider_logtap.core.chunks import whole_range

        if tap.mode != "group":
            return False
        name = next(n for n, t in self.taps.items() if t is tap)
        claim = self.claims[name].get(spec["partition"])
        whole = whole_range(spec)  # a chunk writes while its run holds the claim on the partition's range
        return claim is not None and (claim.run_id, claim.start, claim.end) != (
            run_id,
            whole.start,
            whole.end,
        )

    # --- model ---

    def high_watermarks(self) -> dict[int, int]:
        return {p: len(rs) for p, rs in enumerate(self.records)}

    def produce(self, n: int) -> None:
        from confluent_kafka import Producer

        # In order per partition without the idempotent producer: librdkafka 2.x crashed (SIGSEGV in rdk:main)
        # retrying InitProducerId on a broker whose coordinator was still loading, in the bench's first minute.
        producer = Producer(
            {
                "bootstrap.servers": self.services.bootstrap,
                "enable.idempotence": False,
                "acks": "all",
                "max.in.flight.requests.per.connection": 1,
            }
        )
        pending: list[Record] = []
        for _ in range(n):
            p = self.rnd.randrange(PARTITIONS)
            self.clock += self.rnd.randint(5_000, 90_000)
            bad = self.rnd.random() < 0.08
            event = None if bad else self.clock + self.rnd.randint(-3, 3) * HOUR
            uid = uuid.uuid4().hex[:12]
            value = _line(uid, event, self.rnd)
            rec = Record(partition=p, offset=-1, timestamp=self.clock, event_ms=event, value=value)
            pending.append(rec)
            self.by_uid[uid] = rec
            producer.produce(self.topic, value, partition=p, timestamp=self.clock)
        assert producer.flush(30) == 0
        for rec in pending:  # one producer, one request in flight: offsets follow the order per partition
            rec.offset = len(self.records[rec.partition])
            self.records[rec.partition].append(rec)
        self.note(f"produce {n} records (high watermarks {self.high_watermarks()})")

    # --- steps: group mode ---

    def scheduled_run(self, name: str, fault: str | None = None, retry: bool = True) -> Run:
        run = Run(tap=name, run_id=f"scheduled__{len(self.runs[name]) + 1:03d}")
        self.runs[name].append(run)
        self.plan(run)
        self.note(f"{name}: scheduled run {run.run_id} plans {self._spans(run.ranges)} (fault {fault})")
        self.loads_and_commit(run, fault, retry)
        return run

    def plan(self, run: Run) -> None:
        from airflow_provider_logtap.core.chunks import whole_ranges
        from airflow_provider_logtap.operators.plan import KafkaPlanRangesOperator

        tap = self.taps[run.tap]
        op = KafkaPlanRangesOperator(
            task_id="plan",
            topic=tap.topic,
            group_id=tap.group,
            start="committed",
            end="high_watermark",
            chunk_records=self.rnd.choice(CHUNK_CHOICES),
        )
        specs = op.execute(self.context(tap.dag_id, run.run_id, {}))
        ranges = [r.to_dict() for r in whole_ranges(specs)]
        self.stats.chunks += len(specs) - len(ranges)
        hw = self.high_watermarks()
        for r in ranges:
            expected = (self.committed[run.tap].get(r["partition"], 0), hw[r["partition"]])
            if (r["start"], r["end"]) != expected:
                self.fail(f"{run.tap}: {run.run_id} planned {r}, the model expects {expected}")
            self.claims[run.tap][r["partition"]] = Claim(run.run_id, r["start"], r["end"], "planned")
        run.ranges = specs  # what the commit task is given: the plan's output
        run.loads = [Load(spec=s) for s in specs]
        run.commit = "none"
        self.last_planned[run.tap] = run

    def loads_and_commit(self, run: Run, fault: str | None, retry: bool, only: int | None = None) -> None:
        """The run's loads (``only``: one of them, a cleared task) then, when none failed, its commit. One
        ``fault`` goes into one load (``before``/``after``/``kill9``) or the commit (``commit_*``); with
        ``retry`` the failed task is run again at once (Airflow's retries)."""
        loads = run.loads if only is None else [run.loads[only]]
        victim = self.rnd.randrange(len(loads)) if fault and not fault.startswith("commit_") else None
        for i, load in enumerate(loads):
            self.attempt_load(run, load, fault if i == victim else None)
            if load.state == "failed" and retry:
                self.note(f"{run.tap}: retry load {load.spec['partition']} of {run.run_id}")
                self.attempt_load(run, load, None)
        if any(ld.state == "failed" for ld in run.loads):
            run.commit = "upstream_failed"
            return
        self.attempt_commit(
            run, fault.removeprefix("commit_") if fault and fault.startswith("commit_") else None
        )
        if run.commit == "failed" and retry:
            self.note(f"{run.tap}: retry commit of {run.run_id}")
            self.attempt_commit(run, None)

    def attempt_load(self, run: Run, load: Load, fault: str | None) -> None:
        tap, spec = self.taps[run.tap], load.spec
        expect_skip = self.would_skip(tap, spec, run.run_id)
        state = self.run_load(tap, spec, run.run_id, fault)
        if state != "failed" and (state == "skipped") != expect_skip:
            self.fail(
                f"{run.tap}: load {spec} of {run.run_id} was {state}; the claims say skip={expect_skip}"
            )
        p, s, e = spec["partition"], spec["start"], spec["end"]
        if state == "failed" and s < e and not expect_skip:
            self.uncertain[run.tap].append((p, s, e))
        if state in ("failed", "success") and s < e and not expect_skip:
            self.written_end[run.tap][p] = max(self.written_end[run.tap].get(p, 0), e)
        if state == "success":  # files starting in [s, e) are this write's now
            self.uncertain[run.tap] = [
                u for u in self.uncertain[run.tap] if not (u[0] == p and s <= u[1] and u[2] <= e)
            ]
        load.state = state

    def attempt_commit(self, run: Run, fault: str | None) -> None:
        from airflow_provider_logtap.compat import AirflowSkipException
        from airflow_provider_logtap.core.chunks import whole_ranges
        from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator

        tap = self.taps[run.tap]
        op = KafkaCommitRangesOperator(task_id="commit", ranges=run.ranges, results=[], group_id=tap.group)
        wholes = [w.to_dict() for w in whole_ranges(run.ranges)]
        mine = sorted(
            r["partition"]
            for r in wholes
            if (c := self.claims[run.tap].get(r["partition"])) is not None
            and (c.run_id, c.start, c.end, c.state) == (run.run_id, r["start"], r["end"], "planned")
        )
        context = self.context(tap.dag_id, run.run_id, {})
        faulty: contextlib.AbstractContextManager[list[str]] = (
            commit_fault(fault) if fault else contextlib.nullcontext([])
        )
        with faulty as fired:
            try:
                result = op.execute(context)
                run.commit, done = "success", mine
                if sorted(int(p) for p in result["committed"]) != mine:
                    self.fail(
                        f"{run.tap}: commit of {run.run_id} committed {result['committed']}, not {mine}"
                    )
            except AirflowSkipException:
                run.commit, done = "skipped", []
            except InjectedFault:
                run.commit = "failed"
                self.stats.faults[f"commit:{fault}"] += 1
                done = {"before": [], "after": mine, "partial": mine[:1]}[fired[0]]
        for r in wholes:
            if r["partition"] in done:
                self.claims[run.tap][r["partition"]] = Claim(run.run_id, r["start"], r["end"], "committed")
                self.committed[run.tap][r["partition"]] = r["end"]
        if run.commit == "skipped" and mine:
            self.fail(f"{run.tap}: commit of {run.run_id} skipped though it holds the claims of {mine}")

    def clear_task(self, name: str, fault: str | None) -> None:
        runs = [r for r in self.runs[name] if r.loads]
        if not runs:
            return
        run = self.rnd.choice(runs)
        i = self.rnd.randrange(len(run.loads))
        committed_run = run.commit == "success"
        self.note(
            f"{name}: clear load {run.loads[i].spec['partition']} (+ commit) of {run.run_id} (fault {fault})"
        )
        # A cleared task of a committed run is retried until it succeeds (see the report on failed clears).
        self.loads_and_commit(run, fault, retry=committed_run or self.rnd.random() < 0.6, only=i)

    def clear_run(self, name: str, fault: str | None) -> None:
        if not self.runs[name]:
            return
        run = self.rnd.choice(self.runs[name])
        self.plan(run)
        self.note(f"{name}: clear run {run.run_id}: re-plans {self._spans(run.ranges)} (fault {fault})")
        self.loads_and_commit(run, fault, retry=self.rnd.random() < 0.6)

    def retry_failed(self) -> bool:
        """Run a failed task again (and, once no load of its run failed, the run's commit)."""
        failed = [
            (run, i)
            for runs in self.runs.values()
            for run in runs
            for i, ld in enumerate(run.loads)
            if ld.state == "failed"
        ]
        failed_commits = [r for runs in self.runs.values() for r in runs if r.commit == "failed"]
        if failed and (not failed_commits or self.rnd.random() < 0.7):
            run, i = self.rnd.choice(failed)
            self.note(f"{run.tap}: retry failed load {run.loads[i].spec['partition']} of {run.run_id}")
            self.loads_and_commit(run, None, retry=True, only=i)
            return True
        if failed_commits:
            run = self.rnd.choice(failed_commits)
            self.note(f"{run.tap}: retry failed commit of {run.run_id}")
            self.attempt_commit(run, None)
            return True
        return False

    # --- steps: interval mode ---

    def complete_hours(self) -> list[int]:
        """Hours whose every partition has a record stamped after the hour's end plus max_disorder."""
        if any(not rs for rs in self.records):
            return []
        newest = min(rs[-1].timestamp for rs in self.records)
        last = (newest - DISORDER_S * 1000) // HOUR  # the hour holding newest - disorder is not complete
        return list(range(self.first_hour, last))

    def backfill(self, hour: int, fault: str | None, retry: bool) -> None:
        from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator

        tap = self.interval_tap
        run_id = f"backfill__{hour}"
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=tap.topic,
            interval_start=hour * HOUR,
            interval_end=(hour + 1) * HOUR,
            max_disorder=tap.max_disorder_seconds,
            chunk_records=self.rnd.choice(CHUNK_CHOICES),
        )
        specs = plan.execute(self.context(tap.dag_id, run_id, {}))
        self.stats.chunks += sum(1 for s in specs if "chunk" in s)
        entry = self.intervals.setdefault(hour, {"state": "none"})
        entry["loads"] = [Load(spec=s) for s in specs]
        self.note(f"interval: backfill hour {hour - self.first_hour}, {len(specs)} units (fault {fault})")
        self.interval_loads(hour, fault, retry)

    def interval_loads(self, hour: int, fault: str | None, retry: bool, only: int | None = None) -> None:
        entry = self.intervals[hour]
        loads = entry["loads"] if only is None else [entry["loads"][only]]
        victim = self.rnd.randrange(len(loads)) if fault else None
        for i, load in enumerate(loads):
            load.state = self.run_load(
                self.interval_tap, load.spec, f"backfill__{hour}", fault if i == victim else None
            )
            if load.state == "failed" and retry:
                self.note(
                    f"interval: retry unit {load.spec['partition']}:[{load.spec['start']}, {load.spec['end']})"
                )
                load.state = self.run_load(self.interval_tap, load.spec, f"backfill__{hour}", None)
        entry["state"] = "failed" if any(ld.state == "failed" for ld in entry["loads"]) else "success"

    def retry_interval(self) -> bool:
        failed = [
            (h, i)
            for h, e in self.intervals.items()
            for i, ld in enumerate(e["loads"])
            if ld.state == "failed"
        ]
        if not failed:
            return False
        hour, i = self.rnd.choice(failed)
        self.note(f"interval: retry failed unit {i} of hour {hour - self.first_hour}")
        self.interval_loads(hour, None, retry=True, only=i)
        return True

    # --- steps: replay ---

    def replay(self, name: str, fault: str | None) -> None:
        from airflow_provider_logtap.operators.replay import (
            KafkaReplayFinishOperator,
            KafkaReplayPlanOperator,
        )
        from airflow_provider_logtap.operators.target import KafkaToTargetOperator
        from airflow_provider_logtap.targets import target_from_dict

        tap = self.taps[name]
        if len(self.committed[name]) < PARTITIONS:
            return
        before = self.kafka_committed(name)[name]
        self.replays += 1
        target_name = f"r{self.replays}"
        run_id = f"manual__{self.tag}_replay{self.replays}"  # unique, as Airflow's run ids of one DAG are
        xcom: dict[str, Any] = {}
        params = {
            "tap": tap.name,
            "from": "earliest",
            "to": "committed",
            "target_name": target_name,
            "dry_run": False,
        }
        context = self.context("logtap_replay", run_id, xcom, params)
        specs = KafkaReplayPlanOperator(task_id="plan", taps=list(self.taps.values())).execute(context)
        replay = xcom["replay"]
        self.note(f"{name}: replay {self._spans(specs)} into {replay['where']} (fault {fault})")
        victim = self.rnd.randrange(len(specs)) if fault else None
        for i, spec in enumerate(specs):
            trigger = (
                Trigger(self.rnd.randint(1, CALLS[tap.target.type]), fault)
                if i == victim and fault in ("before", "after")
                else None
            )
            cls: Any = KafkaToTargetOperator
            if trigger is not None:

                def make_sink(op: Any, ctx: Any, t: Trigger = trigger) -> Any:
                    return wrap_sink(KafkaToTargetOperator.make_sink(op, ctx), t)

                cls = type("FaultyKafkaToTargetOperator", (KafkaToTargetOperator,), {"make_sink": make_sink})
            op = cls(task_id="load", replay=replay, offset_range=spec)
            if i == victim and fault == "kill9":
                outcome = run_killable(partial(op.execute, context), self.rnd.uniform(*self.kill_delay))
                if outcome == "killed":
                    self.stats.faults["kill9"] += 1
            else:
                try:
                    op.execute(context)
                    continue
                except InjectedFault:
                    assert trigger is not None
                    self.stats.faults[f"{tap.target.type}:{fault}_{trigger.fired}:replay"] += 1
            KafkaToTargetOperator(task_id="load", replay=replay, offset_range=spec).execute(context)  # retry
        KafkaReplayFinishOperator(task_id="finish", replay=replay, results=[]).execute(context)
        if self.kafka_committed(name)[name] != before:
            self.fail(f"{name}: the replay moved the live group's offsets or claims")
        ends = {s["partition"]: s["chunk"]["end"] if "chunk" in s else s["end"] for s in specs}
        if ends != self.committed[name]:
            self.fail(
                f"{name}: the replay planned up to {ends}, the group had committed {self.committed[name]}"
            )
        self.temps = 0
        copy = self.holdings(target_from_dict(replay["target"]))
        if self.temps:
            self.fail(f"{name}: the replay left {self.temps} temporary files")
        live = self.holdings(tap.target)
        wanted = {(p, o) for p, e in ends.items() for o in range(e)}
        self.compare(f"{name} replay {target_name}", copy, wanted, set())
        if {k for k in live if k in wanted} != set(copy):
            self.fail(f"{name}: the replay differs from the live target in the replayed range")

    # --- reading the targets ---

    def _records_of_lines(self, lines: list[str]) -> list[tuple[int, int]]:
        out = []
        for line in lines:
            rec = self.by_uid[uid_of(line)]
            out.append((rec.partition, rec.offset))
        return out

    def holdings(self, target: Any) -> Counter[tuple[int, int]]:
        """``(partition, offset)`` -> how many times the target holds it (visible files, documents, dead
        letters); temporary files are counted in ``self.temps``."""
        kind = target.type
        if kind == "s3_archive":
            return self._s3_holdings(target)
        if kind == "hdfs_raw":
            return self._hdfs_holdings(f"{target.base_path}/{self.topic}")
        if kind == "hdfs_event_time":
            found = self._hdfs_holdings(f"{target.base_path}/{self.topic}", event_time=True)
            found.update(
                self._hdfs_holdings(f"{target.base_path}/_dead_letter/{self.topic}", dead_letters=True)
            )
            return found
        return self._search_holdings(target.index_prefix)

    def _s3_holdings(self, target: Any) -> Counter[tuple[int, int]]:
        prefix = f"{target.prefix}/{self.topic}/"
        found: Counter[tuple[int, int]] = Counter()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                key = (obj["Key"], obj["ETag"])
                if key not in self._cache:
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    self._cache[key] = gzip.decompress(body).decode().splitlines()
                found.update(self._records_of_lines(self._cache[key]))
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        self.temps += len(uploads)
        return found

    def _hdfs_holdings(
        self, root: str, event_time: bool = False, dead_letters: bool = False
    ) -> Counter[tuple[int, int]]:
        found: Counter[tuple[int, int]] = Counter()
        if self.hdfs.status(root, strict=False) is None:
            return found
        for directory, _dirs, files in self.hdfs.walk(root, status=True):
            path, _ = directory
            if "/_logtap" in path:
                continue
            for name, status in files:
                if name.startswith("."):
                    self.temps += 1
                    continue
                full = posixpath.join(path, name)
                key = (full, status["fileId"], status["modificationTime"], status["length"])
                if key not in self._cache:
                    with self.hdfs.read(full) as reader:
                        self._cache[key] = reader.read().decode().splitlines()
                lines = self._cache[key]
                if dead_letters:
                    for doc in map(json.loads, lines):
                        rec = self.by_uid[uid_of(doc["line"])]
                        if (doc["partition"], doc["offset"]) != (rec.partition, rec.offset):
                            self.fail(f"dead letter {doc} names another offset than its line's")
                        found[(rec.partition, rec.offset)] += 1
                    continue
                pairs = self._records_of_lines(lines)
                if event_time:
                    for p, o in pairs:
                        rec = self.records[p][o]
                        assert rec.event_ms is not None
                        hour = datetime.fromtimestamp(rec.event_ms / 1000, tz=timezone.utc).strftime(
                            "dt=%Y-%m-%d/hour=%H"
                        )
                        if not path.endswith(hour):
                            self.fail(f"offset {p}:{o} of event time {hour} is in {path}")
                found.update(pairs)
        return found

    def _search_holdings(self, prefix: str) -> Counter[tuple[int, int]]:
        found: Counter[tuple[int, int]] = Counter()
        lenient = {"ignore_unavailable": "true", "allow_no_indices": "true"}
        for pattern in (f"{prefix}-*", f"{prefix}.dead-letter"):
            self.search.indices.refresh(index=pattern, params=lenient)
            body = {"query": {"match_all": {}}, "_source": False, "size": 10_000}
            hits = self.search.search(index=pattern, body=body, params=lenient)["hits"]["hits"]
            assert len(hits) < 10_000, "more documents than one search returns"
            for hit in hits:
                topic, p, o = hit["_id"].rsplit("-", 2)
                assert topic == self.topic, hit
                found[(int(p), int(o))] += 1
        return found

    def kafka_committed(self, *names: str) -> dict[str, dict[int, tuple[int | None, str | None]]]:
        """The taps' groups' committed offsets and metadata, as the broker has them (read by the test's own
        consumers, one per group, kept for the sequence; never subscribed, so they never join the group).
        Not the admin API's list_consumer_group_offsets: librdkafka 2.x crashed (SIGSEGV in rdk:main) on it
        while a fresh broker's offsets coordinator was still loading."""
        from confluent_kafka import Consumer

        from airflow_provider_logtap.kafka.offsets import committed_offsets

        out: dict[str, dict[int, tuple[int | None, str | None]]] = {}
        for name in names:
            group = self.taps[name].group
            if group not in self._consumers:
                self._consumers[group] = Consumer(
                    {
                        "bootstrap.servers": self.services.bootstrap,
                        "group.id": group,
                        "enable.auto.commit": False,
                    }
                )
            state = committed_offsets(self._consumers[group], self.topic, range(PARTITIONS))  # retries
            out[name] = {p: (c.offset, c.metadata or None) for p, c in state.items()}
        return out

    def close(self) -> None:
        """Close the sequence's own Kafka clients."""
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()

    # --- the invariant ---

    def compare(
        self,
        what: str,
        found: Counter[tuple[int, int]],
        exact: set[tuple[int, int]],
        maybe: set[tuple[int, int]],
    ) -> None:
        self.stats.offsets_checked += len(exact) + len(found)
        twice = sorted(k for k, n in found.items() if n > 1)
        missing = sorted(exact - set(found))
        extra = sorted(set(found) - exact - maybe)
        if twice or missing or extra:
            self.stats.duplicates += len(twice)
            self.stats.losses += len(missing)
            self.fail(
                f"{what}: {len(twice)} offsets twice {twice[:10]}, {len(missing)} missing {missing[:10]}, "
                f"{len(extra)} never written {extra[:10]}"
            )

    def check(self, targets: set[str] | None = None) -> None:
        """The invariant in ``targets`` (default: every target; ``interval`` is the interval tap's), and every
        group's committed offsets and claims in Kafka equal to the model's."""
        from airflow_provider_logtap.core.claims import Claim as KafkaClaim

        self.stats.checks += 1
        targets = {*self.taps, "interval"} if targets is None else targets
        kafka = self.kafka_committed(*self.taps)
        for name, tap in self.taps.items():
            committed = self.committed[name]
            for p in range(PARTITIONS):
                offset, metadata = kafka[name][p]
                claim = self.claims[name].get(p)
                decoded = KafkaClaim.decode(metadata)
                want = None if claim is None else (claim.run_id, claim.start, claim.end, claim.state)
                got = (
                    None
                    if decoded is None
                    else (decoded.run.split("/", 1)[1], decoded.start, decoded.end, decoded.state)
                )
                if (offset or 0) != committed.get(p, 0) or got != want:
                    self.fail(
                        f"{name}[{p}]: Kafka has offset {offset} claim {got}; the model {committed.get(p)} {want}"
                    )
            if name not in targets:
                continue
            self.temps = 0
            found = self.holdings(tap.target)
            uncertain = {(p, o) for p, s, e in self.uncertain[name] for o in range(s, e)}
            exact = {(p, o) for p, c in committed.items() for o in range(c)} - uncertain
            maybe = uncertain | {
                (p, o) for p, e in self.written_end[name].items() for o in range(committed.get(p, 0), e)
            }
            last = self.last_planned[name]
            finished = not self.uncertain[name] and last is not None and last.commit == "success"
            # Every run finished: exactly what the group committed, and no temporary file.
            self.compare(name, found, exact, set() if finished else maybe)
            if finished and self.temps:
                self.fail(f"{name}: {self.temps} temporary files or multipart uploads left after success")
        if "interval" not in targets:
            return
        self.temps = 0
        found = self.holdings(self.interval_tap.target)
        done = {h for h, e in self.intervals.items() if e["state"] == "success"}
        tried = set(self.intervals)
        exact, maybe = set(), set()
        for rs in self.records:
            for rec in rs:
                hour = rec.timestamp // HOUR
                if hour in done:
                    exact.add((rec.partition, rec.offset))
                elif hour in tried:
                    maybe.add((rec.partition, rec.offset))
        self.compare("interval", found, exact, maybe)
        if not maybe and self.temps:
            self.fail(f"interval: {self.temps} multipart uploads left")

    # --- driving ---

    def _spans(self, ranges: list[dict[str, Any]]) -> str:
        return " ".join(f"{r['partition']}:[{r['start']},{r['end']})" for r in ranges)

    def load_fault(self) -> str | None:
        return self.rnd.choice([None, None, "before", "after", "kill9"])

    def step(self) -> None:
        rnd = self.rnd
        choices = (
            ["produce"] * 3
            + ["run"] * 4
            + ["clear_task"] * 2
            + ["clear_run", "retry", "retry", "backfill", "backfill"]
        )
        if rnd.random() < 0.08:
            choices = ["replay"]
        kind = rnd.choice(choices)
        ran = sorted(n for n in self.taps if self.runs[n])
        name = rnd.choice(ran if kind in ("clear_task", "clear_run", "replay") and ran else sorted(self.taps))
        if kind == "produce":
            self.produce(rnd.randint(5, 40))
        elif kind == "run":
            fault = rnd.choice(
                [None, "before", "after", "kill9", "commit_before", "commit_after", "commit_partial"]
            )
            self.scheduled_run(name, fault, retry=rnd.random() < 0.6)
        elif kind == "clear_task":
            self.clear_task(name, self.load_fault())
        elif kind == "clear_run":
            self.clear_run(name, rnd.choice([None, "before", "kill9", "commit_partial"]))
        elif kind == "retry":
            if not (self.retry_failed() if rnd.random() < 0.7 else self.retry_interval()):
                kind = "retry (none failed)"
        elif kind == "backfill":
            hours = self.complete_hours()
            if not hours:
                kind = "backfill (no complete hour)"
            else:
                fresh = [h for h in hours if h not in self.intervals]
                hour = rnd.choice(fresh) if fresh and rnd.random() < 0.7 else rnd.choice(hours)
                self.backfill(hour, self.load_fault(), retry=rnd.random() < 0.6)
        elif kind == "replay":
            self.replay(name, rnd.choice([None, "before", "after", "kill9"]))
        self.stats.steps[kind] += 1
        self.steps_done += 1
        self.check(None if self.steps_done % self.full_every == 0 else self.touched)
        self.touched = set()

    def drain(self) -> None:
        """The end of a sequence: every failed task re-run, one more run per tap and every complete hour
        backfilled, without faults; then every target holds exactly what was committed, up to the high
        watermarks."""
        while self.retry_failed():
            pass
        while self.retry_interval():
            pass
        hw = self.high_watermarks()
        for name in self.taps:
            last = self.last_planned[name]
            if self.committed[name] != hw or self.uncertain[name] or last is None or last.commit != "success":
                self.scheduled_run(name)
        for hour in self.complete_hours():
            if self.intervals.get(hour, {}).get("state") != "success":
                self.backfill(hour, None, retry=True)
        self.check()
        for name, tap in self.taps.items():
            if self.committed[name] != hw:
                self.fail(f"{name}: after the drain the group committed {self.committed[name]}, not {hw}")
            # Every offset exactly once, ranges whose writer failed (and no later write covered) included.
            every = {(p, o) for p, c in hw.items() for o in range(c)}
            self.compare(f"{name} after the drain", self.holdings(tap.target), every, set())

    def cover(self) -> None:
        """Every rule and every kind of fault once, in a fixed order (then random steps follow): the CI
        profile's guarantee that each path ran, whatever the seed's draws."""
        self.setup()
        self.produce(120)  # about 1.5 hours of Kafka time: the first hour can be backfilled
        self.kill_delay = (0.05, 0.3)  # well before a load can end: the kills below hit a running load
        self.scheduled_run("s3", "after", retry=False)  # the run fails: a load's write half done
        self.check()
        if not self.retry_failed():
            self.fail("the failed load of the first run was not there to retry")
        self.check()
        self.scheduled_run("raw", "kill9")
        self.scheduled_run("et", "commit_partial", retry=False)
        self.check()
        self.retry_failed()
        self.scheduled_run("search", "before")
        self.check()
        self.backfill(self.complete_hours()[0], "kill9", retry=True)
        self.produce(30)
        self.clear_task("s3", "after")
        self.clear_run("raw", "commit_before")
        self.scheduled_run("search", "commit_after")
        self.check()
        self.replay("et", "kill9")
        self.replay("search", "after")
        self.check()
        self.stats.steps["covered"] += 1
        self.kill_delay = (0.02, 1.2)

    def run(self, steps: int, full_every: int = 1, cover: bool = False) -> None:
        """``steps`` random steps (every target checked after every ``full_every``-th step, the ones a step
        wrote after each), then :meth:`drain`."""
        self.full_every = full_every
        self.steps_done = 0
        self.stats.sequences += 1
        if cover:
            self.cover()
        else:
            self.setup()
            self.produce(self.rnd.randint(20, 40))
        try:
            for _ in range(steps):
                self.step()
            self.drain()
        finally:
            self.close()


@contextlib.contextmanager
def environment(services: Services) -> Iterator[dict[str, str]]:
    """The connections in the environment and the ledger's Variables in memory, for a driver outside pytest."""
    saved = {k: os.environ.get(k) for k in connection_env(services)}
    os.environ.update(connection_env(services))
    try:
        with variables_in_memory() as store, quiet_clients():
            yield store
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
