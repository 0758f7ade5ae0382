"""Rebuilding from the S3 archive once Kafka has forgotten, against the real services: a backlog archived by the
s3_archive load, loaded from Kafka into an event-time HDFS target and a search index (the reference); then
Kafka deletes the first part of each partition (DeleteRecords, as retention would) and the same ranges are
loaded again from the archive (``source: archive``) and across the retention boundary (``source: auto``, the
tail not even archived): each target then holds exactly what the Kafka read wrote, record for record. An
archive gap (an object deleted) is refused before anything is written, or skipped and reported lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from devstack.loggen import generate
from holdings import hdfs_holdings, search_holdings
from kafka_helpers import create_topic, delete_records, produce
from services import search_connection, webhdfs_connection

from airflow_provider_logtap.compat import import_string
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.sources import record_source
from airflow_provider_logtap.sources.archive import ArchiveGapError, ArchiveUnreadableError, list_objects
from airflow_provider_logtap.targets import HdfsEventTimeTarget, S3ArchiveTarget, SearchTarget, TargetModel

PARTITIONS = 2
ARCHIVED = 600  # lines archived, then 200 more only in Kafka
TAIL = 200
PER_OBJECT = 70  # records per archive object: the deletion points fall inside objects
DELETED = {0: 213, 1: 160}  # Kafka's new log start per partition


def lines_of(count: int, seed: int) -> list[bytes]:
    lines = [
        g.line for g in generate(count, seed=seed, start=datetime(2026, 10, 3, tzinfo=timezone.utc), days=2)
    ]
    return [b"not a log line %d" % i if i % 37 == 5 else line for i, line in enumerate(lines)]


def run_load(target: TargetModel, rng: OffsetRange, run: str, **options: Any) -> dict[str, Any]:
    """The load task of ``target`` for ``rng`` (as a task instance runs it), with the load's ``options``."""
    operator = import_string(target.operator)
    op = operator(task_id="load", offset_range=rng.to_dict(), **target.settings(), **options)
    ti = SimpleNamespace(dag_id="logtap_archive_replay", xcom_push=lambda **_: None)
    result: dict[str, Any] = op.execute({"ti": ti, "run_id": run, "params": {}})
    return result


@pytest.fixture
def archived(
    kafka_bootstrap: str, topic_name: str, s3_client: Any, bucket: str, airflow_connections: None
) -> dict[str, Any]:
    """A topic whose first ``ARCHIVED`` lines are in the S3 archive and ``TAIL`` more only in Kafka; the ranges
    archived and whole."""
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    head, tail = lines_of(ARCHIVED, seed=31), lines_of(TAIL, seed=32)
    archive = S3ArchiveTarget(bucket=bucket, prefix="raw", max_records_per_object=PER_OBJECT)
    ranges: dict[str, list[OffsetRange]] = {"archived": [], "whole": []}
    for p in range(PARTITIONS):
        end = produce(kafka_bootstrap, topic_name, p, head[p::PARTITIONS])[-1] + 1
        ranges["archived"].append(OffsetRange(topic=topic_name, partition=p, start=0, end=end))
        run_load(archive, ranges["archived"][-1], run="archive")
        end = produce(kafka_bootstrap, topic_name, p, tail[p::PARTITIONS])[-1] + 1
        ranges["whole"].append(OffsetRange(topic=topic_name, partition=p, start=0, end=end))
    return {"archive": archive, **ranges}


def target_kind(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, topic: str
) -> Any:
    """``(make target by place, read holdings by place)`` of ``kind``."""
    if kind == "hdfs_event_time":
        webhdfs_connection(monkeypatch, request.getfixturevalue("webhdfs"))
        client, base = request.getfixturevalue("hdfs_client"), request.getfixturevalue("hdfs_base")
        make: Callable[[str], TargetModel] = lambda where: HdfsEventTimeTarget(  # noqa: E731
            base_path=f"{base}/{where}", max_bad_ratio=None
        )
        return make, lambda where: hdfs_holdings(client, f"{base}/{where}")[0]
    from opensearchpy import OpenSearch

    url = request.getfixturevalue("opensearch_url")
    search_connection(monkeypatch, "search_archive", url)
    monkeypatch.setenv("LOGTAP_GEOIP_DB", request.getfixturevalue("geoip_database"))
    client = OpenSearch(url)
    make = lambda where: SearchTarget(  # noqa: E731
        search_conn_id="search_archive", index_prefix=f"{topic}-{where}", max_bad_ratio=None
    )
    return make, lambda where: search_holdings(client, f"{topic}-{where}")[0]


def source(archive: S3ArchiveTarget, kind: str) -> dict[str, Any]:
    return {"kind": kind, "archive": {"bucket": archive.bucket, "prefix": archive.prefix}}


@pytest.mark.parametrize("kind", ["hdfs_event_time", "search"])
def test_a_range_kafka_deleted_is_rebuilt_from_the_archive_as_the_kafka_read_wrote_it(
    kind: str,
    archived: dict[str, Any],
    kafka_bootstrap: str,
    topic_name: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make, held = target_kind(kind, request, monkeypatch, topic_name)
    for name in ("archived", "whole"):  # the references: read from Kafka while it has everything
        for rng in archived[name]:
            run_load(make(f"kafka-{name}"), rng, run="reference")
    expected = {name: held(f"kafka-{name}") for name in ("archived", "whole")}
    assert expected["archived"] and sum(expected["whole"].values()) > sum(expected["archived"].values())
    assert any(place == "dead" for place, _ in expected["whole"])  # dead letters compare too

    for p, before in DELETED.items():
        delete_records(kafka_bootstrap, topic_name, p, before)
    with pytest.raises(Exception, match="Data loss"):  # Kafka can no longer serve the range
        run_load(make("kafka-again"), archived["whole"][0], run="again")

    results = [
        run_load(make("from-archive"), rng, run="archive", source=source(archived["archive"], "archive"))
        for rng in archived["archived"]
    ]
    assert held("from-archive") == expected["archived"]
    assert sum(r["records"] for r in results) == sum(r.size for r in archived["archived"])

    # auto: below each log start from the archive, the rest (partly never archived) from Kafka, in one load.
    results = [
        run_load(make("auto"), rng, run="auto", source=source(archived["archive"], "auto"))
        for rng in archived["whole"]
    ]
    assert held("auto") == expected["whole"]
    assert sum(r["records"] for r in results) == sum(r.size for r in archived["whole"])
    assert not any(r["lost"] for r in results)


def test_the_auto_split_and_the_batches_are_seamless_at_the_log_start(
    archived: dict[str, Any], kafka_bootstrap: str, topic_name: str
) -> None:
    """Every offset once, in order, from the archive below the log start and from Kafka above it; the values are
    those Kafka held."""
    hook = KafkaRangeHook(kafka_config_id="kafka_default")
    rng = archived["whole"][1]
    before = [(o, v) for b in hook.read(rng) for o, v in zip(b.offsets, b.values, strict=True)]
    delete_records(kafka_bootstrap, topic_name, 1, DELETED[1])
    auto = record_source(source(archived["archive"], "auto"), hook)
    split = auto.split(rng)
    assert split.archive is not None and split.kafka is not None
    assert (split.archive.end, split.kafka.start) == (DELETED[1], DELETED[1])
    after = [(o, v) for b in auto.read(rng) for o, v in zip(b.offsets, b.values, strict=True)]
    assert after == before
    archive_only = record_source(source(archived["archive"], "archive"), None)
    head = archived["archived"][1]
    assert [(o, v) for b in archive_only.read(head) for o, v in zip(b.offsets, b.values, strict=True)] == [
        pair for pair in before if pair[0] < head.end
    ]
    # A range starting and ending inside objects: exactly its offsets.
    inner = OffsetRange(topic=topic_name, partition=1, start=PER_OBJECT + 3, end=3 * PER_OBJECT - 5)
    got = [o for b in archive_only.read(inner, batch_size=17) for o in b.offsets]
    assert got == list(range(inner.start, inner.end))


def test_an_archive_gap_is_refused_before_writing_or_skipped_and_reported_lost(
    archived: dict[str, Any],
    kafka_bootstrap: str,
    topic_name: str,
    s3_client: Any,
    bucket: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make, held = target_kind("hdfs_event_time", request, monkeypatch, topic_name)
    rng = archived["archived"][0]
    objects = list_objects(s3_client, bucket, "raw", topic_name, 0)
    assert objects[0].span == (0, PER_OBJECT) and objects[-1].end == rng.end
    gone = objects[1]
    s3_client.delete_object(Bucket=bucket, Key=gone.key)
    delete_records(kafka_bootstrap, topic_name, 0, DELETED[0])
    for kind in ("archive", "auto"):  # auto cannot fill it either: Kafka no longer has those offsets
        with pytest.raises(Exception, match=rf"offsets \[{gone.start}, {gone.end}\).*not retried") as raised:
            run_load(make("gap"), rng, run="gap", source=source(archived["archive"], kind))
        cause = raised.value.__cause__
        assert isinstance(cause, ArchiveGapError) and cause.gaps == ((gone.start, gone.end),)
        hdfs = request.getfixturevalue("hdfs_client")
        assert (
            hdfs.status(f"{request.getfixturevalue('hdfs_base')}/gap", strict=False) is None
        )  # nothing written
    result = run_load(
        make("gap-accepted"),
        rng,
        run="gap",
        source=source(archived["archive"], "archive"),
        on_data_loss="log_start",
    )
    assert [(r["start"], r["end"]) for r in result["lost"]] == [(gone.start, gone.end)]
    assert result["records"] == rng.size - gone.span.size
    assert sum(held("gap-accepted").values()) == result["records"]  # each line once, in an hour or dead


def test_an_object_whose_offsets_cannot_be_recovered_is_refused(
    kafka_bootstrap: str, topic_name: str, s3_client: Any, bucket: str, airflow_connections: None
) -> None:
    """A value holding a newline makes more lines than records: the lines' offsets are unknown."""
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    end = produce(kafka_bootstrap, topic_name, 0, [b"one", b"two\nthree", b"four"])[-1] + 1
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=end)
    run_load(S3ArchiveTarget(bucket=bucket, prefix="nl"), rng, run="archive")
    reader = record_source({"kind": "archive", "archive": {"bucket": bucket, "prefix": "nl"}}, None)
    with pytest.raises(ArchiveUnreadableError, match="holds a newline"):
        list(reader.read(rng))
