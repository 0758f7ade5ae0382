"""Session-wide real services for the integration and system tests, started by the dev stack.

Set ``LOGTAP_KAFKA_BOOTSTRAP`` / ``LOGTAP_S3_ENDPOINT`` to use servers that are already running (their
owner stops them); otherwise each is started on free ports and stopped by its PID at the end of the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def kafka_bootstrap(services_dir: Path) -> Iterator[str]:
    if env := os.environ.get("LOGTAP_KAFKA_BOOTSTRAP"):
        yield env
        return
    from devstack import kafka

    service = kafka.start(services_dir / "kafka")
    try:
        yield service.info["bootstrap"]
        assert service.alive(), f"Kafka (pid {service.pid}) died during the tests:\n{service.log_tail()}"
    finally:
        service.stop()


@pytest.fixture(scope="session")
def s3_endpoint(services_dir: Path) -> Iterator[str]:
    if env := os.environ.get("LOGTAP_S3_ENDPOINT"):
        yield env
        return
    from devstack import s3

    service = s3.start(services_dir / "s3")
    try:
        yield service.info["endpoint_url"]
    finally:
        service.stop()


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
        webhdfs = request.getfixturevalue("webhdfs")
        host, port = webhdfs["url"].removeprefix("http://").rsplit(":", 1)
        monkeypatch.setenv(
            "AIRFLOW_CONN_WEBHDFS_DEFAULT",
            json.dumps({"conn_type": "webhdfs", "host": host, "port": int(port), "login": webhdfs["user"]}),
        )


@pytest.fixture(scope="session")
def opensearch_url(services_dir: Path) -> Iterator[str]:
    """A real OpenSearch 2.19 node (``LOGTAP_OPENSEARCH_URL`` to reuse one)."""
    if env := os.environ.get("LOGTAP_OPENSEARCH_URL"):
        yield env
        return
    from devstack import opensearch

    service = opensearch.start(services_dir / "opensearch")
    try:
        yield service.info["url"]
    finally:
        service.stop()


@pytest.fixture(scope="session")
def elasticsearch_url(services_dir: Path) -> Iterator[str]:
    """The Elasticsearch API of noida-db (no Elasticsearch server can be installed here; see dev/README.md)."""
    if env := os.environ.get("LOGTAP_ELASTICSEARCH_URL"):
        yield env
        return
    from devstack import noida

    service = noida.start(services_dir / "noida")
    try:
        yield service.info["url"]
    finally:
        service.stop()


@pytest.fixture(scope="session")
def geoip_database() -> str:
    """The DB-IP City Lite database fetched by ``dev/geoip/fetch.sh`` (CI runs it; see dev/geoip/README.md)."""
    path = ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"
    if not path.exists():
        pytest.fail(f"{path} is missing: run bash dev/geoip/fetch.sh")
    return str(path)
