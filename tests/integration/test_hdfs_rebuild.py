"""Rebuilding chosen event-time partitions in place, against a real HDFS (MiniDFSCluster) fed by a real broker.

The rule: after rebuilding partitions P over a range with corrected options, the live view (partitions plus dead
letters) holds each offset of the range exactly once, placed as the corrected options say wherever a rebuilt
write put it; writes that touch P neither before nor after are left as they were; nothing else stays behind
(no staging, trash or temporary files). Before, only the ``dt=`` directories of P were swapped from a staging
tree: a chosen partition left empty kept its stale files, the live dead letters kept the old letters while the
rebuild's stayed in staging (lines twice, or nowhere), and the staging and trash directories were left behind.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer
from kafka_helpers import create_topic, produce
from test_hdfs import event_sink, tree

from airflow_provider_logtap.core.chunks import chunk_specs
from airflow_provider_logtap.core.eventtime import TimeFormat
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.hdfs import DEAD_LETTERS, MANIFESTS, check_partition_prefix

CORRECTED = TimeFormat(regex=r'"ts=([0-9T:+-]+)"', date_format="iso8601")


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-rebuild"))
    yield c
    c.close()


def line(i: int, apache_day: int, iso_day: int | None) -> bytes:
    """A line whose Apache timestamp says one day and whose ``ts=`` field (what the corrected options read)
    another; without ``ts=`` the corrected options dead-letter it."""
    ts = f' "ts=2026-11-{iso_day:02d}T10:00:00+00:00"' if iso_day else ""
    return (
        f'203.0.113.{i % 250} - - [{apache_day:02d}/Nov/2026:10:00:00 +0000] "GET /item?i={i} HTTP/1.1" 200 5{ts}'
    ).encode()


def placed(files: dict[str, bytes], topic: str) -> Counter[tuple[str, int]]:
    """``(where, i)`` of every line in the live view: its partition directory, or ``dead`` for a letter."""
    out: Counter[tuple[str, int]] = Counter()
    for path, data in files.items():
        if path.startswith(f"{topic}/{MANIFESTS}/"):
            continue
        if path.startswith(f"{DEAD_LETTERS}/"):
            for raw in data.splitlines():
                text = json.loads(raw)["line"]
                out[("dead", int(text.split("i=")[1].split(" ")[0]))] += 1
            continue
        where = path.rsplit("/", 1)[0].removeprefix(f"{topic}/")
        for raw in data.splitlines():
            out[(where, int(raw.split(b"i=")[1].split(b" ")[0]))] += 1
    return out


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunks"])
def test_rebuilt_partitions_hold_each_offset_once_where_the_corrected_options_say(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str, chunked: bool
) -> None:
    # Write 1 [0, 40): Apache day 01, ts= day 01 (A), ts= day 02 (B: wrongly in day 01 live), no ts= (C).
    # Write 2 [40, 60): Apache day 03, ts= day 02: live in day 03; corrected, day 03 is left empty.
    # Write 3 [60, 80): Apache day 04 and ts= day 04: the same under both options, touches no chosen partition.
    kinds = ["A", "B", "C", "A"] * 10 + ["D"] * 20 + ["E"] * 20
    days = {"A": (1, 1), "B": (1, 2), "C": (1, None), "D": (3, 2), "E": (4, 4)}
    values = [line(i, *days[k]) for i, k in enumerate(kinds)]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, values)
    live = event_sink(hdfs_client, hdfs_base, max_bad_ratio=None, run="live")
    for start, end in ((0, 40), (40, 60), (60, 80)):
        rng = OffsetRange(topic=topic_name, partition=0, start=start, end=end)
        live.write(rng, read_range(consumer, rng))
    before = tree(hdfs_client, hdfs_base)
    write3 = {p: d for p, d in before.items() if "dt=2026-11-04" in p or p.endswith("00060.json")}

    everything = OffsetRange(topic=topic_name, partition=0, start=0, end=80)
    rebuild = event_sink(
        hdfs_client,
        hdfs_base,
        time_format=CORRECTED,
        max_bad_ratio=None,
        run="rebuild",
        only_partitions=("dt=2026-11-01", "dt=2026-11-03"),
    )
    if chunked:
        # The replay's plan cuts a rebuild only where recorded writes start (each chunk replaces whole writes);
        # its chunks run as separate tasks, in any order.
        cuts = {0: rebuild.write_starts(topic_name, 0)}
        specs = chunk_specs([everything.to_dict()], 30, cuts)
        assert [(s["start"], s["end"]) for s in specs] == [(0, 40), (40, 60), (60, 80)]
        counts: Counter[str] = Counter()
        for spec in reversed(specs):
            rng = OffsetRange.from_dict(spec)
            counts.update(rebuild.write(rng, read_range(consumer, rng)).counts)
    else:
        counts = Counter(rebuild.write(everything, read_range(consumer, everything)).counts)
    assert (counts["writes_rebuilt"], counts["writes_untouched"]) == (2, 1)

    after = tree(hdfs_client, hdfs_base)
    where = placed(after, topic_name)
    # Each offset exactly once in the live view...
    assert sorted(i for _, i in where.elements()) == list(range(80))
    # ... placed as the corrected options say in the rebuilt writes, as before in the untouched one.
    expected = {
        "A": "dt=2026-11-01/hour=10",
        "B": "dt=2026-11-02/hour=10",
        "C": "dead",
        "D": "dt=2026-11-02/hour=10",
        "E": "dt=2026-11-04/hour=10",
    }
    assert where == Counter((expected[k], i) for i, k in enumerate(kinds))
    # A chosen partition the corrected parse leaves empty keeps nothing; the untouched write is byte-identical.
    assert not [p for p in after if "dt=2026-11-03" in p]
    assert {p: after[p] for p in write3} == write3
    # Nothing of the rebuild is left outside the live tree: no staging, trash or temporary file.
    assert not [p for p in after if "/." in p or p.startswith(".") or "_replays" in p or "_trash" in p]
    manifests = [json.loads(d) for p, d in after.items() if f"/{MANIFESTS}/" in p]
    assert sorted((m["start"], m["end"], m["run"], m["state"]) for m in manifests) == [
        (0, 40, "rebuild", "complete"),
        (40, 60, "rebuild", "complete"),
        (60, 80, "live", "complete"),
    ]
    # Rebuilding again changes nothing.
    rebuild.write(everything, read_range(consumer, everything))
    assert tree(hdfs_client, hdfs_base) == after


def test_a_rebuild_replaces_whole_writes_and_never_logtaps_own_directories(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    values = [line(i, 1, 1) for i in range(30)]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, values)
    live = event_sink(hdfs_client, hdfs_base, run="live")
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=30)
    live.write(rng, read_range(consumer, rng))
    rebuild = event_sink(hdfs_client, hdfs_base, time_format=CORRECTED, only_partitions=("dt=2026-11-01",))
    # The replay's plan starts a rebuild where the live write holding its start began ...
    holding = rebuild.write_containing(topic_name, 0, 12)
    assert holding is not None and (holding.start, holding.end) == (0, 30)
    assert rebuild.write_containing(topic_name, 0, 0) is None
    # ... and a rebuild starting inside a write (it would double the write's first part) is refused.
    middle = OffsetRange(topic=topic_name, partition=0, start=12, end=30)
    with pytest.raises(ConfigurationError, match="start at offset 0"):
        rebuild.write(middle, read_range(consumer, middle))
    # logtap's own directories are never partitions (one such replay replaced the live write manifests).
    for own in (MANIFESTS, DEAD_LETTERS, f"{MANIFESTS}/partition=0", ".hidden", "dt=2026-11-01/_x"):
        with pytest.raises(ConfigurationError, match="logtap's own"):
            check_partition_prefix(own)
    assert [json.loads(d)["run"] for p, d in tree(hdfs_client, hdfs_base).items() if MANIFESTS in p] == [
        "live"
    ]
