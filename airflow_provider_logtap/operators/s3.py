"""KafkaToS3ArchiveOperator: one range into the byte-exact S3 archive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.operators._templating import check_unless_templated
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES, ArchiveFormat
from airflow_provider_logtap.taps import S3ArchiveTarget


class KafkaToS3ArchiveOperator(KafkaRangeLoadOperator):
    """Archive the records of one offset range to S3, exactly once.

    Objects: ``s3://<bucket>/<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log.gz`` whose
    decompressed content is the record values, each followed by ``\\n``, in offset order. Re-running the same
    range overwrites the same keys and removes what an earlier attempt left inside the range.

    :param bucket: the S3 bucket.
    :param prefix: key prefix ("" for the bucket root); no ``..`` or wildcards.
    :param aws_conn_id: the AWS connection (its extra may set ``endpoint_url`` for S3-compatible stores).
    :param compression: ``gzip`` (default), ``zstd`` or ``none``.
    :param compression_level: the codec's level: gzip 0-3 run on ISA-L (default 2, fast), 4-9 on zlib
        (smaller, slower); zstd 1-22 (default 3).
    :param max_records_per_object: cut objects after this many records (default: no limit).
    :param max_bytes_per_object: cut objects at this uncompressed size (default 256 MiB).

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (*KafkaRangeLoadOperator.template_fields, "bucket", "prefix")
    target_type = S3ArchiveTarget

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        aws_conn_id: str = "aws_default",
        compression: str = "gzip",
        compression_level: int | None = None,
        max_records_per_object: int | None = None,
        max_bytes_per_object: int | None = DEFAULT_MAX_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.aws_conn_id = aws_conn_id
        self.compression = compression
        self.compression_level = compression_level
        self.max_records_per_object = max_records_per_object
        self.max_bytes_per_object = max_bytes_per_object
        ArchiveFormat(
            compression=compression,
            level=compression_level,
            max_records=max_records_per_object,
            max_bytes=max_bytes_per_object,
        )
        check_unless_templated(prefix, naming.clean_prefix)
