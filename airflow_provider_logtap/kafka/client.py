"""librdkafka configuration for logtap's clients, derived from the user's connection configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Settings logtap owns: a range read never commits or resets by itself.
_READER_FIXED = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "error",
    "enable.partition.eof": True,
}
# Defaults that bound a reader's memory whatever the range size, tuned for throughput (measured with
# bench/s3_archive.py): librdkafka's default 1 MiB per-partition fetch beats larger fetches here, and a short
# fetch-queue backoff keeps the prefetch queue from idling a whole second after it was full.
_READER_DEFAULTS = {
    "isolation.level": "read_committed",
    "queued.max.messages.kbytes": 32768,
    "fetch.queue.backoff.ms": 10,
    "fetch.wait.max.ms": 100,
}
_NOT_FOR_CONSUMERS = ("group.instance.id", "partition.assignment.strategy")


def reader_config(base: Mapping[str, Any], group_id: str) -> dict[str, Any]:
    """A consumer configuration for ``assign()`` reads and explicit commits as ``group_id``."""
    config = {**_READER_DEFAULTS, **dict(base)}
    for key in _NOT_FOR_CONSUMERS:
        config.pop(key, None)
    config.update(_READER_FIXED)
    config["group.id"] = group_id
    return config


def admin_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """An admin-client configuration (consumer-only keys dropped)."""
    consumer_only = {
        "group.id",
        "enable.auto.commit",
        "auto.offset.reset",
        "enable.auto.offset.store",
        "isolation.level",
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "fetch.queue.backoff.ms",
        "enable.partition.eof",
        "session.timeout.ms",
        "max.poll.interval.ms",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "auto.commit.interval.ms",
        "on_commit",
        *_NOT_FOR_CONSUMERS,
    }
    return {k: v for k, v in base.items() if k not in consumer_only}
