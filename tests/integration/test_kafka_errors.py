"""Kafka connections that cannot be reached, and successful checks, as the task log shows them: librdkafka's
lines through Python logging at their own level (never on stderr, which Airflow shows as ERROR), repeats
collapsed, a bounded wait and one error that names the connection and what to check."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from typing import Any

import pytest
from kafka_helpers import create_topic, produce

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import NotRetryable
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.client import LIBRDKAFKA_LOGGER, KafkaUnreachableError
from airflow_provider_logtap.sensors.kafka import KafkaBacklogSensor, KafkaRetentionRiskCheckOperator

# The clients of the connections these tests build carry this client.id: librdkafka names a client
# "<client.id>#<type>-<n>", and its own stderr format is "%<level>|<time>|<fac>|<name>| ...". Only lines of
# these clients count: a client another test of the same process left alive (its broker gone) prints its own.
CLIENT_ID = "logtap-stderr-check"
STDERR_LINE = re.compile(rf"^%\d\|[^|]*\|[^|]*\|{re.escape(CLIENT_ID)}#", re.MULTILINE)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


@pytest.fixture
def closed_connection(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow Kafka connection whose bootstrap.servers is a closed port."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_CLOSED",
        json.dumps(
            {
                "conn_type": "kafka",
                "extra": {"bootstrap.servers": f"127.0.0.1:{closed_port}", "client.id": CLIENT_ID},
            }
        ),
    )
    return f"127.0.0.1:{closed_port}"


def test_the_stderr_check_sees_a_raw_line_of_a_client_of_these_connections(
    closed_port: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """The check the tests below end with can fail: a client with their client.id and no logger prints a
    line it finds; the same client with another client.id prints one it leaves."""
    from confluent_kafka import Producer

    capfd.readouterr()
    for client_id in (CLIENT_ID, "another-test"):
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{closed_port}", "client.id": client_id})
        producer.poll(0.5)
        del producer
    err = capfd.readouterr().err
    assert re.search(r"^%\d\|[^|]*\|[^|]*\|another-test#producer-\d+\|", err, re.MULTILINE), err
    assert len(STDERR_LINE.findall(err)) >= 1, err


def librdkafka_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER]


def assert_names_the_connection(err: BaseException, servers: str) -> None:
    text = str(err)
    for part in (
        "'kafka_closed'",
        servers,
        "Connection refused",
        "advertised.listeners",
        "security.protocol",
    ):
        assert part in text, (part, text)


def test_a_closed_port_fails_the_sensor_within_the_connect_timeout_with_one_clear_error(
    closed_connection: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The default connect timeout (30 s): where librdkafka printed a thousand FAIL lines and a raw
    KafkaException, the log holds its first FAIL line, one count of the repeats, and the error."""
    caplog.set_level(logging.DEBUG)
    sensor = KafkaBacklogSensor(
        task_id="wait", topic="weblogs", group_id="logtap-weblogs", kafka_config_id="kafka_closed"
    )
    began = time.monotonic()
    with pytest.raises(KafkaUnreachableError) as failed:
        sensor.poke({})  # type: ignore[arg-type]
    took = time.monotonic() - began
    assert 29 < took < 45, took
    assert not isinstance(failed.value, NotRetryable)
    assert_names_the_connection(failed.value, closed_connection)
    assert "within 30s" in str(failed.value)
    records = librdkafka_records(caplog)
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert 1 <= len(errors) <= 4, errors
    assert any(re.search(r"\(repeated \d{2,} times in \d+s\)$", m) for m in errors), errors
    assert not STDERR_LINE.search(capfd.readouterr().err)


@pytest.mark.parametrize("operation", ["lag", "commit", "read", "admin", "consumer", "retention_check"])
def test_every_client_a_hook_builds_is_bounded_and_named(
    operation: str,
    closed_connection: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The operator builds its own hook with the default connect timeout: shortened here.
    monkeypatch.setattr("airflow_provider_logtap.hooks.kafka_range.DEFAULT_CONNECT_TIMEOUT", 3.0)
    hook = KafkaRangeHook(kafka_config_id="kafka_closed", connect_timeout=3)
    calls: dict[str, Any] = {
        "lag": lambda: hook.lag("g", "weblogs"),
        "commit": lambda: hook.commit("g", "weblogs", {0: (5, "")}),
        "read": lambda: list(hook.read(OffsetRange(topic="weblogs", partition=0, start=0, end=5))),
        "admin": hook.admin,  # as the replay operator lists partitions with it
        "consumer": lambda: hook.consumer(None).__enter__(),  # as the interval planner reads timestamps
        "retention_check": lambda: KafkaRetentionRiskCheckOperator(
            task_id="risk", topic="weblogs", group_id="g", kafka_config_id="kafka_closed"
        ).execute({}),  # type: ignore[arg-type]
    }
    began = time.monotonic()
    with pytest.raises(KafkaUnreachableError) as failed:
        calls[operation]()
    assert time.monotonic() - began < 10
    assert_names_the_connection(failed.value, closed_connection)
    records = librdkafka_records(caplog)
    assert len([r for r in records if r.levelno >= logging.ERROR]) <= 4
    # the hook's clients keep the connection's client.id: the stderr check below sees their lines
    assert any(f"[{CLIENT_ID}#" in r.getMessage() for r in records), [r.getMessage() for r in records]
    assert not STDERR_LINE.search(capfd.readouterr().err)


@pytest.fixture
def hook(airflow_connections: None, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> KafkaRangeHook:
    """The default connection to the test broker, its clients named by CLIENT_ID."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DEFAULT",
        json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap, "client.id": CLIENT_ID}}
        ),
    )
    return KafkaRangeHook()


def test_successful_checks_log_nothing_at_error(
    hook: KafkaRangeHook,
    kafka_bootstrap: str,
    topic_name: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """librdkafka's informational lines (e.g. BGQUEUE "Purging 1 unserved events from background queue" when
    an admin client is destroyed) went to stderr, which Airflow shows as ERROR: a successful sensor's log had
    an ERROR line. Now each is a record at its own level, and nothing of a successful check is an ERROR."""
    from airflow_provider_logtap.sensors.checks import check

    create_topic(kafka_bootstrap, topic_name, partitions=2)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 3)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)
    for _ in range(4):
        assert check("backlog", {"topic": topic_name, "group_id": f"g-{topic_name}", "min_records": 1}).ready
        assert check("completeness", {"topic": topic_name, "after_ms": 0}).ready
        hook.retention(topic_name)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not STDERR_LINE.search(capfd.readouterr().err)


def test_librdkafka_lines_of_a_successful_check_come_at_their_own_level(
    kafka_bootstrap: str,
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A connection that turns on librdkafka's debug lines (level 7) gets them as DEBUG records, not as
    stderr lines (ERROR in Airflow's task log)."""
    from airflow_provider_logtap.sensors.checks import check

    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DEBUG",
        json.dumps(
            {
                "conn_type": "kafka",
                "extra": {"bootstrap.servers": kafka_bootstrap, "debug": "generic", "client.id": CLIENT_ID},
            }
        ),
    )
    create_topic(kafka_bootstrap, topic_name)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)
    params = {"topic": topic_name, "group_id": f"g-{topic_name}", "kafka_config_id": "kafka_debug"}
    assert not check("backlog", {**params, "min_records": 1}).ready
    records = librdkafka_records(caplog)
    assert records and {r.levelno for r in records} <= {logging.DEBUG, logging.INFO}
    assert not STDERR_LINE.search(capfd.readouterr().err)


def test_a_connections_group_id_is_replaced_by_the_taps_with_one_warning(
    kafka_bootstrap: str, topic_name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_GROUPED",
        json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap, "group.id": "analytics"}}
        ),
    )
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"x"] * 3)
    caplog.set_level(logging.WARNING)
    tap_group = f"logtap-{topic_name}"
    for offset in (1, 2):
        hook = KafkaRangeHook(kafka_config_id="kafka_grouped")
        hook.commit(tap_group, topic_name, {0: (offset, "")})
    warned = [r.getMessage() for r in caplog.records if "group.id" in r.getMessage()]
    assert warned == [
        f"Kafka connection 'kafka_grouped': the connection's group.id 'analytics' is replaced by the tap's "
        f"group {tap_group!r}; grant group ACLs for {tap_group!r}"
    ]
    assert hook.committed(tap_group, topic_name, [0])[0].offset == 2
    assert hook.committed("analytics", topic_name, [0])[0].offset is None  # the connection's group: untouched
