"""The daily reconcile DAG of each topic: its taps, schedule, params and the operator's flags."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_logtap.compat import AirflowFailException
from airflow_provider_logtap.dag_factory import RECONCILE_SCHEDULE, reconcile_dags
from airflow_provider_logtap.operators.reconcile import KafkaReconcileOperator, _flag
from airflow_provider_logtap.taps import parse_tap


def tap(name: str, topic: str, kind: str = "s3_archive") -> Any:
    target = {"type": kind, "bucket": "b"} if kind == "s3_archive" else {"type": kind, "base_path": "/x"}
    return parse_tap({"name": name, "topic": topic, "target": target})


def test_one_daily_reconcile_dag_per_topic_covers_every_tap_of_it() -> None:
    taps = [tap("a", "weblogs"), tap("b", "weblogs", "hdfs_raw"), tap("c", "clicks", "hdfs_raw")]
    dags = reconcile_dags(taps)
    assert sorted(dags) == ["logtap_reconcile_clicks", "logtap_reconcile_weblogs"]
    dag = dags["logtap_reconcile_weblogs"]
    [task] = dag.tasks
    assert isinstance(task, KafkaReconcileOperator)
    assert task.topic == "weblogs" and task.fail_on_gap is True
    assert [t.name for t in task.taps] == [
        "a",
        "b",
        "c",
    ]  # all: the archive tap of the topic may be any of them
    assert dag.params.dump() == {"repair": False}
    assert dag.max_active_runs == 1 and "reconcile" in dag.tags
    assert RECONCILE_SCHEDULE == "@daily"
    assert dag.description == "logtap: reconcile a, b against Kafka (weblogs)"  # the topic's taps are checked


def test_flags_render_from_templates_and_refuse_anything_else() -> None:
    assert _flag("repair", True) is True and _flag("repair", "False") is False and _flag("repair", "true")
    with pytest.raises(ValueError, match=r"repair must be one of \{True, False\}. Got 'maybe'"):
        _flag("repair", "maybe")


def test_a_selection_naming_no_tap_fails_without_retry() -> None:
    op = KafkaReconcileOperator(task_id="r", taps=[tap("a", "weblogs")], topic="nope")
    with pytest.raises(AirflowFailException, match="no tap to reconcile"):
        op.execute({"ti": None, "run_id": "x"})  # type: ignore[arg-type]
