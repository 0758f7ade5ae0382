"""Reconciliation of every target type against Kafka, on the real services: a backlog loaded by the real sinks
into an S3 archive, an HDFS raw copy, an HDFS event-time copy and a search index (OpenSearch 2.19, and noida-db's
Elasticsearch API), the taps' groups committed; the healthy system reports nothing missing. Then each target is
damaged on purpose — an S3 object deleted, an HDFS raw file copied under another start name, an event-time
file deleted, a raw file lost below Kafka's new log start, a search document deleted and a daily index
dropped — and the check names each finding with exactly its range; the repair replays exactly those ranges
(from the archive below the log start, from Kafka above it) and the check then reports the system healthy."""

from __future__ import annotations

import json
import posixpath
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from devstack.loggen import generate
from kafka_helpers import create_topic, delete_records, produce
from services import webhdfs_connection

from airflow_provider_logtap import cli, holdings
from airflow_provider_logtap.core.coverage import Span, union
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.core.reconcile import Reconciliation
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.operators.reconcile import KafkaReconcileOperator
from airflow_provider_logtap.sinks.hdfs import MANIFESTS
from airflow_provider_logtap.taps import Tap, parse_tap
from airflow_provider_logtap.targets import build_sink

PARTITIONS = 2
LINES = 1200  # 600 per partition, in event-time order over two days
WRITE = 200  # offsets per load (so the event-time writes are [0, 200), [200, 400), ...)
PER_FILE = 100  # records per S3 object and HDFS raw file
UNLOADED = 40  # lines per partition produced after the loads: in Kafka, not committed, held nowhere
DAY2 = "2026.11.04"


@pytest.fixture
def search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``(connection id, raw client)`` of the search server under test."""
    kind = request.param
    url = request.getfixturevalue(f"{kind}_url")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEARCH_RC", json.dumps({"conn_type": kind, "host": host, "port": int(port)})
    )
    monkeypatch.delenv("LOGTAP_GEOIP_DB", raising=False)
    if kind == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(url)
    from elasticsearch import Elasticsearch

    return Elasticsearch(url)


@pytest.fixture
def system(
    kafka_bootstrap: str,
    topic_name: str,
    bucket: str,
    webhdfs: dict[str, str],
    hdfs_base: str,
    airflow_connections: None,
    search: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The four taps of one topic, each loaded with its real sink and its group committed."""
    webhdfs_connection(monkeypatch, webhdfs)
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    made = sorted(
        generate(LINES, seed=21, start=datetime(2026, 11, 3, tzinfo=timezone.utc), days=2),
        key=lambda g: g.event_utc,
    )
    # Unparseable lines (dead letters of the event-time and search targets) on the first day only.
    lines = [
        b"not a log line %d" % i if i % 40 == 7 and i < LINES // 3 else g.line for i, g in enumerate(made)
    ]
    # Each offset's index day (None: a dead letter), per partition.
    days = {
        p: [None if line.startswith(b"not a log") else g.event_utc.strftime("%Y.%m.%d") for g, line in pairs]
        for p in range(PARTITIONS)
        for pairs in [list(zip(made[p::PARTITIONS], lines[p::PARTITIONS], strict=True))]
    }
    raw_taps = [
        (
            {
                "name": "arch",
                "topic": topic_name,
                "target": {
                    "type": "s3_archive",
                    "bucket": bucket,
                    "prefix": "raw",
                    "max_records_per_object": PER_FILE,
                },
            }
        ),
        (
            {
                "name": "raw",
                "topic": topic_name,
                "target": {
                    "type": "hdfs_raw",
                    "base_path": f"{hdfs_base}/raw",
                    "max_records_per_file": PER_FILE,
                },
            }
        ),
        (
            {
                "name": "evt",
                "topic": topic_name,
                "target": {"type": "hdfs_event_time", "base_path": f"{hdfs_base}/evt", "max_bad_ratio": None},
            }
        ),
        (
            {
                "name": "idx",
                "topic": topic_name,
                "target": {
                    "type": "search",
                    "search_conn_id": "search_rc",
                    "index_prefix": f"{topic_name}-s",
                    "max_bad_ratio": None,
                },
            }
        ),
    ]
    taps = [parse_tap(raw) for raw in raw_taps]
    ends = {}
    for p in range(PARTITIONS):
        ends[p] = produce(kafka_bootstrap, topic_name, p, lines[p::PARTITIONS])[-1] + 1
    hook = KafkaRangeHook(kafka_config_id="kafka_default")
    for tap in taps:
        sink = build_sink(tap.target, run="load")
        for p, end in ends.items():
            for start in range(0, end, WRITE):
                rng = OffsetRange(topic=topic_name, partition=p, start=start, end=min(start + WRITE, end))
                sink.write(rng, hook.read(rng))
        hook.commit(tap.group, topic_name, {p: (end, "") for p, end in ends.items()})
    for p in range(PARTITIONS):
        produce(kafka_bootstrap, topic_name, p, lines[p::PARTITIONS][:UNLOADED])
    return {
        "taps": taps,
        "raw_taps": raw_taps,
        "ends": ends,
        "days": days,
        "topic": topic_name,
        "client": search,
    }


def checked(system: dict[str, Any]) -> Any:
    system["client"].indices.refresh(index=f"{system['topic']}-s*")
    return holdings.check(system["taps"])


def findings(report: Any) -> dict[tuple[str, int], dict[str, tuple[Span, ...]]]:
    return {(t.tap, p.partition): p.findings() for t in report.targets for p in t.partitions if p.findings()}


@pytest.mark.parametrize("search", ["opensearch", "elasticsearch"], indirect=True)
def test_damage_to_each_target_is_named_exactly_repaired_and_then_reported_healthy(
    system: dict[str, Any],
    s3_client: Any,
    bucket: str,
    hdfs_client: Any,
    hdfs_base: str,
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, ends, taps = system["topic"], system["ends"], system["taps"]
    healthy = checked(system)
    assert healthy.healthy, healthy.text()
    assert not healthy.errors
    for t in healthy.targets:
        for p in t.partitions:
            assert (p.committed, p.high_watermark) == (ends[p.partition], ends[p.partition] + UNLOADED)
            assert p.held == (Span(0, ends[p.partition]),), (t.tap, p)
    assert healthy.lines()[-1] == "reconcile: 4 targets checked, nothing missing, nothing doubled"
    assert sum("nothing missing" in line for line in healthy.lines()) == 5

    # S3: the object [100, 200) of partition 0 deleted.
    s3_client.delete_object(Bucket=bucket, Key=f"raw/{topic}/partition=0/{topic}+0+{100:020d}.log.gz")
    # HDFS raw: partition 1's file [200, 300) copied under the start name 250: [250, 350) held twice.
    raw_dir = f"{hdfs_base}/raw/{topic}/partition=1"
    with hdfs_client.read(f"{raw_dir}/{topic}+1+{200:020d}.log") as reader:
        hdfs_client.write(f"{raw_dir}/{topic}+1+{250:020d}.log", data=reader.read())
    # HDFS raw, below the log start: Kafka forgets partition 0's offsets below 50 and the file [0, 100) is lost.
    delete_records(kafka_bootstrap, topic, 0, 50)
    hdfs_client.delete(f"{hdfs_base}/raw/{topic}/partition=0/{topic}+0+{0:020d}.log")
    # HDFS event time: one partition file of partition 0's write [200, 400) deleted.
    manifest = f"{hdfs_base}/evt/{topic}/{MANIFESTS}/partition=0/{topic}+0+{200:020d}.json"
    with hdfs_client.read(manifest) as reader:
        written = json.loads(reader.read())["files"]
    data_file = next(f for f in written if "/_dead_letter/" not in f)
    hdfs_client.delete(data_file)
    # Search: the document of partition 0, offset 123, deleted; the second day's index dropped.
    client = system["client"]
    prefix = f"{topic}-s"
    client.delete(index=f"{prefix}-2026.11.03", id=f"{topic}-0-123")
    client.indices.delete(index=f"{prefix}-{DAY2}")
    dropped = {
        p: union((o, o + 1) for o, day in enumerate(system["days"][p]) if day == DAY2)
        for p in range(PARTITIONS)
    }
    assert all(len(dropped[p]) == 1 for p in dropped)  # the second day is one run of offsets per partition

    damaged = checked(system)
    assert not damaged.errors
    assert findings(damaged) == {
        ("arch", 0): {"missing": (Span(100, 200),)},
        ("raw", 0): {"missing": (Span(50, 100),), "below_log_start": (Span(0, 50),)},
        ("raw", 1): {"doubled": (Span(250, 350),)},
        ("evt", 0): {"missing": (Span(200, 400),)},
        ("idx", 0): {"missing": tuple(union([(123, 124), *dropped[0]]))},
        ("idx", 1): {"missing": tuple(dropped[1])},
    }
    assert damaged.gaps and not damaged.healthy
    text = damaged.text()
    assert f"{topic}[0]: MISSING: [100, 200) (100 offsets)" in text
    assert f"{topic}[1]: DOUBLED: [250, 350) (100 offsets)" in text
    assert f"{topic}[0]: MISSING BELOW LOG START 50 (gone from Kafka): [0, 50) (50 offsets)" in text
    assert any(posixpath.basename(data_file) in note for note in damaged.target("evt").notes)
    assert json.loads(json.dumps(damaged.to_dict()))["gaps"] is True

    # The command line sees the same, and fails on it.
    taps_file = tmp_path / "taps.yaml"
    taps_file.write_text(yaml.safe_dump({"taps": system["raw_taps"]}))
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("logtap")),
            "reconcile",
            str(taps_file),
            "--topic",
            topic,
            "--fail-on-gap",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    printed = json.loads(
        proc.stdout
    )  # stdout is the JSON only: the report's lines and Airflow's logs on stderr
    assert Reconciliation.from_dict(printed["report"]) == replace(
        damaged, checked_at_ms=printed["report"]["checked_at_ms"]
    )
    assert f"{topic}[1]: DOUBLED: [250, 350) (100 offsets)" in proc.stderr

    # The operator repairs (and then finds nothing to fail on).
    op = KafkaReconcileOperator(task_id="reconcile", taps=taps, topic=topic, fail_on_gap=True, repair=True)
    ti = SimpleNamespace(dag_id=f"logtap_reconcile_{topic}")
    result = op.execute({"ti": ti, "run_id": "manual__1"})  # type: ignore[arg-type]
    assert json.loads(json.dumps(result)) == result
    outcome = result["repair"]
    assert not outcome["failed"] and not outcome["cannot"], outcome
    sources = {(d["tap"], d["partition"], d["start"], d["end"]): d["source"] for d in outcome["done"]}
    assert sources[("arch", 0, 100, 200)] == "kafka"  # the archive never repairs itself from itself
    assert sources[("raw", 0, 0, 50)] == "auto"  # below the log start: from the archive
    assert sources[("raw", 1, 200, 400)] == "auto"  # the doubled extent, rewritten whole
    assert len(sources) == 8  # arch 1, raw 3, evt 1, idx 3 (offset 123, and the dropped day per partition)
    assert result["healthy"] and Reconciliation.from_dict(result["after"]).healthy
    repaired = checked(system)
    assert repaired.healthy, repaired.text()
    for t in repaired.targets:
        for p in t.partitions:
            assert p.held == (Span(0, ends[p.partition]),), (t.tap, p)
    names = hdfs_client.list(raw_dir)
    assert f"{topic}+1+{250:020d}.log" not in names  # the copy was replaced by the rewrite of [200, 400)
    assert cli.main(["reconcile", str(taps_file), "--tap", "raw", "--tap", "idx", "--fail-on-gap"]) == 0
    out = capsys.readouterr().out
    assert "reconcile: 2 targets checked, nothing missing, nothing doubled" in out


@pytest.mark.parametrize("search", ["opensearch"], indirect=True)
def test_offsets_held_beyond_the_commit_are_reported_and_are_no_gap(
    system: dict[str, Any], kafka_bootstrap: str
) -> None:
    topic, ends, taps = system["topic"], system["ends"], system["taps"]
    hook = KafkaRangeHook(kafka_config_id="kafka_default")
    # A run that wrote [ends, ends + 20) of partition 1 into the raw copy and failed before its commit.
    raw = next(t for t in taps if t.name == "raw")
    rng = OffsetRange(topic=topic, partition=1, start=ends[1], end=ends[1] + 20)
    build_sink(raw.target, run="failed").write(rng, hook.read(rng))
    # The archive's group committed only up to 500 of partition 0: [500, end) is held beyond it.
    arch: Tap = taps[0]
    hook.commit(arch.group, topic, {0: (500, "")})
    report = checked(system)
    assert findings(report) == {
        ("raw", 1): {"beyond": (Span(ends[1], ends[1] + 20),)},
        ("arch", 0): {"beyond": (Span(500, ends[0]),)},
    }
    assert not report.gaps and not report.healthy  # beyond is no gap: a retry or the next run writes it again
    assert f"BEYOND the committed offset 500: [500, {ends[0]})" in report.text()
