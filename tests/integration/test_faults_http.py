"""S3, WebHDFS and search sinks behind a fault-injecting proxy (``devstack.faultproxy``) in front of the real
servers (moto, MiniDFSCluster, OpenSearch): transient faults are retried with backoff in bounded time, faults
that do not stop fail the write with an error naming the server and the fix, and after any of them (and a
re-run) every offset of the range is in the target exactly once, nothing partial visible."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.faultproxy import FaultProxy
from hdfs_helpers import hdfs_tree

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.sinks.archive import ArchiveFormat, read_lines
from airflow_provider_logtap.sinks.s3 import MIN_PART_SIZE, S3ArchiveSink, S3WriteError
from airflow_provider_logtap.targets.s3_archive import s3_client


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """``fault_proxy(upstream_url)``: a fault proxy in front of a real server, stopped after the test."""
    started: list[FaultProxy] = []

    def start(upstream: str) -> FaultProxy:
        proxy = FaultProxy(upstream)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def batches(topic: str, values: list[bytes], start: int = 0, size: int = 1000) -> list[RecordBatch]:
    """The records ``values`` at offsets ``start...`` as the reader yields them (a re-run reads the same)."""
    return [
        RecordBatch.of(
            topic,
            0,
            list(range(start + i, start + i + len(values[i : i + size]))),
            values[i : i + size],
            [1_700_000_000_000 + start + i + k for k in range(len(values[i : i + size]))],
        )
        for i in range(0, len(values), size)
    ]


# --- S3 ------------------------------------------------------------------------------------------------------

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
#: 6.5 MiB of distinct 1 KiB lines, no compression, read in batches of 256: with 5 MiB parts and objects cut at
#: 6 MiB, one write is a multipart upload of two parts, its completion and metadata copy, then one PUT.
LINE = 1023
S3_VALUES = [b"%08d " % i + bytes([97 + i % 26]) * (LINE - 9) for i in range(6656)]
S3_FORMAT = ArchiveFormat(compression="none", max_bytes=6 * 1024 * 1024)


@pytest.fixture
def s3_behind(
    fault_proxy: Callable[[str], FaultProxy], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[FaultProxy, Any]]:
    """``s3_behind(**config_kwargs)``: (proxy, the S3 client the target builds from an Airflow connection
    whose endpoint is the proxy, with those botocore settings in its extra)."""

    def make(**config_kwargs: Any) -> tuple[FaultProxy, Any]:
        proxy = fault_proxy(s3_endpoint)
        conn_id = f"aws_faults_{uuid.uuid4().hex[:8]}"
        extra: dict[str, Any] = {"endpoint_url": proxy.url, "region_name": "us-east-1"}
        if config_kwargs:
            extra["config_kwargs"] = config_kwargs
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}),
        )
        return proxy, s3_client(conn_id)

    return make


def s3_sink(client: Any, bucket: str) -> S3ArchiveSink:
    return S3ArchiveSink(client=client, bucket=bucket, archive_format=S3_FORMAT, part_size=MIN_PART_SIZE)


def assert_archive_exact(s3: Any, bucket: str, topic: str, values: list[bytes]) -> None:
    """The bucket holds each offset once, in order, in complete objects whose metadata covers them, and no
    multipart upload is left open."""
    keys = sorted(
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", ())
    )
    lines: list[bytes] = []
    expected_start = 0
    for key in keys:
        obj = s3.get_object(Bucket=bucket, Key=key)
        meta = obj["Metadata"]
        got = read_lines(obj["Body"].read(), "none")
        assert key.endswith(f"{topic}+0+{expected_start:020d}.log"), key
        assert int(meta["logtap-start-offset"]) == expected_start
        assert int(meta["logtap-record-count"]) == len(got)
        expected_start = int(meta["logtap-end-offset"])
        lines += got
    assert lines == values
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


S3_FAULTS = {
    # 503 SlowDown on the single PUT (the last, small object).
    "put-503": {"method": "PUT", "path": r"\.log$", "header": r"^content-length: [0-9]{4,}$", "status": 503},
    "upload-part-500": {"method": "PUT", "path": r"partNumber=2", "status": 500, "body": INTERNAL},
    "upload-part-reset-mid-body": {"method": "PUT", "path": r"partNumber=1", "reset_request_after": 1 << 20},
    "complete-503": {"method": "POST", "path": r"uploadId=", "status": 503, "body": SLOW_DOWN},
    # The server completed the upload; its answer is cut: S3 (and moto) complete it again when retried.
    "complete-reset-mid-response": {"method": "POST", "path": r"uploadId=", "reset_response_after": 30},
    "copy-500": {"method": "PUT", "header": r"^x-amz-copy-source:", "status": 500, "body": INTERNAL},
    "copy-reset-mid-response": {
        "method": "PUT",
        "header": r"^x-amz-copy-source:",
        "reset_response_after": 30,
    },
}


def test_s3_transient_faults_are_retried_and_the_archive_is_exact(
    s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    """Every kind of fault once, on every step of one write (they are independent: one write keeps the
    test cheap; ``proxy.seen()`` tells which step saw which)."""
    proxy, client = s3_behind()  # the product's default retries (standard mode)
    for rule in S3_FAULTS.values():
        proxy.fail(times=1, **{"body": SLOW_DOWN, **rule} if "status" in rule else rule)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    result = s3_sink(client, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert proxy.injected() == len(S3_FAULTS), proxy.seen()
    assert len(result.objects) == 2 and result.written == len(S3_VALUES)
    assert len(proxy.seen("PUT", r"partNumber=")) >= 2  # the first object really went up in parts
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


S3_FOREVER = {
    "upload-part": {"method": "PUT", "path": r"partNumber=2", "status": 503, "body": SLOW_DOWN},
    "complete": {"method": "POST", "path": r"uploadId=", "status": 500, "body": INTERNAL},
    "copy": {"method": "PUT", "header": r"^x-amz-copy-source:", "status": 503, "body": SLOW_DOWN},
    "slow-part": {"method": "PUT", "path": r"partNumber=1", "delay": 1.5},
}


@pytest.mark.parametrize("fault", S3_FOREVER, ids=str)
def test_s3_fault_that_does_not_stop_fails_in_bounded_time_leaving_nothing(
    fault: str, s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    proxy, client = s3_behind(retries={"mode": "standard", "max_attempts": 2}, read_timeout=1)
    proxy.fail(times=None, **S3_FOREVER[fault])
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    began = time.monotonic()
    with pytest.raises(S3WriteError, match=rf"at {proxy.url} failed after the client's retries") as info:
        s3_sink(client, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert time.monotonic() - began < 20
    assert "task's retry writes the range again" in str(info.value)
    assert proxy.injected() >= 2
    # Nothing partial: no object, no multipart upload left open.
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    _, rerun = s3_behind()  # the next try, with the product's default client settings
    s3_sink(rerun, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


def test_s3_upload_left_open_by_a_failed_abort_is_aborted_by_the_rerun(
    s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    """S3 refuses the part and then the abort (it is down): the upload stays open; the next write aborts it."""
    proxy, client = s3_behind(retries={"mode": "standard", "max_attempts": 2})
    proxy.fail(method="PUT", path=r"partNumber=2", times=None, status=503, body=SLOW_DOWN)
    proxy.fail(method="DELETE", path=r"uploadId=", times=None, status=503, body=SLOW_DOWN)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    with pytest.raises(S3WriteError):
        s3_sink(client, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert len(s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    _, rerun = s3_behind()  # the next try, with the product's default client settings
    s3_sink(rerun, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


def test_s3_an_object_finishes_while_the_next_one_is_read(
    s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    """An object's last steps (its complete and metadata copy: here a copy S3 answers slowly) run while the
    records of the next object are read: the read is not held back by them."""
    proxy, client = s3_behind()
    proxy.fail(method="PUT", header=r"^x-amz-copy-source:", times=1, delay=1.5)
    copied: list[float] = []
    client.meta.events.register("after-call.s3.CopyObject", lambda **_: copied.append(time.monotonic()))
    read: list[float] = []

    def timed() -> Iterator[RecordBatch]:
        for batch in batches(topic_name, S3_VALUES, size=256):
            yield batch
            read.append(time.monotonic())  # the next batch asked for

    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    result = s3_sink(client, bucket).write(rng, timed())
    assert len(result.objects) == 2 and len(copied) == 1 and proxy.injected() == 1
    assert read[-1] < copied[0]  # every record was read before the slow copy answered
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


def test_s3_a_read_that_fails_while_an_object_finishes_leaves_no_upload_open(
    s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    """The reader fails while the first object's (slow) metadata copy is under way: the write waits for it,
    raises the reader's error, leaves no upload open, and the re-run is exact."""
    proxy, client = s3_behind()
    proxy.fail(method="PUT", header=r"^x-amz-copy-source:", times=1, delay=1.0)
    whole = batches(topic_name, S3_VALUES, size=256)

    def failing() -> Iterator[RecordBatch]:
        yield from whole[:-1]
        raise ConnectionError("the broker went away")

    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    with pytest.raises(ConnectionError, match="the broker went away"):
        s3_sink(client, bucket).write(rng, failing())
    assert proxy.injected() == 1
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    s3_sink(client, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


NO_SUCH_UPLOAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code>'
    b"<Message>The specified upload does not exist.</Message></Error>"
)


def test_s3_complete_retried_after_it_succeeded_unseen_is_recognised(
    s3_behind: Callable[..., tuple[FaultProxy, Any]], s3_client: Any, bucket: str, topic_name: str
) -> None:
    """The first complete succeeded but its answer was cut; the retried one finds no upload (stores that
    forget a completed upload answer NoSuchUpload; S3 and moto answer 200 again): the object with the ETag of
    exactly these parts is there, so the write goes on."""
    proxy, client = s3_behind()
    proxy.fail(method="POST", path=r"uploadId=", reset_response_after=30)
    proxy.fail(method="POST", path=r"uploadId=", status=404, body=NO_SUCH_UPLOAD)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(S3_VALUES))
    s3_sink(client, bucket).write(rng, batches(topic_name, S3_VALUES, size=256))
    assert [s.action for s in proxy.seen("POST", r"uploadId=")] == ["reset_response", "status 404"]
    assert_archive_exact(s3_client, bucket, topic_name, S3_VALUES)


# --- search (OpenSearch) -------------------------------------------------------------------------------------

SEARCH_LINES = 240
TOO_MANY = json.dumps(
    {"error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}, "status": 429}
)


@pytest.fixture
def search_behind(
    fault_proxy: Callable[[str], FaultProxy], opensearch_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[FaultProxy, Any]]:
    """``search_behind(timeout=..., **sink_settings)``: (proxy, a search sink whose client the target builds
    from an Airflow opensearch connection to the proxy, with that request timeout: long by default, as a loaded
    machine's OpenSearch node can take seconds over a bulk request, and a timeout is not the fault tested)."""
    from airflow_provider_logtap.core.accesslog import AccessLogParser
    from airflow_provider_logtap.sinks.search import SearchSink
    from airflow_provider_logtap.targets import search_client

    def make(timeout: float = 30, **settings: Any) -> tuple[FaultProxy, Any]:
        proxy = fault_proxy(opensearch_url)
        conn_id = f"search_faults_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {
                    "conn_type": "opensearch",
                    "host": proxy.host,
                    "port": proxy.port,
                    "extra": {"timeout": timeout},
                }
            ),
        )
        sink = SearchSink(
            client=search_client(conn_id),
            index_prefix=f"faults-{uuid.uuid4().hex[:8]}",
            parser=AccessLogParser(),
            bulk_docs=60,
            **{"backoff": 0.05, "max_retries": 4, **settings},
        )
        return proxy, sink

    return make


def search_values(seed: int) -> list[bytes]:
    from devstack.loggen import generate

    return [x.line for x in generate(SEARCH_LINES, seed=seed)]


def assert_indexed_once(opensearch_url: str, sink: Any, topic: str, n: int) -> None:
    """Every offset's document is there once, by ``_id``, under the tap's alias; no dead letters."""
    from opensearchpy import OpenSearch

    client = OpenSearch(opensearch_url)
    client.indices.refresh(index=f"{sink.prefix}*")
    hits = client.search(index=sink.prefix, body={"size": 10 * n, "_source": ["kafka.offset"]})["hits"]
    ids = sorted(h["_id"] for h in hits["hits"])
    assert hits["total"]["value"] == n
    assert ids == sorted(f"{topic}-0-{o}" for o in range(n))
    assert sorted(h["_source"]["kafka"]["offset"] for h in hits["hits"]) == list(range(n))


def _items_429(body: bytes) -> bytes:
    """The server's bulk answer with every third item turned into a 429 rejection."""
    response = json.loads(body)
    for i, item in enumerate(response["items"]):
        if i % 3 == 0:
            result = next(iter(item.values()))
            result.update(
                status=429, error={"type": "es_rejected_execution_exception", "reason": "queue full"}
            )
    response["errors"] = True
    return json.dumps(response).encode()


SLOW_TIMEOUT = 3

SEARCH_FAULTS = {
    "whole-request-429": {"status": 429, "body": TOO_MANY, "headers": {"Content-Type": "application/json"}},
    "whole-request-503": {"status": 503, "body": "", "times": 4},  # the client's own retries take 3
    "items-429": {"rewrite": _items_429},
    # opensearch-py retries a dropped connection 3 times itself, at once: the fourth reaches the sink.
    "dropped-mid-request": {"reset_request_after": 2000, "times": 4},
    "dropped-mid-response": {"reset_response_after": 40, "times": 4},  # the documents were indexed
    # indexed, answered after the client gave up (the test's client waits SLOW_TIMEOUT seconds for this one)
    "slower-than-the-timeout": {"delay": SLOW_TIMEOUT + 0.5, "times": 1},
}


@pytest.mark.parametrize("fault", SEARCH_FAULTS, ids=str)
def test_search_bulk_faults_are_retried_and_every_document_is_indexed_once(
    fault: str, search_behind: Callable[..., tuple[FaultProxy, Any]], opensearch_url: str, topic_name: str
) -> None:
    rule = {"times": 2, **SEARCH_FAULTS[fault]}
    proxy, sink = search_behind(**({"timeout": SLOW_TIMEOUT} if "delay" in rule else {}))
    proxy.fail(method="POST", path=r"/_bulk", **rule)
    values = search_values(seed=len(fault))
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = sink.write(rng, batches(topic_name, values, size=100))
    assert proxy.injected() == rule["times"]
    assert result.written == len(values) and result.dead_letters == 0
    assert_indexed_once(opensearch_url, sink, topic_name, len(values))


@pytest.mark.parametrize("in_flight", [1, 2])
def test_search_cluster_that_keeps_refusing_fails_in_bounded_time_naming_it(
    search_behind: Callable[..., tuple[FaultProxy, Any]], opensearch_url: str, topic_name: str, in_flight: int
) -> None:
    from airflow_provider_logtap.sinks.search import SearchUnavailableError

    proxy, sink = search_behind(max_retries=3, bulk_concurrency=in_flight)
    proxy.fail(method="POST", path=r"/_bulk", times=None, status=429, body=TOO_MANY)
    values = search_values(seed=3)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    began = time.monotonic()
    with pytest.raises(SearchUnavailableError, match=rf"OpenSearch at {proxy.host}:{proxy.port}") as info:
        sink.write(rng, batches(topic_name, values, size=100))
    assert time.monotonic() - began < 10
    assert "failed 4 times (HTTP 429" in str(info.value) and "the task's retry indexes the range" in str(
        info.value
    )
    # each request in flight was tried 1 + max_retries times; the write's later requests were never sent
    assert proxy.injected() == 4 * in_flight
    proxy.clear()
    sink.write(rng, batches(topic_name, values, size=100))
    assert_indexed_once(opensearch_url, sink, topic_name, len(values))


# --- WebHDFS -------------------------------------------------------------------------------------------------

HDFS_LINES = 1200


@pytest.fixture
def hdfs_behind(
    fault_proxy: Callable[[str], FaultProxy], webhdfs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[FaultProxy, Any]]:
    """``hdfs_behind(**extra)``: (proxy, the hdfs client the targets build from an Airflow WebHDFS connection
    to the proxy, with small retry settings in its extra). NameNode redirects to the DataNode come back
    through the proxy."""
    from airflow_provider_logtap.targets import webhdfs_client

    def make(**extra: Any) -> tuple[FaultProxy, Any]:
        proxy = fault_proxy(webhdfs["url"])
        conn_id = f"webhdfs_faults_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {
                    "conn_type": "webhdfs",
                    "host": proxy.host,
                    "port": proxy.port,
                    "login": webhdfs["user"],
                    "extra": {"retries": 3, "retry_backoff": 0.05, "timeout": 2, **extra},
                }
            ),
        )
        return proxy, webhdfs_client(conn_id)

    return make


def hdfs_values(seed: int) -> list[bytes]:
    from devstack.loggen import generate

    return [x.line for x in generate(HDFS_LINES, seed=seed)]


def assert_raw_exact(client: Any, base: str, topic: str, values: list[bytes]) -> None:
    """Each offset once, in order, in complete files named by their first offset; no temporary file."""
    files = hdfs_tree(client, base)
    assert not [p for p in files if "/." in p or p.startswith(".")], sorted(files)
    lines = [line for _path, data in sorted(files.items()) for line in data.splitlines()]
    assert lines == values


def assert_event_time_exact(client: Any, base: str, topic: str, values: list[bytes]) -> None:
    """Each line once across the event-time partitions (plus dead letters: none here); no temporary file;
    the manifest complete."""
    files = hdfs_tree(client, base)
    assert not [p for p in files if "/." in p], sorted(files)
    data_files = {p: d for p, d in files.items() if "/dt=" in p}
    lines = sorted(line for d in data_files.values() for line in d.splitlines())
    assert lines == sorted(values)
    manifests = [json.loads(d) for p, d in files.items() if "/_logtap/" in p]
    assert [m["state"] for m in manifests] == ["complete"]


# Rules on NameNode requests (op=...&user.name) and on DataNode ones (the redirect's namenoderpcaddress=).
HDFS_FAULTS = {
    "create-503": {"method": "PUT", "path": r"op=CREATE(?!.*namenoderpcaddress)", "status": 503},
    "datanode-write-500": {"method": "PUT", "path": r"op=CREATE.*namenoderpcaddress", "status": 500},
    "datanode-write-reset-mid-body": {
        "method": "PUT",
        "path": r"namenoderpcaddress",
        "reset_request_after": 3000,
    },
    "rename-503": {"method": "PUT", "path": r"op=RENAME", "status": 503},
    # The NameNode renamed; its answer is cut: the repeated rename finds the file already in place.
    "rename-reset-mid-response": {"method": "PUT", "path": r"op=RENAME", "reset_response_after": 12},
    # Deleting the files of an earlier, differently cut write of the range (a replace never deletes: it is one
    # rename with overwrite).
    "delete-reset-mid-response": {"method": "DELETE", "path": r"op=DELETE", "reset_response_after": 12},
}


@pytest.mark.parametrize("fault", HDFS_FAULTS, ids=str)
def test_webhdfs_raw_faults_are_retried_and_each_offset_is_there_once(
    fault: str,
    hdfs_behind: Callable[..., tuple[FaultProxy, Any]],
    hdfs_client: Any,
    hdfs_base: str,
    topic_name: str,
) -> None:
    from airflow_provider_logtap.sinks.hdfs import HdfsRawSink

    proxy, client = hdfs_behind()
    proxy.fail(times=2, **HDFS_FAULTS[fault])
    values = hdfs_values(seed=len(fault))
    if fault.startswith("delete"):
        earlier = HdfsRawSink(
            client=hdfs_client,
            base=hdfs_base,
            archive_format=ArchiveFormat(compression="none", max_records=250),
        )
        earlier.write(
            OffsetRange(topic=topic_name, partition=0, start=0, end=len(values)),
            batches(topic_name, values, size=200),
        )
    sink = HdfsRawSink(
        client=client, base=hdfs_base, archive_format=ArchiveFormat(compression="none", max_records=400)
    )
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = sink.write(rng, batches(topic_name, values, size=200))
    assert proxy.injected() == 2, proxy.seen()
    assert result.written == len(values) and len(result.objects) == 3
    assert proxy.seen("PUT", r"namenoderpcaddress")  # DataNode traffic went through the proxy too
    assert_raw_exact(hdfs_client, hdfs_base, topic_name, values)


@pytest.mark.parametrize(
    "fault", ["create-503", "datanode-write-reset-mid-body", "rename-reset-mid-response"]
)
def test_webhdfs_event_time_faults_are_retried_and_each_line_is_there_once(
    fault: str,
    hdfs_behind: Callable[..., tuple[FaultProxy, Any]],
    hdfs_client: Any,
    hdfs_base: str,
    topic_name: str,
) -> None:
    from airflow_provider_logtap.core.eventtime import EventTimeReader, TimeFormat
    from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
    from airflow_provider_logtap.sinks.hdfs import HdfsEventTimeSink

    proxy, client = hdfs_behind()
    proxy.fail(times=2, **HDFS_FAULTS[fault])
    values = hdfs_values(seed=7)
    sink = HdfsEventTimeSink(
        client=client,
        base=hdfs_base,
        partitioner=EventTimePartitioner(EventTimeReader(TimeFormat()), PartitionTemplate("dt=%Y-%m-%d")),
    )
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = sink.write(rng, batches(topic_name, values, size=200))
    assert proxy.injected() == 2, proxy.seen()
    assert result.written == len(values) and len(result.partitions) >= 2
    assert_event_time_exact(hdfs_client, hdfs_base, topic_name, values)


def test_webhdfs_fault_that_does_not_stop_fails_in_bounded_time_and_a_rerun_is_exact(
    hdfs_behind: Callable[..., tuple[FaultProxy, Any]], hdfs_client: Any, hdfs_base: str, topic_name: str
) -> None:
    from airflow_provider_logtap.sinks.hdfs import HdfsRawSink, WebHdfsUnavailableError

    proxy, client = hdfs_behind(retries=2)
    # The second file's upload to the DataNode is answered 503, again and again.
    proxy.fail(
        method="PUT",
        path=r"%2B0%2B0+400.*namenoderpcaddress|\+0\+0+400.*namenoderpcaddress",
        times=None,
        status=503,
    )
    values = hdfs_values(seed=11)
    sink = HdfsRawSink(
        client=client, base=hdfs_base, archive_format=ArchiveFormat(compression="none", max_records=400)
    )
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    began = time.monotonic()
    with pytest.raises(
        WebHdfsUnavailableError, match=rf"WebHDFS at http://{proxy.host}:{proxy.port}"
    ) as info:
        sink.write(rng, batches(topic_name, values, size=200))
    assert time.monotonic() - began < 10
    assert "the task's retry writes the range again" in str(info.value)
    assert proxy.injected() == 3  # the first attempt and two retries
    visible = [p for p in hdfs_tree(hdfs_client, hdfs_base) if not p.rsplit("/", 1)[-1].startswith(".")]
    assert [p.rsplit("/", 1)[-1] for p in visible] == [
        f"{topic_name}+0+{0:020d}.log"
    ]  # the complete first file
    proxy.clear()
    sink.write(rng, batches(topic_name, values, size=200))
    assert_raw_exact(hdfs_client, hdfs_base, topic_name, values)


def test_elasticsearch_api_whole_request_429_and_dropped_answers_are_retried(
    fault_proxy: Callable[[str], FaultProxy],
    elasticsearch_url: str,
    monkeypatch: pytest.MonkeyPatch,
    topic_name: str,
) -> None:
    """The same through the Elasticsearch client (elastic-transport retries 429 and dropped connections
    3 times itself, at once; the fourth reaches the sink)."""
    from elasticsearch import Elasticsearch

    from airflow_provider_logtap.core.accesslog import AccessLogParser
    from airflow_provider_logtap.sinks.search import SearchSink
    from airflow_provider_logtap.targets import search_client

    proxy = fault_proxy(elasticsearch_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ES_FAULTS",
        json.dumps({"conn_type": "elasticsearch", "host": proxy.host, "port": proxy.port}),
    )
    proxy.fail(path=r"/_bulk", times=4, status=429, body=TOO_MANY)  # elasticsearch-py sends PUT /_bulk
    proxy.fail(path=r"/_bulk", times=4, reset_response_after=40)
    sink = SearchSink(
        client=search_client("es_faults"),
        index_prefix=f"faults-{uuid.uuid4().hex[:8]}",
        parser=AccessLogParser(),
        bulk_docs=60,
        backoff=0.05,
    )
    values = search_values(seed=5)
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(values))
    result = sink.write(rng, batches(topic_name, values, size=100))
    assert proxy.injected() == 8 and result.written == len(values), proxy.seen()
    client = Elasticsearch(elasticsearch_url)
    client.indices.refresh(index=f"{sink.prefix}*")
    hits = client.search(index=sink.prefix, size=10 * len(values), source=False)["hits"]
    assert sorted(h["_id"] for h in hits["hits"]) == sorted(f"{topic_name}-0-{o}" for o in range(len(values)))
