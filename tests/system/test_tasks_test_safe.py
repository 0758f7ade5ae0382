"""``airflow tasks test`` on a live tap, with real ``airflow`` commands, Kafka and Airflow Variables: debugging
a tap leaves its consumer group and its plan ledger as they were, while DAG runs (``airflow dags test``) claim,
commit and record. The ledger's horizon deletes old plans through the Task SDK."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps

from airflow_provider_logtap.core import claims
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.offsets import committed_offsets

PARTITIONS = 3


def group_state(bootstrap: str, group: str, topic: str) -> dict[int, tuple[int | None, str | None]]:
    """``{partition: (committed offset, commit metadata)}``, read with a real consumer of the group."""
    from confluent_kafka import Consumer

    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, group))
    try:
        return {
            p: (c.offset, c.metadata)
            for p, c in committed_offsets(consumer, topic, range(PARTITIONS)).items()
        }
    finally:
        consumer.close()


@pytest.mark.airflow2
def test_tasks_test_of_plan_and_commit_leaves_the_group_alone_while_a_run_claims(
    airflow: AirflowEnv, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    from devstack import loggen

    write_taps(
        airflow,
        {"name": "sys_debug", "topic": topic_name, "target": {"type": "s3_archive", "bucket": bucket}},
    )
    dag_id, group = "logtap_sys_debug", "logtap-sys_debug"
    airflow.register_dags()
    loggen.create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent = dict.fromkeys(range(PARTITIONS), 0)
    for s in loggen.produce(kafka_bootstrap, topic_name, loggen.generate(1200, seed=5)):
        sent[s.partition] += 1

    # A run in flight: it planned (claimed) and loaded, its commit has not happened yet.
    airflow.run("dags", "test", dag_id, extra_env={"LOGTAP_TEST_FAIL_TASK": "commit"}, check=False)
    run = airflow.run_ids(dag_id)[-1]
    live = group_state(kafka_bootstrap, group, topic_name)
    held = {p: claims.Claim.decode(m) for p, (_o, m) in live.items()}
    assert all(c is not None and c.run == f"{dag_id}/{run}" and c.state == "planned" for c in held.values())
    assert {p: o for p, (o, _m) in live.items()} == dict.fromkeys(range(PARTITIONS), 0)  # claimed, not moved

    # Debugging the plan: computed and logged, not claimed (before, its claim superseded the run in flight).
    debug = airflow.run("tasks", "test", dag_id, "plan", "2026-12-01")
    assert group_state(kafka_bootstrap, group, topic_name) == live
    out = debug.stdout + debug.stderr
    assert "NOT claiming the ranges" in out and "logtap_replay" in out
    assert f"plan of {topic_name}: {PARTITIONS} partitions, 1200 offsets in all" in out

    # Debugging the commit of the run in flight: it says what it would commit, and commits nothing.
    commit = airflow.run("tasks", "test", dag_id, "commit", run)
    assert group_state(kafka_bootstrap, group, topic_name) == live
    out = commit.stdout + commit.stderr
    assert "would commit" in out and "NOT committed" in out

    # A DAG run claims and commits as before (airflow dags test is a run, not a debugging session).
    airflow.run("dags", "test", dag_id)
    newest = airflow.run_ids(dag_id)[-1]
    done = group_state(kafka_bootstrap, group, topic_name)
    assert {p: o for p, (o, _m) in done.items()} == sent
    assert all(
        (c := claims.Claim.decode(m)) is not None and c.run == f"{dag_id}/{newest}" and c.state == "committed"
        for _o, m in done.values()
    )


def logtap_variables(airflow: AirflowEnv, dag_id: str) -> dict[str, Any]:
    """The ledger's Airflow Variables, ``{key: JSON value}``, read from the metadata DB (see
    :meth:`AirflowEnv.variables`)."""
    return {k: json.loads(v) for k, v in airflow.variables(f"logtap/{dag_id}/").items()}


def exported_variables(airflow: AirflowEnv, dag_id: str) -> dict[str, Any]:
    """The same, as ``airflow variables export`` writes them (``{key: {"value", "description"}}`` or
    ``{key: value}``)."""
    path = airflow.home / "variables.json"
    airflow.run("variables", "export", str(path))
    found = json.loads(path.read_text())
    values = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in found.items()}
    return {
        k: json.loads(v) if isinstance(v, str) else v
        for k, v in values.items()
        if k.startswith(f"logtap/{dag_id}/")
    }


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def test_the_ledger_keeps_the_horizon_in_real_variables_and_tasks_test_records_no_plan(
    airflow: AirflowEnv, kafka_bootstrap: str, bucket: str, topic_name: str
) -> None:
    from kafka_helpers import create_topic, produce

    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    create_topic(kafka_bootstrap, topic_name, partitions=2)
    for p in range(2):
        stamps = [today - 3 * day + timedelta(hours=2 * i + p) for i in range(30)]
        produce(
            kafka_bootstrap,
            topic_name,
            p,
            [b"p%d %d" % (p, i) for i in range(30)],
            [int(s.timestamp() * 1000) for s in stamps],
        )
    write_taps(
        airflow,
        {
            "name": "sys_horizon",
            "topic": topic_name,
            "mode": "interval",
            "schedule": "@daily",
            "start_date": (today - 400 * day).isoformat(),
            "target": {"type": "s3_archive", "bucket": bucket, "prefix": "horizon"},
        },
    )
    dag_id = "logtap_sys_horizon"
    old, recent = (today - 120 * day), (today - 2 * day)
    key = f"logtap/{dag_id}/"

    airflow.run("dags", "test", dag_id, old.isoformat())
    first = logtap_variables(airflow, dag_id)
    [(s1, e1)] = first[f"{key}index"]["intervals"]
    assert set(first) == {f"{key}index", f"{key}{stamp(s1)}/{stamp(e1)}"}  # before: 3 variables and edges

    # Debugging the plan of a new interval: computed, logged, not recorded in the ledger.
    debug = airflow.run("tasks", "test", dag_id, "plan", recent.isoformat())
    assert "is NOT recorded in the ledger" in debug.stdout + debug.stderr
    assert logtap_variables(airflow, dag_id) == first

    # The run of that interval records it; the plan about 120 days older, beyond the 90-day horizon, is deleted.
    airflow.run("dags", "test", dag_id, recent.isoformat())
    kept = logtap_variables(airflow, dag_id)
    index = kept[f"{key}index"]
    [(s2, e2)] = index["intervals"]
    assert e1 < e2 - 90 * 86_400_000 and index["pruned"] == [[s1, e1]]
    assert set(kept) == {f"{key}index", f"{key}{stamp(s2)}/{stamp(e2)}"}
    assert sorted(map(int, index["edges"])) == [s1, e1, s2, e2]

    # Debugging that interval again reuses its plan; the deleted one is refused, not planned over new edges.
    again = airflow.run("tasks", "test", dag_id, "plan", recent.isoformat())
    assert "reusing the plan" in again.stdout + again.stderr
    refused = airflow.run("tasks", "test", dag_id, "plan", old.isoformat(), check=False)
    assert "deleted by the ledger's horizon" in refused.stdout + refused.stderr
    assert logtap_variables(airflow, dag_id) == kept
    assert exported_variables(airflow, dag_id) == kept  # what Airflow's own CLI shows of them
