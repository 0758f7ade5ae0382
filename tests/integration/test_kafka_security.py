"""Kafka over SASL_SSL through the Kafka provider's connection: a real broker with a TLS listener (a CA made
here), users for SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512. logtap's hook plans, reads byte-exact and commits
with each mechanism; a wrong password or a CA that did not sign the broker's certificate fails at once, not
retried, with an error that names the connection and what to check; the password is in no log line and no
error, even with librdkafka's security and configuration debug lines on."""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from airflow_provider_logtap.core import claims
from airflow_provider_logtap.core.ranges import EndSpec, StartSpec
from airflow_provider_logtap.errors import NotRetryable
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
from airflow_provider_logtap.kafka.client import KafkaSecurityRefusedError

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
USER = "logtap-tap"
PASSWORD = f"logtap-kafka-secret-{uuid.uuid4().hex}"
WRONG = f"logtap-wrong-secret-{uuid.uuid4().hex}"
RECORD = logging.Formatter("%(name)s %(levelname)s %(message)s")  # with the exception and stack, if any


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devstack import kafka_secure

    service = kafka_secure.start(tmp_path_factory.mktemp("kafka-secure"), {USER: PASSWORD})
    try:
        yield service
        assert service.alive(), service.log_tail()
    finally:
        service.stop()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the broker's certificate."""
    from devstack import kafka_secure

    return kafka_secure.make_tls(tmp_path_factory.mktemp("other-ca"), "stranger").ca


def connect(monkeypatch: pytest.MonkeyPatch, broker: Any, mechanism: str, **changes: str) -> KafkaRangeHook:
    """The connection ``kafka_secure`` as a deployment defines it (an environment variable; a secrets backend
    gives the hook the same), and logtap's hook on it."""
    from devstack import kafka_secure

    extra = {
        **kafka_secure.client_config(broker, mechanism, USER, PASSWORD),
        "debug": "security,conf",  # librdkafka's most talkative lines about credentials, for the checks
        **changes,
    }
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_SECURE", json.dumps({"conn_type": "kafka", "extra": extra}))
    return KafkaRangeHook(kafka_config_id="kafka_secure", connect_timeout=20)


def admin_config(broker: Any) -> dict[str, str]:
    from devstack import kafka_secure

    return kafka_secure.client_config(broker, "PLAIN", kafka_secure.ADMIN, broker.info["admin_password"])


def assert_no_secret(caplog: pytest.LogCaptureFixture, *errors: BaseException) -> None:
    """Neither password is in a log record (message or exception) or in an error with its causes."""
    texts = {f"log record {i} ({r.name})": RECORD.format(r) for i, r in enumerate(caplog.records)}
    texts.update({f"error {type(e).__name__}": "".join(traceback.format_exception(e)) for e in errors})
    leaks = [where for where, text in texts.items() for secret in (PASSWORD, WRONG) if secret in text]
    assert not leaks, f"a password is in {leaks}"
    assert len(caplog.records) > 5  # librdkafka's lines did come through (the check looked at something)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_plan_read_and_commit_over_sasl_ssl(
    mechanism: str, secure_broker: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    topic, group = f"secure-{uuid.uuid4().hex[:10]}", f"logtap-secure-{uuid.uuid4().hex[:6]}"
    admin = AdminClient(admin_config(secure_broker))
    for done in admin.create_topics([NewTopic(topic, 2, 1)], operation_timeout=30).values():
        done.result()
    values = {p: [os.urandom(n % 300) for n in range(40 + p)] for p in (0, 1)}  # any bytes, empty ones too
    producer = Producer({**admin_config(secure_broker), "enable.idempotence": True})
    for p, vs in values.items():
        for v in vs:
            producer.produce(topic, v, partition=p)
    assert producer.flush(30) == 0

    hook = connect(monkeypatch, secure_broker, mechanism)
    plan = hook.plan(
        topic=topic, start=StartSpec(kind="committed"), end=EndSpec(kind="high_watermark"), group_id=group
    )
    assert [(r.partition, r.start, r.end) for r in plan.ranges] == [(0, 0, 40), (1, 0, 41)]
    for r in plan.ranges:
        read = [(o, v) for b in hook.read(r) for o, v in zip(b.offsets, b.values, strict=True)]
        assert read == list(enumerate(values[r.partition]))
    hook.commit(
        group, topic, {r.partition: (r.end, claims.committed("dag/run", r).encode()) for r in plan.ranges}
    )
    committed = KafkaRangeHook(kafka_config_id="kafka_secure").committed(group, topic, [0, 1])
    assert {p: c.offset for p, c in committed.items()} == {0: 40, 1: 41}
    assert_no_secret(caplog)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_fails_at_once_naming_the_connection_not_the_password(
    mechanism: str, secure_broker: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = connect(monkeypatch, secure_broker, mechanism, **{"sasl.password": WRONG})
    began = time.monotonic()
    with pytest.raises(KafkaSecurityRefusedError) as refused:
        hook.observe(topic="any", start=StartSpec(kind="earliest"), end=EndSpec(kind="high_watermark"))
    assert time.monotonic() - began < 10  # at the broker's first refusal, not at the 20 s connect timeout
    message = str(refused.value)
    assert isinstance(refused.value, NotRetryable)
    for part in ("'kafka_secure'", secure_broker.info["bootstrap"], mechanism, repr(USER), "sasl.password"):
        assert part in message, (part, message)
    assert "Authentication failed" in message  # the broker's own word, through librdkafka
    assert_no_secret(caplog, refused.value)


def test_a_ca_that_did_not_sign_the_broker_fails_with_a_tls_error(
    secure_broker: Any, other_ca: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = connect(monkeypatch, secure_broker, "SCRAM-SHA-256", **{"ssl.ca.location": str(other_ca)})
    began = time.monotonic()
    with pytest.raises(KafkaSecurityRefusedError) as refused:
        hook.ensure_reachable()
    assert time.monotonic() - began < 10
    message = str(refused.value)
    for part in ("'kafka_secure'", "TLS did not verify", str(other_ca), "certificate verify failed"):
        assert part in message, (part, message)
    assert "SASL authentication" not in message  # a TLS failure is not blamed on the credentials
    assert_no_secret(caplog, refused.value)
