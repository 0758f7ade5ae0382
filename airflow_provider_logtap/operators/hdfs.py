"""Operators loading one offset range into HDFS through WebHDFS: a raw copy, or partitioned by event time."""

from __future__ import annotations

from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.targets import HdfsEventTimeTarget, HdfsRawTarget


class KafkaToHdfsRawOperator(KafkaRangeLoadOperator):
    """Copy the records of one offset range into HDFS as they are (the docs are the target's)."""

    target_model = HdfsRawTarget


class KafkaToHdfsEventTimeOperator(KafkaRangeLoadOperator):
    """Write the lines of one offset range into HDFS partitions of each line's own event time (the docs are
    the target's)."""

    target_model = HdfsEventTimeTarget
