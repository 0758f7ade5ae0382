"""Rebuilding event-time partitions of a live tap through the shipped replay DAG (``airflow dags test``), after
fixing the timestamp regex: the live tree then holds each offset once, where the corrected options say; the
tap's own directories are refused; nothing of the rebuild is left behind."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from airflow_env import AirflowEnv
from conftest import write_taps
from kafka_helpers import create_topic, produce

PARTITIONS = 2


def line(i: int, iso_day: int | None) -> bytes:
    """Apache time on 2026-11-01; the real time of the event in a ``ts=`` field (none: not datable then)."""
    ts = f' "ts=2026-11-{iso_day:02d}T10:00:00+00:00"' if iso_day else ""
    return f'198.51.100.{i % 250} - - [01/Nov/2026:10:00:00 +0000] "GET /x?i={i} HTTP/1.1" 200 5{ts}'.encode()


def view(client: Any, base: str, topic: str) -> Counter[tuple[str, int]]:
    """``(partition directory or 'dead', i)`` of every line in the live view."""
    out: Counter[tuple[str, int]] = Counter()
    for root, _dirs, names in client.walk(base):
        for name in names:
            path = f"{root}/{name}"[len(base) + 1 :]
            with client.read(f"{root}/{name}") as reader:
                data = reader.read()
            if path.startswith("_dead_letter/"):
                out.update(
                    ("dead", int(json.loads(r)["line"].split("i=")[1].split()[0])) for r in data.splitlines()
                )
            elif path.startswith(f"{topic}/dt="):
                where = path.removeprefix(f"{topic}/").rsplit("/", 1)[0]
                out.update((where, int(r.split(b"i=")[1].split()[0])) for r in data.splitlines())
    return out


def listing(client: Any, base: str) -> list[str]:
    return sorted(f"{root}/{n}" for root, _d, names in client.walk(base) for n in names)


def test_a_rebuild_from_the_replay_dag_places_each_offset_once_as_corrected(
    airflow: AirflowEnv, kafka_bootstrap: str, hdfs_client: Any, hdfs_base: str, topic_name: str
) -> None:
    base = f"{hdfs_base}/fix"
    write_taps(
        airflow,
        {
            "name": "sys_fix",
            "topic": topic_name,
            "target": {"type": "hdfs_event_time", "base_path": base, "max_bad_ratio": 0.5},
        },
    )
    create_topic(kafka_bootstrap, topic_name, partitions=PARTITIONS)
    kinds: dict[int, int | None] = {}
    for batch in range(2):  # two live writes per partition
        for p in range(PARTITIONS):
            ids = range(100 * (2 * batch + p), 100 * (2 * batch + p) + 100)
            for i in ids:
                kinds[i] = (1, 2, None)[i % 3]
            produce(kafka_bootstrap, topic_name, p, [line(i, kinds[i]) for i in ids])
        airflow.run("dags", "test", "logtap_sys_fix")
    # The live tap (Apache's regex) put every line in 2026-11-01.
    assert view(hdfs_client, base, topic_name) == Counter(("dt=2026-11-01/hour=10", i) for i in kinds)

    # logtap's own directories are refused before anything is read.
    before = {p: hdfs_client.status(p)["modificationTime"] for p in listing(hdfs_client, base)}
    bad = {"tap": "sys_fix", "to": "committed", "overwrite_partitions": ["_logtap"], "dry_run": False}
    failed = airflow.run("dags", "test", "logtap_replay", "-c", json.dumps(bad), check=False)
    assert "logtap's own" in failed.stdout + failed.stderr
    assert {p: hdfs_client.status(p)["modificationTime"] for p in listing(hdfs_client, base)} == before

    fix = {
        "tap": "sys_fix",
        "from": "earliest",
        "to": "committed",
        "overwrite_partitions": ["dt=2026-11-01"],
        "timestamp_regex": '"ts=([0-9T:+-]+)"',
        "date_format": "iso8601",
        "dry_run": False,
    }
    airflow.run("dags", "test", "logtap_replay", "-c", json.dumps(fix))
    expected = {1: "dt=2026-11-01/hour=10", 2: "dt=2026-11-02/hour=10", None: "dead"}
    assert view(hdfs_client, base, topic_name) == Counter((expected[k], i) for i, k in kinds.items())
    files = listing(hdfs_client, base)
    assert not [f for f in files if "/." in f or "_replays" in f or "_staging" in f or "_trash" in f]
    # The rebuild replaced the live writes through their own manifests: the same starts, one per write.
    manifests = [f for f in files if "/_logtap/" in f]
    assert len(manifests) == 2 * PARTITIONS
    # The live tap goes on from its committed offsets, unaffected.
    for p in range(PARTITIONS):
        produce(kafka_bootstrap, topic_name, p, [line(10_000 + p, 1)])
    airflow.run("dags", "test", "logtap_sys_fix")
    assert view(hdfs_client, base, topic_name)[("dt=2026-11-01/hour=10", 10_000)] == 1
