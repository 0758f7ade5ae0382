"""The ``hdfs_raw`` target: the records as they are, in HDFS (as Flume's Kafka -> HDFS agent wrote them)."""

from __future__ import annotations

from typing import ClassVar, Literal

from airflow_provider_logtap.models import setting
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES, ArchiveFormat
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.targets.base import Codec, HdfsTarget


class HdfsRawTarget(HdfsTarget, Codec):
    """The raw HDFS copy: ``<base_path>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log``, byte-exact, each
    file renamed into place only when complete. A replay writes under ``<base_path>/_replays/<name>``."""

    type: Literal["hdfs_raw"] = "hdfs_raw"
    operator: ClassVar[str] = "airflow_provider_logtap.operators.hdfs.KafkaToHdfsRawOperator"
    max_records_per_file: int | None = setting(
        None, description="Cut files after this many records; null: no record limit.", ge=1
    )
    max_bytes_per_file: int | None = setting(
        DEFAULT_MAX_BYTES, description="Cut files at this uncompressed size in bytes; null: no limit.", ge=1
    )

    def build_sink(self, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
        from airflow_provider_logtap.sinks.hdfs import HdfsRawSink

        return HdfsRawSink(
            client=self.client(),
            base=self.base_path,
            archive_format=ArchiveFormat(
                compression=self.compression,
                level=self.compression_level,
                max_records=self.max_records_per_file,
                max_bytes=self.max_bytes_per_file,
            ),
        )
