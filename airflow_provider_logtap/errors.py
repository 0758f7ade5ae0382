"""Exceptions that say what went wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable


class LogtapError(Exception):
    """Base class of logtap's errors."""


class NotRetryable(LogtapError):
    """A failure that a retry cannot fix (a configuration error, data that breaks a rule the tap sets, offsets
    lost under ``on_data_loss='fail'``). logtap's operators fail such a task without Airflow's retries (see
    :func:`airflow_provider_logtap.compat.fail_without_retry`); the fix is in the message."""


class ConfigurationError(NotRetryable, ValueError):
    """A parameter or configuration value is invalid; the message names it and the fix."""


class UnknownTopicError(ConfigurationError):
    """The topic does not exist in Kafka (or cannot be described)."""


class DataRuleError(NotRetryable):
    """The data breaks a rule the tap sets (too many bad lines, too many records out of place)."""


class BadLineRatioError(DataRuleError):
    """More lines than a tap's ``max_bad_ratio`` allows had no event time or did not parse: nothing was written
    (the classic wrong-regex case)."""


class OutOfPlaceError(DataRuleError):
    """More records of an interval than ``max_out_of_place_ratio`` allows are stamped outside it."""


class DataLossError(NotRetryable):
    """Offsets a load needed were deleted (retention) before they were read."""

    def __init__(self, *, topic: str, partition: int, start: int, log_start: int, hint: str = "") -> None:
        self.topic = topic
        self.partition = partition
        self.start = start
        self.log_start = log_start
        lost = log_start - start
        super().__init__(
            f"Data loss on {topic}[{partition}]: offsets [{start}, {log_start}) ({lost} records) were deleted "
            f"by retention before this load read them; the log now starts at {log_start}. "
            + (
                hint
                or "Nothing was written for this partition. To accept the loss and continue from the log "
                "start, set on_data_loss='log_start' (the lost count is recorded in the run's result); to "
                "keep it from happening again, load more often or raise the topic's retention.ms."
            )
        )


class ClaimConflictError(NotRetryable):
    """Someone else moved a tap group's offsets while a run held its claim: nothing was committed."""


def check_positive(name: str, value: object, *, or_none: bool = False) -> None:
    """Raise the standard message unless ``value`` is a positive integer (``bool`` is not one), or None where
    ``or_none``."""
    if value is None and or_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive integer{' or None' if or_none else ''}. Got {value!r}"
        )


def one_of(name: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise the standard message."""
    choices = sorted(allowed)
    if value not in choices:
        raise ConfigurationError(
            f"{name} must be one of {{{', '.join(repr(c) for c in choices)}}}. Got {value!r}"
        )
    return str(value)
