"""Shared test set-up: the dev stack on sys.path, and an isolated AIRFLOW_HOME for every test session."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))
sys.path.insert(0, str(ROOT / "tests"))

# The real services (Kafka, S3, HDFS) as session fixtures, for the integration and system tests.
pytest_plugins = ["services"]

# Airflow reads its configuration at import: give the whole session a private home before anything imports it.
if "AIRFLOW_HOME" not in os.environ or os.environ.get("LOGTAP_TEST_OWN_AIRFLOW_HOME", "1") == "1":
    _home = Path(tempfile.mkdtemp(prefix="logtap-airflow-home-"))
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

# opensearch-py logs every request as a curl command with its whole body at INFO.
import logging  # noqa: E402

logging.getLogger("opensearchpy.trace").setLevel(logging.WARNING)
logging.getLogger("opensearch").setLevel(logging.WARNING)
logging.getLogger("elastic_transport.transport").setLevel(logging.WARNING)
