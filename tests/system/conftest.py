from __future__ import annotations

import pytest
from services import (  # noqa: F401 - fixtures
    bucket,
    kafka_bootstrap,
    s3_client,
    s3_endpoint,
    services_dir,
    topic_name,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.system)
