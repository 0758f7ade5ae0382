"""The S3 raw archive: the byte-exact "uh oh" copy of a topic.

Objects are ``<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log.gz``; their decompressed content is
the record values in offset order, each followed by ``\\n`` (see :mod:`airflow_provider_logtap.sinks.archive`
for tombstones and odd bytes). Each object's metadata records its coverage ``[start, end)``, record count and
first/last Kafka timestamps. Writing a range again overwrites the same keys and removes the objects an
earlier, different attempt left inside the range, so the prefix never holds an offset twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError, LogtapError
from airflow_provider_logtap.sinks.archive import ArchiveFormat, Chunk, archive_chunks
from airflow_provider_logtap.sinks.base import WriteResult, track_lost


class StaleObjectConflict(LogtapError):
    """Objects of an earlier write cover offsets that are no longer in Kafka; they were kept."""


class S3ArchiveSink:
    """Write ranges as archive objects to ``s3://<bucket>/<prefix>/...``.

    :param client: a boto3 S3 client (``S3Hook(...).get_conn()``).
    :param bucket: the bucket name.
    :param prefix: key prefix under which ``<topic>/partition=<p>/`` objects go ("" for the bucket root).
    :param archive_format: compression and object size limits.
    :param run: who writes (recorded in each object's metadata), e.g. ``<dag_id>/<run_id>``.
    """

    name = "s3"

    def __init__(
        self,
        *,
        client: Any,
        bucket: str,
        prefix: str = "",
        archive_format: ArchiveFormat | None = None,
        run: str | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket or "/" in bucket:
            raise ConfigurationError(f"bucket must be a bucket name without '/'. Got {bucket!r}")
        self.client = client
        self.bucket = bucket
        self.prefix = naming.clean_prefix(prefix)
        self.format = archive_format or ArchiveFormat()
        self.run = run

    def key(self, topic: str, partition: int, start: int) -> str:
        return naming.object_key(self.prefix, topic, partition, start, self.format.suffix)

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        began = time.monotonic()
        lost: list[OffsetRange] = []
        chunks: list[Chunk] = []
        keys: list[str] = []
        # One upload in flight while the next chunk is built: bounded memory, overlapped I/O.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="logtap-s3") as pool:
            pending: Future[None] | None = None
            for chunk, spool in archive_chunks(rng, track_lost(batches, lost), self.format):
                key = self.key(rng.topic, rng.partition, chunk.start)
                if pending is not None:
                    pending.result()
                pending = pool.submit(self._upload, key, spool, chunk)
                chunks.append(chunk)
                keys.append(key)
            if pending is not None:
                pending.result()
        removed = self._remove_stale(rng, set(keys), lost)
        counts = {
            "tombstones": sum(c.tombstones for c in chunks),
            "invalid_utf8": sum(c.invalid_utf8 for c in chunks),
            "embedded_newlines": sum(c.embedded_newlines for c in chunks),
        }
        lines = sum(c.lines for c in chunks)
        return WriteResult(
            sink=self.name,
            range=rng,
            records=lines + counts["tombstones"],
            written=lines,
            bytes_in=sum(c.bytes_in for c in chunks),
            bytes_out=sum(c.bytes_out for c in chunks),
            objects=tuple(f"s3://{self.bucket}/{k}" for k in keys),
            removed=tuple(f"s3://{self.bucket}/{k}" for k in removed),
            lost=tuple(lost),
            counts=counts,
            seconds=time.monotonic() - began,
        )

    def _upload(self, key: str, spool: IO[bytes], chunk: Chunk) -> None:
        metadata = chunk.metadata()
        if self.run:
            metadata["logtap-run"] = self.run
        try:
            self.client.upload_fileobj(
                spool,
                self.bucket,
                key,
                ExtraArgs={"Metadata": metadata, "ContentType": self.format.content_type},
            )
        finally:
            spool.close()

    def existing(self, rng: OffsetRange) -> Iterator[tuple[str, int]]:
        """``(key, start)`` of the archive objects whose start lies in ``rng``, in offset order."""
        directory = naming.partition_dir(self.prefix, rng.topic, rng.partition) + "/"
        after = naming.object_key(self.prefix, rng.topic, rng.partition, rng.start, "")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=directory, StartAfter=after):
            for obj in page.get("Contents", ()):
                parsed = naming.parse_file_name(obj["Key"])
                if parsed is None or parsed.topic != rng.topic or parsed.partition != rng.partition:
                    continue
                if parsed.start >= rng.end:
                    return
                if parsed.start >= rng.start:
                    yield obj["Key"], parsed.start

    def _remove_stale(self, rng: OffsetRange, written: set[str], lost: list[OffsetRange]) -> list[str]:
        stale = [(k, s) for k, s in self.existing(rng) if k not in written]
        kept = [k for k, s in stale if any(s in gone for gone in lost)]
        doomed = [k for k, s in stale if k not in kept]
        for i in range(0, len(doomed), 1000):
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in doomed[i : i + 1000]], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                raise LogtapError(f"could not delete stale archive objects: {errors[:5]}")
        if kept:
            raise StaleObjectConflict(
                f"{rng}: the archive holds objects of an earlier write that start at offsets Kafka no longer "
                f"has (lost to retention): {kept[:5]}. They were kept, and they may overlap what was just "
                "written. Inspect them and delete by hand the ones this write now covers."
            )
        return doomed
