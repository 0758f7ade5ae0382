"""KafkaToS3ArchiveOperator: one range into the byte-exact S3 archive."""

from __future__ import annotations

from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.targets import S3ArchiveTarget


class KafkaToS3ArchiveOperator(KafkaRangeLoadOperator):
    """Archive the records of one offset range to S3, exactly once (the docs are the target's)."""

    target_model = S3ArchiveTarget
