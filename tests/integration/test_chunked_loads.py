"""Chunks of one plan loaded at once, per target, against the real services: the load operators run in threads
(as separate task instances would, each with its own consumer and sink), and the target then holds exactly what
one whole-range load wrote: each offset once, in the same place (event-time partition, search index, dead
letters). Writing one chunk again replaces only that chunk's output."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from devstack.loggen import generate
from holdings import hdfs_holdings, s3_holdings, search_holdings
from kafka_helpers import create_topic, produce
from services import search_connection, webhdfs_connection

from airflow_provider_logtap.compat import import_string
from airflow_provider_logtap.core.chunks import chunk_specs
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.targets import (
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    TargetModel,
)

PARTITIONS = 2
LINES = 900
CHUNK = 90  # 5 chunks per partition, of unequal event-time spread


@pytest.fixture
def backlog(kafka_bootstrap: str, topic_name: str) -> list[OffsetRange]:
    """Two partitions of combined-format lines over two days (every 40th one unparseable), and their ranges."""
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    lines = [
        g.line for g in generate(LINES, seed=14, start=datetime(2026, 11, 3, tzinfo=timezone.utc), days=2)
    ]
    lines = [b"not a log line %d" % i if i % 40 == 7 else line for i, line in enumerate(lines)]
    ranges = []
    for p in range(PARTITIONS):
        offsets = produce(kafka_bootstrap, topic_name, p, lines[p::PARTITIONS])
        ranges.append(OffsetRange(topic=topic_name, partition=p, start=0, end=offsets[-1] + 1))
    return ranges


def load(
    target: TargetModel, specs: list[dict[str, Any]], run: str, workers: int = 6
) -> list[dict[str, Any]]:
    """The load task of ``target`` for each spec, ``workers`` at a time (threads: task instances on workers)."""
    operator = import_string(target.operator)

    def one(spec: dict[str, Any]) -> dict[str, Any]:
        op = operator(task_id="load", offset_range=spec, **target.settings())
        ti = SimpleNamespace(dag_id="logtap_chunks", xcom_push=lambda **_: None)
        result: dict[str, Any] = op.execute({"ti": ti, "run_id": run, "params": {}})
        return result

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, specs))


Reader = Callable[[str], tuple[Counter[tuple[str, bytes]], dict[str, str]]]


@pytest.mark.parametrize("kind", ["s3_archive", "hdfs_raw", "hdfs_event_time", "search"])
def test_chunks_loaded_at_once_hold_what_one_whole_load_holds_and_a_rerun_replaces_only_its_chunk(
    kind: str, backlog: list[OffsetRange], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    request.getfixturevalue("airflow_connections")
    target: Callable[[str], TargetModel]
    read: Reader
    if kind == "s3_archive":
        s3_client, bucket = request.getfixturevalue("s3_client"), request.getfixturevalue("bucket")
        target = lambda where: S3ArchiveTarget(bucket=bucket, prefix=where)  # noqa: E731
        read = lambda where: s3_holdings(s3_client, bucket, where)  # noqa: E731
    elif kind in ("hdfs_raw", "hdfs_event_time"):
        webhdfs_connection(monkeypatch, request.getfixturevalue("webhdfs"))
        client, base = request.getfixturevalue("hdfs_client"), request.getfixturevalue("hdfs_base")
        model: Any = HdfsRawTarget if kind == "hdfs_raw" else HdfsEventTimeTarget
        target = lambda where: model(base_path=f"{base}/{where}", max_bad_ratio=None)  # noqa: E731
        if kind == "hdfs_raw":
            target = lambda where: HdfsRawTarget(base_path=f"{base}/{where}", max_records_per_file=25)  # noqa: E731
        read = lambda where: hdfs_holdings(client, f"{base}/{where}")  # noqa: E731
    else:
        from opensearchpy import OpenSearch

        url = request.getfixturevalue("opensearch_url")
        search_connection(monkeypatch, "search_chunks", url)
        monkeypatch.setenv("LOGTAP_GEOIP_DB", request.getfixturevalue("geoip_database"))
        client = OpenSearch(url)
        topic = backlog[0].topic
        target = lambda where: SearchTarget(  # noqa: E731
            search_conn_id="search_chunks", index_prefix=f"{topic}-{where}", max_bad_ratio=None
        )
        read = lambda where: search_holdings(client, f"{topic}-{where}")  # noqa: E731

    wholes = [r.to_dict() for r in backlog]
    load(target("whole"), wholes, run="whole")
    specs = chunk_specs(wholes, CHUNK)
    assert len(specs) >= 10 and all("chunk" in s for s in specs)
    results = load(target("chunks"), specs, run="chunks")

    expected, _ = read("whole")
    held, runs = read("chunks")
    assert sum(r["records"] for r in results) == sum(r.size for r in backlog)
    assert held == expected  # the same lines (documents), each once, in the same places
    assert max(expected.values()) == 1 or kind == "hdfs_event_time"  # identical lines may share an hour
    assert {w for w, _ in expected} >= ({"dead"} if kind in ("hdfs_event_time", "search") else set())

    # One chunk written again (a cleared task): the same holdings; only its own recorded write is the rerun's.
    again = specs[len(specs) // 2]
    load(target("chunks"), [again], run="rerun")
    held_again, runs_again = read("chunks")
    assert held_again == expected
    if runs:
        changed = {name for name in runs_again if runs_again[name] != runs.get(name)}
        assert changed and all(f"+{again['start']:020d}" in name for name in changed), changed
        assert set(runs_again) == set(runs)
