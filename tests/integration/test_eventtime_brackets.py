"""Brackets before the timestamp, and a date_format that does not fit the lines, against a real HDFS.

Lines go through a real broker and the HDFS event-time sink into a MiniDFSCluster (WebHDFS), and are read
back: a ``[`` of ``httpd[812]:``, a ``[vhost]`` prefix or a user name ``user[x]`` before the timestamp must not
dead-letter a line the timestamp regex dates (issue 10, item 4); a date_format that cannot read the logs is
refused before reading, or named by a hint (item 5).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest
from confluent_kafka import Consumer
from kafka_helpers import create_topic, produce
from test_hdfs import consumer, event_sink, tree

from airflow_provider_logtap.core.eventtime import APACHE_REGEX, TimeFormat, suggest_date_format
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.hdfs import BadLineRatioError
from airflow_provider_logtap.taps import HdfsEventTimeTarget, TapConfigError, parse_tap

__all__ = ["consumer"]  # the fixture, shared with test_hdfs

PREFIXES = [b"", b"[vhost] ", b"<13>Oct 26 00:00:00 web httpd[812]: ", b"[www.example.com:443] ", b"[a][b] "]


def bracketed(line: bytes, rng: random.Random) -> bytes:
    """``line`` with brackets put before its timestamp: a prefix, a user name like ``user[x]``, or both."""
    host, ident, user, rest = line.split(b" ", 3)
    if rng.random() < 0.5:
        user = b"user[" + user + b"]"
    if rng.random() < 0.3:
        ident = b"[" + ident + b"]"
    return rng.choice(PREFIXES) + b" ".join((host, ident, user, rest))


def test_brackets_before_the_timestamp_land_in_their_partitions(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack import loggen

    rng = random.Random(10)
    start = datetime(2015, 10, 28, 20, 0, tzinfo=timezone.utc)
    generated = list(loggen.generate(2000, seed=10, start=start, days=0.25))
    values = [bracketed(g.line, rng) for g in generated]
    timestamp = re.compile(APACHE_REGEX.encode())
    assert sum(1 for v in values if v.find(b"[") < timestamp.search(v).start()) > 1000  # type: ignore[union-attr]
    undatable = [
        b"[vhost] httpd[1]: 1.2.3.4 - user[x] [28/Okt/2015:20:00:00 +0000] x",  # found by the regex, bad month
        b"httpd[2]: 1.2.3.4 - - [28/Oct/2015:20:00:\xd9\xa3 +0000] x",  # non-ASCII seconds: no timestamp
    ]
    values = values[:1000] + undatable + values[1000:]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, values)
    rng_ = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = event_sink(hdfs_client, hdfs_base).write(rng_, read_range(consumer, rng_))
    assert (result.written, result.dead_letters) == (2000, 2)
    expected = Counter(
        (g.event_utc.strftime("dt=%Y-%m-%d/hour=%H"), v)
        for g, v in zip(generated, values[:1000] + values[1002:], strict=True)
    )
    assert len({p for p, _ in expected}) >= 6
    files = tree(hdfs_client, hdfs_base)
    got: Counter[tuple[str, bytes]] = Counter()
    for path, data in files.items():
        if path.startswith(f"{topic_name}/dt="):
            got.update((path[len(topic_name) + 1 :].rsplit("/", 1)[0], line) for line in data.splitlines())
    assert got == expected
    [dead_path] = [p for p in files if p.startswith("_dead_letter/")]
    records = [json.loads(line) for line in files[dead_path].splitlines()]
    assert [r["offset"] for r in records] == [1000, 1001]
    assert "unknown month 'Okt'" in records[0]["reason"]
    assert records[1]["reason"] == f"no timestamp matches {APACHE_REGEX!r}"


def test_a_date_format_that_does_not_fit_is_refused_or_named(
    kafka_bootstrap: str, topic_name: str, consumer: Consumer, hdfs_client: Any, hdfs_base: str
) -> None:
    from devstack.loggen import generate

    # The tap that used to pass validation and then dead-letter every line: refused before anything is read.
    raw = {"type": "hdfs_event_time", "base_path": hdfs_base, "date_format": "iso8601"}
    with pytest.raises(TapConfigError, match=r"remove timestamp_regex .* or set date_format: apache"):
        parse_tap({"name": "t", "topic": topic_name, "target": {**raw, "timestamp_regex": APACHE_REGEX}})
    # date_format alone brings its own regex; on Apache logs it reads nothing, and the first lines say why.
    target = parse_tap({"name": "t", "topic": topic_name, "target": raw}).target
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [x.line for x in generate(300, seed=11)])
    first = OffsetRange(topic=topic_name, partition=0, start=0, end=20)
    head = [v for batch in read_range(consumer, first) for v in batch.values]
    assert isinstance(target, HdfsEventTimeTarget)
    fmt = target.time_format
    hint = suggest_date_format(head, fmt)
    assert hint is not None and hint.startswith(
        "these lines have Apache [dd/Mon/yyyy:HH:MM:SS +zzzz] timestamps"
    )
    assert hint.endswith("): set date_format: apache")
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=300)
    with pytest.raises(BadLineRatioError):
        event_sink(hdfs_client, hdfs_base, time_format=fmt, max_bad_ratio=0.01).write(
            rng, read_range(consumer, rng)
        )
    assert not [p for p in tree(hdfs_client, hdfs_base) if p.startswith(f"{topic_name}/dt=")]
    # With the hint's setting the same range loads whole.
    fixed = TimeFormat(date_format="apache")
    result = event_sink(hdfs_client, hdfs_base, time_format=fixed).write(rng, read_range(consumer, rng))
    assert (result.written, result.dead_letters) == (300, 0)
