"""Replay from the UI form (through the REST API) and backfills of past data intervals, on a running Airflow
(scheduler, DAG processor, triggerer, API server; PostgreSQL): exactly once, and the live load untouched."""

from __future__ import annotations

import time
import urllib.error
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps
from live import backfill as run_backfill
from live import lines_under, trigger, ui_page, wait_for_all, wait_for_backfills, wait_for_dag, wait_for_run

from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.offsets import committed_offsets
from airflow_provider_logtap.replay import name_from_run


def group_state(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, tuple[int | None, str | None]]:
    from confluent_kafka import Consumer

    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, group))
    try:
        return {
            p: (c.offset, c.metadata)
            for p, c in committed_offsets(consumer, topic, range(partitions)).items()
        }
    finally:
        consumer.close()


def trigger_when_accepted(
    airflow: AirflowEnv, dag_id: str, conf: dict[str, Any], timeout: float = 120
) -> str:
    """Trigger once the form accepts ``conf`` (the replay DAG's tap list follows the taps file's re-parse)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return trigger(airflow, dag_id, conf)
        except urllib.error.HTTPError as exc:
            if exc.code != 400 or time.monotonic() > deadline:
                raise
            time.sleep(3)


@pytest.mark.airflow2
def test_replay_from_the_form_equals_the_live_load_and_leaves_it_alone(
    live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    from devstack import loggen

    write_taps(
        live_airflow,
        {
            "name": "live_s3",
            "topic": topic_name,
            "schedule": None,
            "target": {
                "type": "s3_archive",
                "bucket": bucket,
                "prefix": "raw",
                "max_records_per_object": 500,
            },
        },
    )
    loggen.create_topic(kafka_bootstrap, topic_name, 3)
    loggen.produce(kafka_bootstrap, topic_name, loggen.generate(3000, seed=31))
    wait_for_dag(live_airflow, "logtap_live_s3")
    live_run = trigger(live_airflow, "logtap_live_s3")
    assert wait_for_run(live_airflow, "logtap_live_s3", live_run) == "success"
    live = lines_under(s3_client, bucket, f"raw/{topic_name}/")
    before = group_state(kafka_bootstrap, "logtap-live_s3", topic_name, 3)
    loggen.produce(
        kafka_bootstrap, topic_name, loggen.generate(700, seed=32)
    )  # the live tap has not loaded these

    if live_airflow.version == "2":
        # Airflow 2's webserver renders the trigger form on the server: every field of the form is there.
        from airflow_provider_logtap.replay import ReplayForm

        form = ui_page(live_airflow, "/dags/logtap_replay/trigger")
        for name, info in ReplayForm.model_fields.items():
            assert f'id="element_{info.alias or name}"' in form, name

    # The form's default is a dry run: a click without unticking it writes nothing.
    default = {"tap": "live_s3", "from": "earliest", "to": "committed", "target_name": "by-default"}
    first = trigger_when_accepted(live_airflow, "logtap_replay", default)
    assert wait_for_run(live_airflow, "logtap_replay", first) == "success"
    assert lines_under(s3_client, bucket, "raw/replays/by-default/") == {}

    replay = {**default, "target_name": "sys-replay", "dry_run": False}
    run = trigger(live_airflow, "logtap_replay", replay)
    assert wait_for_run(live_airflow, "logtap_replay", run) == "success"
    assert lines_under(s3_client, bucket, f"raw/replays/sys-replay/{topic_name}/") == live
    assert sum(map(len, live.values())) == 3000
    assert (
        group_state(kafka_bootstrap, "logtap-live_s3", topic_name, 3) == before
    )  # offsets and claims unmoved

    # A second replay of another range into the same name is refused before it writes (the two would overlap
    # there); the same range again is an idempotent re-write.
    other = trigger(live_airflow, "logtap_replay", {**replay, "to": "latest"})
    assert wait_for_run(live_airflow, "logtap_replay", other) == "failed"
    assert lines_under(s3_client, bucket, f"raw/replays/sys-replay/{topic_name}/") == live
    same = trigger(live_airflow, "logtap_replay", replay)
    assert wait_for_run(live_airflow, "logtap_replay", same) == "success"
    assert lines_under(s3_client, bucket, f"raw/replays/sys-replay/{topic_name}/") == live
    # Without a name the target is named after the run: two such replays never share a place.
    unnamed = trigger(live_airflow, "logtap_replay", {**replay, "target_name": None})
    assert wait_for_run(live_airflow, "logtap_replay", unnamed) == "success"
    assert lines_under(s3_client, bucket, f"raw/replays/{name_from_run(unnamed)}/{topic_name}/") == live

    # A dry run plans and counts, and writes nothing.
    dry = trigger(live_airflow, "logtap_replay", {**replay, "target_name": "dry", "dry_run": True})
    assert wait_for_run(live_airflow, "logtap_replay", dry) == "success"
    assert lines_under(s3_client, bucket, "raw/replays/dry/") == {}
    # The form rejects a name that would leave the tap's prefix before anything runs.
    with pytest.raises(urllib.error.HTTPError, match="400"):
        trigger(live_airflow, "logtap_replay", {**replay, "target_name": "../escape"})
    # A run whose input only the plan step can judge fails there, saying what to fix, and writes nothing.
    bad = trigger(live_airflow, "logtap_replay", {**replay, "target_name": "bad", "from": "offsets"})
    assert wait_for_run(live_airflow, "logtap_replay", bad) == "failed"
    assert lines_under(s3_client, bucket, "raw/replays/bad/") == {}
    assert group_state(kafka_bootstrap, "logtap-live_s3", topic_name, 3) == before


@pytest.mark.airflow2
def test_backfills_and_clears_load_exactly_the_records_of_their_days(
    live_airflow: AirflowEnv, kafka_bootstrap: str, s3_client: Any, bucket: str, topic_name: str
) -> None:
    from kafka_helpers import create_topic, produce

    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    expected: dict[int, list[bytes]] = {0: [], 1: []}
    for p in range(2):
        stamps = [today - 5 * day + timedelta(hours=3 * i + p) for i in range(32)]  # 4 days, every 3 hours
        values = [f"p{p} {s.isoformat()}".encode() for s in stamps]
        owner = list(stamps)  # the time whose day loads the record
        if p == 0:
            # A line two minutes late, right after midnight: loaded with the day of its own time.
            k = stamps.index(today - 3 * day) + 1
            late = today - 3 * day - timedelta(minutes=2)
            stamps.insert(k, late)
            values.insert(k, b"p0 two minutes late")
            owner.insert(k, late)
            # A garbage line stamped 1970 in the middle of a day: loaded once, by that day (out of place).
            k = stamps.index(today - 3 * day + timedelta(hours=12))
            garbage = datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
            owner.insert(k, stamps[k - 1])
            stamps.insert(k, garbage)
            values.insert(k, b"p0 garbage 1970")
        produce(kafka_bootstrap, topic_name, p, values, [int(s.timestamp() * 1000) for s in stamps])
        expected[p] = [v for v, s in zip(values, owner, strict=True) if today - 4 * day <= s < today - day]
    write_taps(
        live_airflow,
        {
            "name": "sys_daily",
            "topic": topic_name,
            "mode": "interval",
            "schedule": "@daily",
            "start_date": (today - 10 * day).isoformat(),
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "daily"},
        },
    )
    dag_id = "logtap_sys_daily"
    wait_for_dag(live_airflow, dag_id)

    def backfill(
        start: datetime = today - 4 * day, end: datetime = today - 2 * day, rerun: bool = False
    ) -> None:
        run_backfill(live_airflow, dag_id, start, end, rerun=rerun)
        if live_airflow.version == "3":
            wait_for_backfills(live_airflow, dag_id)

    def backfills() -> list[dict[str, Any]]:
        return [r for r in wait_for_all(live_airflow, dag_id, 1) if r["run_type"] == "backfill"]

    def modified() -> dict[str, Any]:
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"daily/{topic_name}/"
        )
        return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", ())}

    backfill()
    first = backfills()
    assert [r["state"] for r in first] == ["success"] * 3
    loaded = lines_under(s3_client, bucket, f"daily/{topic_name}/")
    assert loaded == expected  # exactly the records of those three days, once each, in offset order

    backfill()  # the same command again: the runs exist and are done
    assert [r["state"] for r in backfills()] == ["success"] * 3
    assert lines_under(s3_client, bucket, f"daily/{topic_name}/") == expected
    backfill(rerun=True)  # the same days run again (--reprocess-behavior completed / --reset-dagruns)
    assert [r["state"] for r in backfills()] == ["success"] * 3  # the same three runs, run again
    assert lines_under(s3_client, bucket, f"daily/{topic_name}/") == expected

    before = modified()
    time.sleep(1.1)  # S3's LastModified has whole seconds
    middle = today - 3 * day
    live_airflow.run(
        "tasks",
        "clear",
        dag_id,
        "--start-date",
        middle.isoformat(),
        "--end-date",
        middle.isoformat(),
        "--yes",
    )
    if live_airflow.version == "2":
        backfill(middle, middle)  # Airflow 2's scheduler leaves backfill runs to the backfill command
    time.sleep(5)  # the cleared run is queued again; wait until it (and every other run) has finished
    assert all(r["state"] == "success" for r in wait_for_all(live_airflow, dag_id, 3))
    after = modified()
    assert after.keys() == before.keys()  # the same offsets (objects are named by them)...
    assert any(after[k] > before[k] for k in before), "the cleared interval was not loaded again"
    assert lines_under(s3_client, bucket, f"daily/{topic_name}/") == expected  # ...each once
    keys = [v["key"] for v in live_airflow.api("GET", "/variables?limit=100")["variables"]]
    assert any(k.startswith(f"logtap/{dag_id}/") for k in keys), "the plans were not recorded in the ledger"
