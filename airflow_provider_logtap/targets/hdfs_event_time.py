"""The ``hdfs_event_time`` target: HDFS partitioned by each line's own event time, for Hive/Impala/Spark."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import model_validator

from airflow_provider_logtap.core.eventtime import EventTimeReader, TimeFormat
from airflow_provider_logtap.core.partitions import (
    DEFAULT_TEMPLATE,
    PARALLEL_FILES,
    EventTimePartitioner,
    PartitionTemplate,
    check_template,
)
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.models import SettingError, checked, setting
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.targets.base import BadLines, Compressed, EventTime, HdfsTarget, Zone


def _regex(regex: str) -> None:
    TimeFormat(regex=regex)


class HdfsEventTimeTarget(HdfsTarget, EventTime, BadLines, Compressed):
    """HDFS partitioned by each line's own event time:
    ``<base_path>/<topic>/dt=2015-10-28/hour=14/<topic>+<p>+<start:020d>.log``.

    ``timestamp_regex`` and ``date_format`` find and read the time (Apache's ``[28/Oct/2015:14:03:07 +0000]``
    by default); ``partition_template`` and ``partition_zone`` make the directory. Lines without a readable time
    go to ``<base_path>/_dead_letter/<topic>/partition=<p>/...jsonl`` with the reason; when more than
    ``max_bad_ratio`` of a range's lines are bad, the load fails having written nothing. A replay writes under
    ``<base_path>/_replays/<name>``, or rebuilds chosen partitions in place."""

    type: Literal["hdfs_event_time"] = "hdfs_event_time"
    operator: ClassVar[str] = "airflow_provider_logtap.operators.hdfs.KafkaToHdfsEventTimeOperator"
    timestamp_regex: Annotated[str, checked(_regex)] = setting(
        "",
        description="A regex whose one group (or whole match) is the timestamp; '' (default): the "
        "date_format's own (Apache's [...], ISO-8601's, or one made from a strptime format).",
        templated=True,
    )
    partition_template: Annotated[str, checked(check_template)] = setting(
        DEFAULT_TEMPLATE,
        description="The partition path, strftime-like, segments not starting with '_' or '.'.",
        templated=True,
        example="dt=%Y-%m-%d",
    )
    partition_zone: Zone = setting("UTC", description="The zone partitions are made in.")
    parallel_files: int = setting(
        PARALLEL_FILES,
        description="How many of a range's partition files are written to HDFS at once (each a WebHDFS "
        "create and a rename): more for ranges of many partitions and a NameNode that keeps up.",
        ge=1,
    )

    @model_validator(mode="after")
    def _pair(self) -> HdfsEventTimeTarget:
        try:
            _ = self.time_format  # a built-in regex with a date format that cannot read it is refused
        except ConfigurationError as exc:
            raise SettingError("date_format", str(exc)) from None
        return self

    @property
    def time_format(self) -> TimeFormat:
        return TimeFormat(
            regex=self.timestamp_regex, date_format=self.date_format, assume_zone=self.assume_zone
        )

    def build_sink(self, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
        from airflow_provider_logtap.sinks.hdfs import HdfsEventTimeSink

        return HdfsEventTimeSink(
            client=self.client(),
            base=self.base_path,
            partitioner=EventTimePartitioner(
                EventTimeReader(self.time_format),
                PartitionTemplate(self.partition_template, self.partition_zone),
            ),
            compression=self.compression,
            max_bad_ratio=self.max_bad_ratio,
            run=run,
            only_partitions=only_partitions,
            parallel_files=self.parallel_files,
        )
