"""Progress lines of a real read through the hook: their interval is KafkaRangeHook.read's progress_seconds, and
the first comes a second into the read, not after a whole interval."""

from __future__ import annotations

import time

from kafka_helpers import create_topic, produce

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook


def slow_read(hook: KafkaRangeHook, rng: OffsetRange, **options: object) -> list[str]:
    """Read ``rng`` in batches of 10, 0.25 s per batch (a slow sink); the progress lines it reported."""
    lines: list[str] = []
    for _batch in hook.read(rng, batch_size=10, report=lines.append, **options):
        time.sleep(0.25)
    return lines


def test_progress_lines_come_at_the_requested_interval_and_the_first_early(
    airflow_connections: None, kafka_bootstrap: str, topic_name: str
) -> None:
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [b"line %d" % i for i in range(120)])
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=120)
    hook = KafkaRangeHook()
    every_second = slow_read(hook, rng, progress_seconds=1)  # about 3 s of reading
    assert every_second[-1].endswith("(complete)") and "120 records" in every_second[-1]
    assert len(every_second[:-1]) >= 2, every_second
    by_default = slow_read(hook, rng)  # every 15 s: the early first line only, then the final one
    assert len(by_default) == 2, by_default
    assert "at offset" in by_default[0] and by_default[1].endswith("(complete)")
