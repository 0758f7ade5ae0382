"""logtap: load web-server logs from Kafka into S3, HDFS and Elasticsearch/OpenSearch, exactly once, in bounded
offset ranges scheduled by Apache Airflow; replay and backfill any past range side by side with the live load.

Importing this package imports no Airflow: the provider manager calls :func:`get_provider_info` through the
``apache_airflow_provider`` entry point.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
# The project's documentation: its PyPI page, whose description is the README. The same URL is pyproject's
# [project.urls] Documentation (tests/unit/test_provider_info.py keeps them equal).
DOCUMENTATION_URL = "https://pypi.org/project/airflow-provider-logtap/"


def get_provider_info() -> dict[str, Any]:
    """The provider metadata Airflow's providers manager reads (``airflow providers list``)."""
    return {
        "package-name": "airflow-provider-logtap",
        "name": "logtap",
        "description": (
            "Bounded, exactly-once loads of web-server logs from Apache Kafka into S3, HDFS and "
            "Elasticsearch/OpenSearch; replay and backfill of any past offset range."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "logtap",
                "external-doc-url": DOCUMENTATION_URL,
                "tags": ["apache"],
            }
        ],
        "hooks": [
            {
                "integration-name": "logtap",
                "python-modules": ["airflow_provider_logtap.hooks.kafka_range"],
            }
        ],
        "operators": [
            {
                "integration-name": "logtap",
                "python-modules": [
                    "airflow_provider_logtap.operators.plan",
                    "airflow_provider_logtap.operators.s3",
                    "airflow_provider_logtap.operators.hdfs",
                    "airflow_provider_logtap.operators.search",
                    "airflow_provider_logtap.operators.target",
                    "airflow_provider_logtap.operators.replay",
                    "airflow_provider_logtap.operators.commit",
                    "airflow_provider_logtap.operators.reconcile",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "logtap",
                "python-modules": ["airflow_provider_logtap.sensors.kafka"],
            }
        ],
        "triggers": [
            {
                "integration-name": "logtap",
                "python-modules": ["airflow_provider_logtap.triggers.kafka"],
            }
        ],
    }
