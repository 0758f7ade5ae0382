"""librdkafka's log through Python logging (levels kept, repeats collapsed), the unreachable-cluster error,
the group.id warning."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from airflow_provider_logtap.errors import NotRetryable
from airflow_provider_logtap.kafka import client
from airflow_provider_logtap.kafka.client import LIBRDKAFKA_LOGGER, LibrdkafkaLog, reader_config

FAIL = "Connect to ipv4#127.0.0.1:9 failed: Connection refused (after {ms}ms in state CONNECT)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LIBRDKAFKA_LOGGER]


def librdkafka(
    log: LibrdkafkaLog, level: int, facility: str, text: str, name: str = "rdkafka#consumer-1"
) -> None:
    """What confluent-kafka calls for one librdkafka line (see its log_cb)."""
    log.log(level, "%s [%s] %s", facility, name, text)


def test_lines_keep_their_level_and_repeats_collapse_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LIBRDKAFKA_LOGGER)
    clock = Clock()
    log = LibrdkafkaLog(window=30, clock=clock)
    librdkafka(
        log, logging.INFO, "BGQUEUE", "[thrd:background]: Purging 1 unserved events from background queue"
    )
    for i in range(600):  # 20 a second for 30 s, as librdkafka reconnects to a closed port
        clock.now += 0.05
        librdkafka(log, logging.ERROR, "FAIL", FAIL.format(ms=i % 3), name=f"rdkafka#producer-{i % 2}")
    assert [level for level, _ in lines(caplog)] == [logging.INFO, logging.ERROR]
    assert "BGQUEUE" in lines(caplog)[0][1] and "Connection refused" in lines(caplog)[1][1]
    log.flush()
    level, summary = lines(caplog)[-1]
    assert level == logging.ERROR and summary.endswith("(repeated 599 times in 30s)"), summary
    assert log.last_failure == FAIL.format(ms=599 % 3)
    log.flush()  # nothing left to say
    assert len(lines(caplog)) == 3


def test_a_line_after_its_window_reports_the_repeats_and_starts_a_new_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LIBRDKAFKA_LOGGER)
    clock = Clock()
    log = LibrdkafkaLog(window=30, clock=clock)
    for _ in range(58):
        librdkafka(log, logging.WARNING, "GETPID", "Failed to acquire idempotence PID: retrying")
        clock.now += 1
    assert [m for _, m in lines(caplog)][-1].endswith("(repeated 30 times in 30s)")
    assert len(lines(caplog)) == 2  # the first line, then the first window's repeats (this one included)
    log.flush()
    assert lines(caplog)[-1] == (
        logging.WARNING,
        "librdkafka: GETPID [rdkafka#consumer-1] Failed to acquire idempotence PID: retrying "
        "(repeated 27 times in 28s)",
    )
    librdkafka(log, logging.INFO, "OTHER", "a different line")  # its own window
    assert lines(caplog)[-1][1].endswith("a different line")


def test_routed_config_keeps_a_connections_error_cb() -> None:
    log = LibrdkafkaLog()
    seen: list[KafkaError] = []
    routed = log.routed({"bootstrap.servers": "b:9092", "error_cb": seen.append})
    assert routed["logger"] is log and routed["bootstrap.servers"] == "b:9092"
    routed["error_cb"](KafkaError(KafkaError._TRANSPORT, "b:9092/bootstrap: Connect failed"))
    assert len(seen) == 1 and log.last_failure == "b:9092/bootstrap: Connect failed"
    assert log.routed({"bootstrap.servers": "b:9092"})["error_cb"] == log.error


def test_the_unreachable_error_names_the_connection_and_what_to_check() -> None:
    log = LibrdkafkaLog()
    librdkafka(log, logging.ERROR, "FAIL", FAIL.format(ms=0))
    err = log.unreachable("kafka_prod", "10.0.0.1:9092,10.0.0.2:9092", waited=30)
    assert not isinstance(err, NotRetryable)  # a broker that is down may come back: Airflow retries
    text = str(err)
    for part in (
        "'kafka_prod'",
        "10.0.0.1:9092,10.0.0.2:9092",
        "within 30s",
        "Connection refused",
        "brokers are up",
        "advertised.listeners",
        "security.protocol",
    ):
        assert part in text, part


def test_a_connections_group_id_replaced_by_the_taps_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=client.__name__)
    base = {"bootstrap.servers": "b:9092", "group.id": "analytics"}
    for _ in range(3):
        config = reader_config(base, "logtap-weblogs", connection="kafka_warned_once")
        assert config["group.id"] == "logtap-weblogs"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Kafka connection 'kafka_warned_once': the connection's group.id 'analytics' is replaced by the tap's "
        "group 'logtap-weblogs'; grant group ACLs for 'logtap-weblogs'"
    ]
    caplog.clear()
    reader_config({"bootstrap.servers": "b:9092"}, "logtap-weblogs", connection="kafka_no_group")
    reader_config({"group.id": "logtap-weblogs"}, "logtap-weblogs", connection="kafka_same_group")
    assert not caplog.records
