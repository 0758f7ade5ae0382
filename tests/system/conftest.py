from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_env import AirflowEnv, make_airflow_env


@pytest.fixture(scope="session")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, s3_endpoint: str, webhdfs: dict[str, str]
) -> AirflowEnv:
    """One real Airflow (metadata DB migrated once) for the system tests; each test writes its own taps file."""
    home = tmp_path_factory.mktemp("airflow")
    return make_airflow_env(
        home,
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
        taps_file=home / "taps.yaml",
        webhdfs=webhdfs,
    )


def write_taps(airflow: AirflowEnv, *taps: dict[str, Any]) -> None:
    """Declare taps (no schedule, no retries unless given) in the Airflow's taps file."""
    Path(airflow.env["LOGTAP_TAPS_FILE"]).write_text(
        yaml.safe_dump({"taps": [{"schedule": None, "retries": 0, **t} for t in taps]})
    )


@pytest.fixture(scope="session")
def live_airflow(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, s3_endpoint: str, webhdfs: dict[str, str]
) -> Any:
    """A running Airflow: PostgreSQL metadata DB, LocalExecutor, scheduler + DAG processor + triggerer + API
    server, as a deployment runs it. Each test writes its own taps file (the DAG processor re-parses it)."""
    from live import running_airflow

    with running_airflow(
        tmp_path_factory.mktemp("live-airflow"),
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
        webhdfs=webhdfs,
    ) as airflow:
        yield airflow
