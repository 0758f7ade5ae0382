"""How a task tells ``airflow tasks test`` (a debugging run) from a DAG run."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_logtap.compat import in_task_test


def test_airflow_tasks_test_is_told_apart_from_dag_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_TEST_MODE", raising=False)
    run: Any = {"run_id": "manual__2026-12-01T00:00:00+00:00", "ti": object()}
    assert not in_task_test(run)
    assert in_task_test({**run, "run_id": "__airflow_temporary_run_2026-12-01T00:00:00+00:00__"})
    monkeypatch.setenv("AIRFLOW_TEST_MODE", "True")  # what airflow tasks test sets in its process (Airflow 3)
    assert in_task_test(run)
