"""Exceptions that say what went wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable


class LogtapError(Exception):
    """Base class of logtap's errors."""


class ConfigurationError(LogtapError, ValueError):
    """A parameter or configuration value is invalid; the message names it and the fix."""


class DataLossError(LogtapError):
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


class SupersededError(LogtapError):
    """This run's plan was replaced by a newer plan of the same consumer group."""


def one_of(name: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise the standard message."""
    choices = sorted(allowed)
    if value not in choices:
        raise ConfigurationError(
            f"{name} must be one of {{{', '.join(repr(c) for c in choices)}}}. Got {value!r}"
        )
    return str(value)
