from __future__ import annotations

import pytest
from services import (  # noqa: F401 - fixtures
    airflow_connections,
    bucket,
    hdfs_base,
    hdfs_client,
    kafka_bootstrap,
    s3_client,
    s3_endpoint,
    services_dir,
    topic_name,
    webhdfs,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
