"""Hostile records through every target, against real servers: a real broker (each codec, a 10 MB record,
tombstones, headers), the S3 archive on moto, HDFS raw and event-time on a MiniDFSCluster, and OpenSearch.

The raw targets keep every record byte-exact (read back whole and compared, with the framing: each value then
``\\n``, tombstones left out). The event-time target and the search index place each line where its own time
says, computed here independently from the times the test wrote, or dead-letter it with a reason; placed plus
dead letters is the number of records that are not tombstones, and every offset is in exactly one place.

The targets are built from their settings models and Airflow connections, as a tap builds them."""

from __future__ import annotations

import json
import random
from base64 import b64decode
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from hdfs_helpers import hdfs_tree as hdfs_files
from kafka_helpers import create_topic

from airflow_provider_logtap.core import compression
from airflow_provider_logtap.core.ranges import EndSpec, OffsetRange, StartSpec
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.base import WriteResult
from airflow_provider_logtap.targets import HdfsEventTimeTarget, HdfsRawTarget, S3ArchiveTarget, SearchTarget

UTC = timezone.utc
MB = 1024 * 1024


@dataclass(frozen=True)
class Rec:
    """A record to produce and where each target must put it: ``at`` is the line's own time (UTC) when the
    event-time target can place it (None: a dead letter), ``parsed`` whether the search target indexes it."""

    value: bytes | None
    at: datetime | None = None
    parsed: bool = False
    headers: tuple[tuple[str, bytes], ...] = ()


def stamp(moment: datetime) -> bytes:
    """Apache's ``%t`` of ``moment`` in its own zone (``28/Oct/2015:14:03:07 +0100``)."""
    return moment.strftime("%d/%b/%Y:%H:%M:%S %z").encode()


def line(moment: datetime | bytes, *, url: bytes = b"/index.html", agent: bytes = b"curl/8.5") -> bytes:
    ts = moment if isinstance(moment, bytes) else stamp(moment)
    return b'81.2.69.160 - - [%s] "GET %s HTTP/1.1" 200 2326 "-" "%s"' % (ts, url, agent)


def placed(moment: datetime, value: bytes, *, parsed: bool = True, **kw: Any) -> Rec:
    return Rec(value, moment.astimezone(UTC), parsed, **kw)


def zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


# -- loading one range into all four targets, and reading each back --------------------------------------


@pytest.fixture
def targets(
    airflow_connections: None,
    webhdfs: dict[str, str],
    opensearch_url: str,
    bucket: str,
    hdfs_base: str,
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    host, port = opensearch_url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENSEARCH_DEFAULT",
        json.dumps({"conn_type": "opensearch", "host": host, "port": int(port)}),
    )
    return {
        "s3": S3ArchiveTarget.of(bucket=bucket, prefix="raw"),
        "hdfs_raw": HdfsRawTarget.of(base_path=f"{hdfs_base}/raw", compression="zstd"),
        "event_time": HdfsEventTimeTarget.of(base_path=f"{hdfs_base}/by-time", max_bad_ratio=None),
        "search": SearchTarget.of(index_prefix=f"t-{topic_name.lower()}", max_bad_ratio=None),
    }


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-hostile"))
    yield c
    c.close()


def produce(bootstrap: str, topic: str, partition: int, records: Sequence[Rec], **config: Any) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20, **config}
    )
    errors: list[Any] = []
    for r in records:
        producer.produce(
            topic,
            r.value,
            partition=partition,
            headers=list(r.headers) or None,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors


def load(targets: dict[str, Any], consumer: Consumer, rng: OffsetRange) -> dict[str, WriteResult]:
    return {
        name: target.build_sink(run="hostile").write(rng, read_range(consumer, rng))
        for name, target in targets.items()
    }


def framed(records: Sequence[Rec]) -> bytes:
    """The raw targets' content of ``records``: each value then a newline, tombstones left out."""
    return b"".join(r.value + b"\n" for r in records if r.value is not None)


def s3_content(target: S3ArchiveTarget, s3_client: Any, rng: OffsetRange) -> bytes:
    prefix = f"{target.prefix}/{rng.topic}/partition={rng.partition}/"
    listed = s3_client.list_objects_v2(Bucket=target.bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(o["Key"] for o in listed)
    return b"".join(
        compression.decompress("gzip", s3_client.get_object(Bucket=target.bucket, Key=k)["Body"].read())
        for k in keys
    )


def raw_content(target: HdfsRawTarget, client: Any, rng: OffsetRange) -> bytes:
    files = hdfs_files(client, f"{target.base_path}/{rng.topic}/partition={rng.partition}")
    return b"".join(compression.decompress("zstd", files[k]) for k in sorted(files))


def check_raw(
    targets: dict[str, Any], s3_client: Any, hdfs_client: Any, rng: OffsetRange, recs: list[Rec]
) -> None:
    expected = framed(recs)
    assert s3_content(targets["s3"], s3_client, rng) == expected
    assert raw_content(targets["hdfs_raw"], hdfs_client, rng) == expected


def dead_letters(lines: bytes) -> dict[int, tuple[str, bytes]]:
    """``{offset: (reason, the exact value)}`` of dead-letter JSON lines."""
    out = {}
    for text in lines.splitlines():
        d = json.loads(text)
        value = b64decode(d["line_base64"]) if "line_base64" in d else d["line"].encode()
        assert d["offset"] not in out, f"offset {d['offset']} dead-lettered twice"
        out[d["offset"]] = (d["reason"], value)
    return out


def check_event_time(
    target: HdfsEventTimeTarget, client: Any, rng: OffsetRange, recs: list[Rec], result: WriteResult
) -> None:
    """Each partition file holds exactly the lines whose own time is in it, in offset order; every other line is
    a dead letter with a reason and its exact bytes."""
    by_path: dict[str, list[Rec]] = {}
    dead: dict[int, bytes] = {}
    for offset, r in enumerate(recs, start=rng.start):
        if r.value is None:
            continue
        if r.at is None:
            dead[offset] = r.value
        else:
            by_path.setdefault(f"dt={r.at:%Y-%m-%d}/hour={r.at:%H}", []).append(r)
    files = hdfs_files(client, target.base_path)
    mine = f"/{rng.topic}+{rng.partition}+"  # this partition's files (named <topic>+<partition>+<start>)
    lines = {
        path.rsplit("/", 1)[0]: data
        for path, data in files.items()
        if path.startswith(f"{rng.topic}/dt=") and mine in path
    }
    assert lines == {f"{rng.topic}/{path}": framed(rs) for path, rs in by_path.items()}
    letters = b"".join(
        data
        for path, data in files.items()
        if path.startswith(f"_dead_letter/{rng.topic}/partition={rng.partition}/")
    )
    found = dead_letters(letters)
    assert {o: v for o, (_reason, v) in found.items()} == dead
    assert all(reason for reason, _v in found.values())
    tombstones = sum(r.value is None for r in recs)
    assert (result.written, result.dead_letters, result.counts["tombstones"]) == (
        sum(len(rs) for rs in by_path.values()),
        len(dead),
        tombstones,
    )


def check_search(
    target: SearchTarget, opensearch_url: str, rng: OffsetRange, recs: list[Rec], result: WriteResult
) -> None:
    """Each parsed line is one document in its UTC day's index, each other line one dead letter with a reason."""
    from opensearchpy import OpenSearch

    client = OpenSearch(opensearch_url, timeout=60)
    prefix = target.index_prefix
    client.indices.refresh(index=f"{prefix}*")
    body = {"size": 1000, "_source": ["kafka.offset", "offset", "reason", "message"]}
    docs = client.search(index=f"{prefix}-*", body=body)["hits"]["hits"]
    dead = client.search(index=f"{prefix}.dead-letter", body=body, ignore_unavailable=True)["hits"]["hits"]
    live = {int(d["_id"].rsplit("-", 1)[1]): d["_index"] for d in docs}
    assert len(live) == len(docs)
    letters = {int(d["_source"]["offset"]): d["_source"]["reason"] for d in dead}
    assert len(letters) == len(dead)
    expected_live = {
        o: f"{prefix}-{r.at:%Y.%m.%d}"
        for o, r in enumerate(recs, start=rng.start)
        if r.value is not None and r.parsed and r.at is not None
    }
    expected_dead = {o for o, r in enumerate(recs, start=rng.start) if r.value is not None} - set(
        expected_live
    )
    assert live == expected_live
    assert set(letters) == expected_dead and all(letters.values())
    assert not set(live) & set(letters)
    assert (result.written, result.dead_letters) == (len(expected_live), len(expected_dead))


def check_all(
    targets: dict[str, Any],
    results: dict[str, WriteResult],
    clients: tuple[Any, Any, str],
    rng: OffsetRange,
    recs: list[Rec],
) -> None:
    s3_client, hdfs_client, opensearch_url = clients
    check_raw(targets, s3_client, hdfs_client, rng, recs)
    check_event_time(targets["event_time"], hdfs_client, rng, recs, results["event_time"])
    check_search(targets["search"], opensearch_url, rng, recs, results["search"])
    lines = sum(r.value is not None for r in recs)
    for name in ("s3", "hdfs_raw"):
        assert results[name].written == lines and results[name].counts["tombstones"] == len(recs) - lines


@pytest.fixture
def clients(s3_client: Any, hdfs_client: Any, opensearch_url: str) -> tuple[Any, Any, str]:
    return s3_client, hdfs_client, opensearch_url


# -- the record families ------------------------------------------------------------------------------------

NOON = datetime(2026, 3, 14, 12, 30, 5, tzinfo=UTC)


def byte_family() -> list[Rec]:
    rnd = random.Random(13)
    garbage = bytes(rnd.randrange(256) for _ in range(300)) + b"\x00\xff"
    return [
        placed(NOON, line(NOON)),
        placed(NOON, line(NOON, url=b"/caf\xc3\xa9/\xff\xfe\xc0\xaf")),  # invalid UTF-8 in the request
        placed(NOON, line(NOON, agent=b"Mozilla\x00/5.0\x00\x00")),  # NUL bytes in a field
        placed(NOON, b"\x00\x00" + line(NOON) + b"\x00"),  # NUL around a line: event time yes, format no
        Rec(garbage),  # binary, no time
        Rec(b""),  # empty value
        Rec(None),  # tombstone
        Rec(None, headers=(("k", b"v"),)),  # tombstone with headers
        placed(
            NOON, line(NOON), headers=(("trace-id", b"\x00\x01\xff"), ("", b""), ("dup", b"1"), ("dup", b"2"))
        ),
        placed(NOON, line(NOON) + b"\r\n"),  # CRLF ending
        placed(NOON, line(NOON) + b"\r"),  # CR ending
        placed(NOON, line(NOON) + b"\n" + line(NOON + timedelta(hours=3))),  # two lines: the first one's time
        Rec(b"\r\n"),
        Rec(b"\n"),
        Rec("ünïcødé ☃ without a time".encode()),
        placed(NOON, line(NOON).decode().replace("curl/8.5", "ünï ☃").encode()),
    ]


def time_family() -> list[Rec]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    far = datetime(9999, 12, 30, 22, 30, tzinfo=zone(-0.5))  # 9999-12-30 23:00 UTC, its last partitioned day
    crossing = datetime(2025, 12, 31, 23, 30, tzinfo=zone(-1))  # 2026-01-01 00:30 UTC
    back = datetime(2026, 1, 1, 0, 30, tzinfo=zone(1))  # 2025-12-31 23:30 UTC
    return [
        placed(epoch, line(epoch)),
        placed(epoch + timedelta(seconds=59), line(epoch + timedelta(seconds=59))),
        placed(far, line(far)),
        placed(crossing, line(crossing)),
        placed(back, line(back)),
        placed(
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=zone(5.5)),
            line(datetime(2024, 2, 29, 23, 59, 59, tzinfo=zone(5.5))),
        ),
        placed(
            datetime(2026, 3, 29, 1, 59, tzinfo=zone(14)), line(datetime(2026, 3, 29, 1, 59, tzinfo=zone(14)))
        ),
        placed(
            datetime(2026, 3, 28, 20, 0, tzinfo=zone(-12)),
            line(datetime(2026, 3, 28, 20, 0, tzinfo=zone(-12))),
        ),
        Rec(line(b"31/Dec/9999:23:30:00 -0100")),  # 10000-01-01 UTC: no such year
        Rec(line(b"30/Feb/2026:10:00:00 +0000")),  # no such day
        Rec(line(b"14/Mar/2026:24:00:00 +0000")),  # no such hour
        Rec(line(b"14/Mar/2026:12:00:00 +2500")),  # no such zone
        Rec(line(b"14/Foo/2026:12:00:00 +0000")),  # no such month
        Rec(line(b"01/Jan/0999:00:00:00 +0000")),  # before the year 1000
        Rec(line(b"01/Jan/1000:00:30:00 +0100")),  # 0999-12-31 UTC
    ]


def test_hostile_bytes_and_framing_reach_every_target_exactly(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, targets: dict[str, Any], clients: Any
) -> None:
    recs = byte_family()
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, recs)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(recs))
    results = load(targets, consumer, rng)
    check_all(targets, results, clients, rng, recs)
    assert results["s3"].counts["invalid_utf8"] == sum(
        1 for r in recs if r.value is not None and not _utf8(r.value)
    )


def test_extreme_times_and_zones_crossing_a_date_are_placed_or_dead_lettered(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, targets: dict[str, Any], clients: Any
) -> None:
    recs = time_family()
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, recs)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(recs))
    check_all(targets, load(targets, consumer, rng), clients, rng, recs)


CODECS = ("gzip", "snappy", "lz4", "zstd")


def test_batches_of_every_codec_are_read_byte_exact(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, targets: dict[str, Any], clients: Any
) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=len(CODECS))
    sent = {}
    for p, codec in enumerate(CODECS):
        recs = [
            *(
                placed(NOON + timedelta(minutes=7 * i), line(NOON + timedelta(minutes=7 * i), url=b"/%d" % i))
                for i in range(60)
            ),
            *byte_family(),
        ]
        produce(kafka_bootstrap, topic_name, p, recs, **{"compression.type": codec, "batch.num.messages": 50})
        sent[p] = recs
    for p, recs in sent.items():
        rng = OffsetRange(topic=topic_name, partition=p, start=0, end=len(recs))
        raw = {k: targets[k] for k in ("s3", "hdfs_raw")}  # the codec is the reader's concern: raw shows it
        results = load(raw, consumer, rng)
        check_raw(targets, clients[0], clients[1], rng, recs)
        assert {r.written for r in results.values()} == {sum(r.value is not None for r in recs)}


def test_a_10_mb_record_is_fetched_and_kept_whole(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, targets: dict[str, Any], clients: Any
) -> None:
    create_topic(kafka_bootstrap, topic_name, **{"max.message.bytes": str(16 * MB)})
    url = b"/" + random.Random(3).randbytes(5 * MB).hex().encode()  # 10 MB of request target
    recs = [placed(NOON, line(NOON)), placed(NOON, line(NOON, url=url)), placed(NOON, line(NOON))]
    produce(kafka_bootstrap, topic_name, 0, recs, **{"message.max.bytes": 16 * MB, "compression.type": "lz4"})
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(recs))
    check_all(targets, load(targets, consumer, rng), clients, rng, recs)


def test_replay_offsets_beyond_the_high_watermark_are_refused_before_any_write(
    kafka_bootstrap: str, topic_name: str, airflow_connections: None
) -> None:
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook

    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 1, [Rec(b"a"), Rec(b"b")])
    hook = KafkaRangeHook(kafka_config_id="kafka_default")
    for start, end, words in [
        ({0: 1}, {0: 1}, "start offset 1 of"),
        ({1: 0}, {1: 3}, "end offset 3 of"),
        ({1: 10**10}, {1: 10**10 + 5}, "beyond its high watermark 2"),
    ]:
        with pytest.raises(ConfigurationError, match=words):
            hook.plan(
                topic=topic_name,
                start=StartSpec(kind="offsets", offsets=start),
                end=EndSpec.parse({"offsets": end}),
            )
    plan = hook.plan(
        topic=topic_name, start=StartSpec(kind="offsets", offsets={1: 0}), end=EndSpec.parse("latest")
    )
    assert [(r.partition, r.start, r.end) for r in plan.ranges] == [(1, 0, 2)]


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
