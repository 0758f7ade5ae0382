from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from airflow_provider_logtap.errors import LogtapError
from airflow_provider_logtap.kafka.offsets import _retrying


def flaky(failures: list[int]):  # type: ignore[no-untyped-def]
    calls = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise KafkaException(KafkaError(failures.pop(0)))
        return "ok"

    return call, calls


@pytest.mark.parametrize(
    "code", [KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT]
)
def test_transient_errors_are_retried(code: int) -> None:
    call, calls = flaky([code, code])
    assert _retrying(call, "read offsets", deadline=10) == "ok"
    assert len(calls) == 3


def test_other_errors_fail_at_once_with_what_failed() -> None:
    call, calls = flaky([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(LogtapError, match=r"could not read offsets: .*GROUP_AUTHORIZATION_FAILED"):
        _retrying(call, "read offsets", deadline=10)
    assert len(calls) == 1


def test_gives_up_after_the_deadline() -> None:
    call, _ = flaky([KafkaError.NOT_COORDINATOR] * 100)
    with pytest.raises(LogtapError, match="NOT_COORDINATOR"):
        _retrying(call, "read offsets", deadline=0.5)
