"""KafkaToS3ArchiveOperator: one range into the byte-exact S3 archive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.compat import Context, run_identity
from airflow_provider_logtap.core import naming
from airflow_provider_logtap.operators._templating import check_unless_templated
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES, ArchiveFormat
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.taps import S3ArchiveTarget
from airflow_provider_logtap.targets import build_sink


class KafkaToS3ArchiveOperator(KafkaRangeLoadOperator):
    """Archive the records of one offset range to S3, exactly once.

    Objects: ``s3://<bucket>/<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log.gz`` whose
    decompressed content is the record values, each followed by ``\\n``, in offset order. Re-running the same
    range overwrites the same keys and removes what an earlier attempt left inside the range.

    :param bucket: the S3 bucket.
    :param prefix: key prefix ("" for the bucket root); no ``..`` or wildcards.
    :param aws_conn_id: the AWS connection (its extra may set ``endpoint_url`` for S3-compatible stores).
    :param compression: ``gzip`` (default), ``zstd`` or ``none``.
    :param compression_level: the codec's level (gzip 1-9, default 6; zstd 1-22, default 3).
    :param max_records_per_object: cut objects after this many records (default: no limit).
    :param max_bytes_per_object: cut objects at this uncompressed size (default 256 MiB).

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (*KafkaRangeLoadOperator.template_fields, "bucket", "prefix")

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        aws_conn_id: str | None = "aws_default",
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
        self.archive_format = ArchiveFormat(
            compression=compression,
            level=compression_level,
            max_records=max_records_per_object,
            max_bytes=max_bytes_per_object,
        )
        check_unless_templated(prefix, naming.clean_prefix)

    def make_sink(self, context: Context) -> Sink:
        target = S3ArchiveTarget(
            bucket=self.bucket,
            prefix=self.prefix,
            aws_conn_id=self.aws_conn_id or "aws_default",
            compression=self.archive_format.compression,
            compression_level=self.archive_format.level,
            max_records_per_object=self.archive_format.max_records,
            max_bytes_per_object=self.archive_format.max_bytes,
        )
        return build_sink(target, run=run_identity(context))
