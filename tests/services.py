"""Session-wide real services for the integration and system tests, started by the dev stack.

Set ``LOGTAP_KAFKA_BOOTSTRAP``, ``LOGTAP_S3_ENDPOINT``, ``LOGTAP_WEBHDFS_URL``, ``LOGTAP_OPENSEARCH_URL`` or
``LOGTAP_ELASTICSEARCH_URL`` to use servers that are already running (their owner stops them); otherwise each
is started on free ports, checked to be alive at the end, and stopped by its PID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


def _served(env: str, start: Callable[[], Any], key: str) -> Iterator[str]:
    """``$env`` if set, else ``info[key]`` of a service started here (stopped, and checked alive, at the end)."""
    if value := os.environ.get(env):
        yield value
        return
    service = start()
    try:
        yield service.info[key]
        assert service.alive(), (
            f"{service.name} (pid {service.pid}) died during the tests:\n{service.log_tail()}"
        )
    finally:
        service.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(services_dir: Path) -> Iterator[str]:
    from devstack import kafka

    yield from _served("LOGTAP_KAFKA_BOOTSTRAP", lambda: kafka.start(services_dir / "kafka"), "bootstrap")


@pytest.fixture(scope="session")
def s3_endpoint(services_dir: Path) -> Iterator[str]:
    from devstack import s3

    yield from _served("LOGTAP_S3_ENDPOINT", lambda: s3.start(services_dir / "s3"), "endpoint_url")


@pytest.fixture(scope="session")
def webhdfs(services_dir: Path) -> Iterator[dict[str, str]]:
    """``{"url": "http://127.0.0.1:<namenode http>", "user": ...}`` of a real HDFS (MiniDFSCluster)."""
    if env := os.environ.get("LOGTAP_WEBHDFS_URL"):
        yield {"url": env, "user": os.environ.get("LOGTAP_WEBHDFS_USER", "root")}
        return
    from devstack import hdfs

    service = hdfs.start(services_dir / "hdfs")
    try:
        yield {"url": service.info["webhdfs_url"], "user": service.info["user"]}
    finally:
        service.stop()


@pytest.fixture
def hdfs_client(webhdfs: dict[str, str]):  # type: ignore[no-untyped-def]
    from hdfs import InsecureClient

    return InsecureClient(webhdfs["url"], user=webhdfs["user"])


@pytest.fixture
def hdfs_base(hdfs_client) -> str:  # type: ignore[no-untyped-def]
    """A fresh base directory for one test."""
    base = f"/logtap-tests/{uuid.uuid4().hex[:10]}"
    hdfs_client.makedirs(base)
    return base


@pytest.fixture
def topic_name() -> str:
    return f"weblogs-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def s3_client(s3_endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3_client) -> str:  # type: ignore[no-untyped-def]
    name = f"logtap-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def airflow_connections(
    kafka_bootstrap: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Airflow connections (by environment variable, as a deployment may define them) to the test services."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DEFAULT",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    if "webhdfs" in request.fixturenames:
        webhdfs_connection(monkeypatch, request.getfixturevalue("webhdfs"))


def webhdfs_connection(monkeypatch: pytest.MonkeyPatch, webhdfs: dict[str, str]) -> None:
    """The Airflow connection ``webhdfs_default`` (by environment variable) to the test HDFS."""
    import json

    host, port = webhdfs["url"].removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WEBHDFS_DEFAULT",
        json.dumps({"conn_type": "webhdfs", "host": host, "port": int(port), "login": webhdfs["user"]}),
    )


def search_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, url: str) -> None:
    """The Airflow connection ``conn_id`` (by environment variable) to the search server at ``url``."""
    import json

    host, port = url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "opensearch", "host": host, "port": int(port)}),
    )


@pytest.fixture(scope="session")
def opensearch_url(services_dir: Path) -> Iterator[str]:
    """A real OpenSearch 2.19 node (``LOGTAP_OPENSEARCH_URL`` to reuse one)."""
    from devstack import opensearch

    yield from _served("LOGTAP_OPENSEARCH_URL", lambda: opensearch.start(services_dir / "opensearch"), "url")


@pytest.fixture(scope="session")
def elasticsearch_url(services_dir: Path) -> Iterator[str]:
    """The Elasticsearch API of noida-db (no Elasticsearch server can be installed here; see dev/README.md)."""
    from devstack import noida

    yield from _served("LOGTAP_ELASTICSEARCH_URL", lambda: noida.start(services_dir / "noida"), "url")


@pytest.fixture(scope="session")
def geoip_database() -> str:
    """The DB-IP City Lite database fetched by ``dev/geoip/fetch.sh`` (CI runs it; see dev/geoip/README.md)."""
    path = ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"
    if not path.exists():
        pytest.fail(f"{path} is missing: run bash dev/geoip/fetch.sh")
    return str(path)
