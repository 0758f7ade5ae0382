"""Operators loading one offset range into HDFS through WebHDFS: a raw copy, or partitioned by event time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.eventtime import TimeFormat
from airflow_provider_logtap.core.partitions import DEFAULT_TEMPLATE, PartitionTemplate
from airflow_provider_logtap.operators._templating import check_unless_templated
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES, ArchiveFormat
from airflow_provider_logtap.taps import HdfsEventTimeTarget, HdfsRawTarget


class KafkaToHdfsRawOperator(KafkaRangeLoadOperator):
    """Copy the records of one offset range into HDFS as they are: ``<base_path>/<topic>/partition=<p>/
    <topic>+<p>+<start:020d>.log``, byte-exact, each file renamed into place only when complete.

    :param base_path: the absolute HDFS directory of this copy.
    :param webhdfs_conn_id: the WebHDFS connection (``webhdfs_default``).
    :param proxy_user: the HDFS user to act as (WebHDFSHook's ``proxy_user``).
    :param compression: ``none`` (default), ``gzip`` or ``zstd``.
    :param max_records_per_file: cut files after this many records (default: no limit).
    :param max_bytes_per_file: cut files at this uncompressed size (default 256 MiB).

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (*KafkaRangeLoadOperator.template_fields, "base_path")
    target_type = HdfsRawTarget

    def __init__(
        self,
        *,
        base_path: str,
        webhdfs_conn_id: str = "webhdfs_default",
        proxy_user: str | None = None,
        compression: str = "none",
        compression_level: int | None = None,
        max_records_per_file: int | None = None,
        max_bytes_per_file: int | None = DEFAULT_MAX_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_path = base_path
        self.webhdfs_conn_id = webhdfs_conn_id
        self.proxy_user = proxy_user
        self.compression = compression
        self.compression_level = compression_level
        self.max_records_per_file = max_records_per_file
        self.max_bytes_per_file = max_bytes_per_file
        ArchiveFormat(
            compression=compression,
            level=compression_level,
            max_records=max_records_per_file,
            max_bytes=max_bytes_per_file,
        )
        check_unless_templated(base_path, naming.clean_base)


class KafkaToHdfsEventTimeOperator(KafkaRangeLoadOperator):
    """Write the lines of one offset range into HDFS partitions of each line's own event time:
    ``<base_path>/<topic>/dt=2015-10-28/hour=14/<topic>+<p>+<start:020d>.log``.

    Lines whose time cannot be found or read go to ``<base_path>/_dead_letter/<topic>/partition=<p>/...jsonl``
    with the reason; if more than ``max_bad_ratio`` of them are bad, the task fails having written nothing.
    The partitions written are in the result, and on the asset events of the task's ``outlets`` as partition
    keys.

    :param base_path: the absolute HDFS directory of this copy.
    :param timestamp_regex: a regex whose group is the timestamp (default: the ``date_format``'s own, e.g.
        Apache's ``[...]``).
    :param date_format: ``apache`` (default), ``iso8601``, ``epoch_s``, ``epoch_ms`` or a strptime format.
    :param assume_zone: the zone of timestamps that carry none.
    :param partition_template: the partition path, strftime-like (``dt=%Y-%m-%d/hour=%H``).
    :param partition_zone: the zone partitions are made in (``UTC``).
    :param max_bad_ratio: the largest share of lines without event time a range may have (``0.05``).
    :param webhdfs_conn_id: the WebHDFS connection (``webhdfs_default``).
    :param proxy_user: the HDFS user to act as.
    :param compression: ``none`` (default), ``gzip`` or ``zstd``.

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (
        *KafkaRangeLoadOperator.template_fields,
        "base_path",
        "timestamp_regex",
        "date_format",
        "partition_template",
    )
    target_type = HdfsEventTimeTarget

    def __init__(
        self,
        *,
        base_path: str,
        timestamp_regex: str = "",
        date_format: str = "apache",
        assume_zone: str = "UTC",
        partition_template: str = DEFAULT_TEMPLATE,
        partition_zone: str = "UTC",
        max_bad_ratio: float | None = 0.05,
        webhdfs_conn_id: str = "webhdfs_default",
        proxy_user: str | None = None,
        compression: str = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_path = base_path
        self.timestamp_regex = timestamp_regex
        self.date_format = date_format
        self.assume_zone = assume_zone
        self.partition_template = partition_template
        self.partition_zone = partition_zone
        self.max_bad_ratio = max_bad_ratio
        self.webhdfs_conn_id = webhdfs_conn_id
        self.proxy_user = proxy_user
        self.compression = compression
        check_unless_templated(base_path, naming.clean_base)
        check_unless_templated(
            (timestamp_regex, date_format),
            lambda pair: TimeFormat(regex=pair[0], date_format=pair[1]),  # each alone, and the pair
        )
        check_unless_templated(partition_template, lambda t: PartitionTemplate(t, partition_zone))
