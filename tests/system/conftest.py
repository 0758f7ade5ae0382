from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_env import AirflowEnv, installed, make_airflow_env

# A system test marked ``@pytest.mark.airflow2`` runs on Airflow 3 and on Airflow 2.11 (its ``airflow`` or
# ``live_airflow`` fixture is parametrized ``airflow3`` / ``airflow2``); the others run on Airflow 3 only.
AIRFLOW_FIXTURES = ("airflow", "live_airflow")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture in AIRFLOW_FIXTURES:
        if fixture in metafunc.fixturenames:
            versions = ["3", "2"] if metafunc.definition.get_closest_marker("airflow2") else ["3"]
            metafunc.parametrize(
                fixture, versions, indirect=True, ids=[f"airflow{v}" for v in versions], scope="session"
            )
            return


def airflow_version(request: pytest.FixtureRequest) -> str:
    """The Airflow major version a parametrized fixture is for; Airflow 2.11 must be installed under
    ``$LOGTAP_REQUIRE_AIRFLOW2`` (CI), and is otherwise skipped when it is not."""
    version = str(getattr(request, "param", "3"))
    if not installed(version):
        message = f"Airflow {version} is not installed (bash dev/install.sh installs .venv-airflow2)"
        if os.environ.get("LOGTAP_REQUIRE_AIRFLOW2"):
            pytest.fail(message)
        pytest.skip(message)
    return version


@pytest.fixture(scope="session")
def airflow(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    s3_endpoint: str,
    webhdfs: dict[str, str],
) -> Iterator[AirflowEnv]:
    """One real Airflow (metadata DB migrated once) for the system tests; each test writes its own taps file.
    Its commands run in forks of a server that has imported Airflow once (``AirflowEnv.fork_server``).
    At the end of the session no connection secret may be anywhere in it (see :func:`assert_no_secrets`)."""
    version = airflow_version(request)
    home = tmp_path_factory.mktemp(f"airflow{version}-")
    airflow = make_airflow_env(
        home,
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
        taps_file=home / "taps.yaml",
        webhdfs=webhdfs,
        version=version,
    )
    airflow.fork_server = os.environ.get("LOGTAP_TEST_FORK_SERVER", "1") != "0"
    try:
        yield airflow
    finally:
        airflow.stop_fork_server()
    assert_no_secrets(airflow)


def assert_no_secrets(airflow: AirflowEnv) -> None:
    """Fail naming each place of the Airflow's files and metadata DB where a connection secret shows, after
    all the session's tests on it ran (tests/system/test_secrets.py)."""
    sightings = airflow.secret_sightings()
    assert not sightings, f"connection secrets leaked in the Airflow home {airflow.home}: {sightings}"


def write_taps(airflow: AirflowEnv, *taps: dict[str, Any]) -> None:
    """Declare taps (no schedule, no retries unless given) in the Airflow's taps file."""
    Path(airflow.env["LOGTAP_TAPS_FILE"]).write_text(
        yaml.safe_dump({"taps": [{"schedule": None, "retries": 0, **t} for t in taps]})
    )


@pytest.fixture(scope="session")
def live_airflow(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    s3_endpoint: str,
    webhdfs: dict[str, str],
) -> Any:
    """A running Airflow: PostgreSQL metadata DB, LocalExecutor, scheduler + DAG processor + triggerer + API
    server (on Airflow 2: scheduler + triggerer + webserver), as a deployment runs it. Each test writes its own
    taps file (the DAG processor re-parses it)."""
    from live import running_airflow

    version = airflow_version(request)
    with running_airflow(
        tmp_path_factory.mktemp(f"live-airflow{version}-"),
        kafka_bootstrap=kafka_bootstrap,
        s3_endpoint=s3_endpoint,
        webhdfs=webhdfs,
        version=version,
    ) as airflow:
        yield airflow
        assert_no_secrets(airflow)
