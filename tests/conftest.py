"""Shared test set-up: the dev stack on sys.path, and an isolated AIRFLOW_HOME for every test session."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))
sys.path.insert(0, str(ROOT / "tests"))

# The real services (Kafka, S3, HDFS) as session fixtures, for the integration and system tests; a StatsD socket.
pytest_plugins = ["services", "statsd_helpers"]

# Airflow reads its configuration at import: give the whole session a private home before anything imports it.
if "AIRFLOW_HOME" not in os.environ or os.environ.get("LOGTAP_TEST_OWN_AIRFLOW_HOME", "1") == "1":
    _home = Path(tempfile.mkdtemp(prefix="logtap-airflow-home-"))
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

# Property tests check what a function returns, not how fast one example runs: beside three xdist workers and the
# services on a loaded CI machine, one example can take several times its usual time (a 55 ms chunking example
# took 317 ms once, over Hypothesis's default 200 ms deadline, and failed the run as "flaky"). No deadline, anywhere.
from hypothesis import settings  # noqa: E402

settings.register_profile("logtap", deadline=None)
settings.load_profile("logtap")

# opensearch-py logs every request as a curl command with its whole body at INFO.
import logging  # noqa: E402

logging.getLogger("opensearchpy.trace").setLevel(logging.WARNING)
logging.getLogger("opensearch").setLevel(logging.WARNING)
logging.getLogger("elastic_transport.transport").setLevel(logging.WARNING)


#: The modules whose ``airflow`` (Airflow 3, ``airflow dags test``) tests form a second group, so that two workers
#: share the Airflow 3 ``airflow`` tests, each with a home of its own (the fixture is per session, so per worker);
#: the split balances the modules' measured run times.
SECOND_AIRFLOW3_HOME = frozenset(
    {
        "test_incremental_hdfs",
        "test_rebuild_partitions",
        "test_reconcile_dag",
        "test_secrets",
        "test_tasks_test_safe",
    }
)

#: The order in which pytest-xdist hands out the long units of work (a group runs in one worker, one test after
#: the other; a test of no group is a unit of its own): longest first, by the measured run times (seconds of a
#: 3-worker run on 2 cores, other work beside it), so that no worker is left with a long group at the end. Units
#: not named here follow, in collection order. xdist's own order (by number of tests per unit) is turned off
#: (see pytest_configure).
LONGEST_FIRST = (
    "live_airflow3",  # ~1200 s: PostgreSQL + scheduler, DAG processor, triggerer, API server; backfills, sensors
    "live_airflow2",  # ~900 s
    "airflow3b",  # ~750 s
    "airflow3",  # ~600 s
    "airflow2",  # ~400 s
    "tests/system/test_paused_default.py",  # ~300 s: its own running Airflow
    "celery",  # tests/system/test_celery_scale_out.py: its own running Airflow, CeleryExecutor
    "wheel_install",  # ~120 s
    "tests/system/test_sensor_deadline.py",  # ~120 s: its own home (the idle sensor's dags test)
)


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False  # the units in the order of LONGEST_FIRST


def _unit_rank(item: pytest.Item) -> int:
    group = item.get_closest_marker("xdist_group")
    names = [group.args[0]] if group else []
    names.append(str(item.path.relative_to(ROOT).as_posix()))
    return min((LONGEST_FIRST.index(n) for n in names if n in LONGEST_FIRST), default=len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by their folder (``-m integration``, ``-m system``, ``-m "not system"``). Under
    ``pytest -n N --dist loadgroup`` (dev/test.sh), the tests of one Airflow installation run in one worker, one
    after the other: they share its metadata DB and taps file (one group per fixture and Airflow version; the
    Airflow 3 ``airflow`` tests in two, see :data:`SECOND_AIRFLOW3_HOME`); the long units go first
    (:data:`LONGEST_FIRST`), each group's tests in their own order."""
    for item in items:
        kind = item.path.relative_to(ROOT / "tests").parts[0]
        if kind in ("integration", "system"):
            item.add_marker(getattr(pytest.mark, kind))
        for fixture in ("live_airflow", "airflow"):
            if fixture in getattr(item, "fixturenames", ()):
                callspec = getattr(item, "callspec", None)
                version = callspec.params.get(fixture, "3") if callspec else "3"
                group = f"{fixture}{version}"
                if group == "airflow3" and item.path.stem in SECOND_AIRFLOW3_HOME:
                    group += "b"
                item.add_marker(pytest.mark.xdist_group(group))
                break
    # A pytest-xdist worker's collection under --dist loadgroup (xdist sets the worker's dist option to "no"):
    if getattr(config.option, "loadgroup", False):
        items.sort(key=_unit_rank)  # stable: the order within a unit, and of the others, stays
