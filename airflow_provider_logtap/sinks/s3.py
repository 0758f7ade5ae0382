"""The S3 raw archive: the byte-exact "uh oh" copy of a topic.

Objects are ``<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log.gz``; their decompressed content is
the record values in offset order, each followed by ``\\n`` (see :mod:`airflow_provider_logtap.sinks.archive`
for tombstones and odd bytes). Each object's metadata records its coverage ``[start, end)``, record count and
first/last Kafka timestamps. Writing a range again overwrites the same keys and removes the objects an
earlier, different attempt left inside the range, so the prefix never holds an offset twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError, LogtapError
from airflow_provider_logtap.sinks.archive import ArchiveFormat, Chunk, archive_chunks
from airflow_provider_logtap.sinks.base import WriteResult, stale_objects, track_lost

MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_PARTS_IN_FLIGHT = 2

log = logging.getLogger(__name__)


class StaleObjectConflict(LogtapError):
    """Objects of an earlier write cover offsets that are no longer in Kafka; they were kept."""


class S3WriteError(LogtapError):
    """S3 kept failing after the client's retries; nothing of the failed object is visible (Airflow's task
    retry, or the next run, writes the range again)."""


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag S3 gives an object completed from parts with these ETags: the MD5 of their MD5s, ``-<n>``."""
    digests = [bytes.fromhex(e.strip('"')) for e in part_etags]
    return f'"{hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"'


class _StreamingUpload:
    """One archive object, uploaded while it is being written.

    Bytes up to one part stay in memory and become a single PUT with the chunk's metadata. Beyond that, a
    multipart upload starts and each full part goes up in the background (at most two in flight), so memory
    stays bounded and the upload overlaps with reading. Multipart metadata is fixed when the upload starts, so
    the final metadata (end offset, counts) is set by a server-side copy of the object onto itself after it is
    complete. The object becomes visible only when complete; :meth:`close` before :meth:`finish` aborts.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        content_type: str,
        pool: ThreadPoolExecutor,
        part_size: int,
        object_args: Mapping[str, str],
    ) -> None:
        self.client, self.bucket, self.key, self.content_type = client, bucket, key, content_type
        self.pool, self.part_size, self.object_args = pool, part_size, object_args
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self.finished = False

    def write(self, data: bytes, /) -> int:
        self.buffer += data
        if len(self.buffer) >= self.part_size:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        return len(data)

    def _send(self, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type, **self.object_args
            )["UploadId"]
        in_flight = [p for p in self.parts if not p.done()]
        if len(in_flight) >= _PARTS_IN_FLIGHT:
            in_flight[0].result()
        self.parts.append(self.pool.submit(self._part, len(self.parts) + 1, body))

    def _part(self, number: int, body: bytes) -> dict[str, Any]:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def finish(self, metadata: dict[str, str]) -> None:
        if self.upload_id is None:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=bytes(self.buffer),
                ContentType=self.content_type,
                Metadata=metadata,
                **self.object_args,
            )
        else:
            if self.buffer:
                self._send(bytes(self.buffer))
            parts = [p.result() for p in self.parts]
            self._complete(parts)
            try:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    CopySource={"Bucket": self.bucket, "Key": self.key},
                    Metadata=metadata,
                    MetadataDirective="REPLACE",
                    ContentType=self.content_type,
                    **self.object_args,
                )
            except BaseException:
                # Complete, but without its final metadata: not left as if it were finished.
                with contextlib.suppress(Exception):
                    self.client.delete_object(Bucket=self.bucket, Key=self.key)
                raise
        self.buffer = bytearray()
        self.finished = True

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        """Complete the upload. A retried complete whose first attempt did complete (its answer was lost)
        finds the upload gone: the object is there with the ETag of exactly these parts, then it is done."""
        self.upload_id, upload_id = None, self.upload_id
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception as exc:
            if _error_code(exc) != "NoSuchUpload":
                self.upload_id = upload_id
                raise
            expected = multipart_etag(p["ETag"] for p in parts)
            try:
                found = self.client.head_object(Bucket=self.bucket, Key=self.key).get("ETag")
            except Exception:
                found = None
            if found != expected:
                raise

    def close(self) -> None:
        """Abort an unfinished upload: parts not started are cancelled, those in flight waited for (a part
        that lands after the abort would keep the upload alive), then the upload is aborted. A failed abort
        is logged, not raised (the error being handled is the one to see); the next write of the range aborts
        what is left (see :meth:`S3ArchiveSink.abort_orphans`)."""
        if self.finished or self.upload_id is None:
            return
        for part in self.parts:
            part.cancel()
        wait(self.parts)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception as exc:
            log.warning(
                "could not abort the multipart upload of s3://%s/%s (%s); the next write of its range aborts it",
                self.bucket,
                self.key,
                exc,
            )
        self.upload_id = None


class S3ArchiveSink:
    """Write ranges as archive objects to ``s3://<bucket>/<prefix>/...``.

    :param client: a boto3 S3 client (``S3Hook(...).get_conn()``).
    :param bucket: the bucket name.
    :param prefix: key prefix under which ``<topic>/partition=<p>/`` objects go ("" for the bucket root).
    :param archive_format: compression and object size limits.
    :param run: who writes (recorded in each object's metadata), e.g. ``<dag_id>/<run_id>``.
    :param part_size: compressed bytes per multipart-upload part (an object smaller than one part is one PUT).
    :param object_args: arguments of every request that creates an object (PUT, multipart upload, metadata
        copy), e.g. ``{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/logs"}``.
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
        part_size: int = DEFAULT_PART_SIZE,
        object_args: Mapping[str, str] | None = None,
    ) -> None:
        naming.check_bucket(bucket)
        if part_size < MIN_PART_SIZE:
            raise ConfigurationError(
                f"part_size must be at least {MIN_PART_SIZE} (S3's minimum). Got {part_size}"
            )
        self.client = client
        self.bucket = bucket
        self.prefix = naming.clean_prefix(prefix)
        self.format = archive_format or ArchiveFormat()
        self.run = run
        self.part_size = part_size
        self.object_args = dict(object_args or {})

    def key(self, topic: str, partition: int, start: int) -> str:
        return naming.object_key(self.prefix, topic, partition, start, self.format.suffix)

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        began = time.monotonic()
        lost: list[OffsetRange] = []
        chunks: list[Chunk] = []
        keys: list[str] = []
        try:
            self.abort_orphans(rng)
            self._upload(rng, batches, lost, chunks, keys)
            removed = self._remove_stale(rng, set(keys), lost)
        except S3WriteError:
            raise
        except Exception as exc:
            if not _is_client_error(exc):
                raise
            endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", "S3")
            raise S3WriteError(
                f"{rng}: writing to s3://{self.bucket} at {endpoint} failed after the client's retries: {exc}. "
                "Nothing partial of it is visible (an unfinished upload was aborted). If S3 is only busy or "
                "down for a while, the task's retry writes the range again; if it persists, check the "
                "endpoint, the credentials and the bucket, or give the connection's extra config_kwargs more "
                'retries (e.g. {"retries": {"mode": "standard", "max_attempts": 10}}).'
            ) from exc
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

    def _upload(
        self,
        rng: OffsetRange,
        batches: Iterable[RecordBatch],
        lost: list[OffsetRange],
        chunks: list[Chunk],
        keys: list[str],
    ) -> None:
        with ThreadPoolExecutor(max_workers=_PARTS_IN_FLIGHT, thread_name_prefix="logtap-s3") as uploads:

            def output(start: int) -> _StreamingUpload:
                key = self.key(rng.topic, rng.partition, start)
                return _StreamingUpload(
                    self.client,
                    self.bucket,
                    key,
                    self.format.content_type,
                    uploads,
                    self.part_size,
                    self.object_args,
                )

            # An object's finish (its last part, the complete and the metadata copy: round trips S3 takes its
            # time over) runs on a thread of its own while the next object is read; one at a time, in order.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="logtap-s3-finish") as finisher:
                finishing: tuple[Future[None], Chunk, _StreamingUpload] | None = None

                def settle() -> None:
                    nonlocal finishing
                    if finishing is not None:
                        done, chunk, upload = finishing
                        finishing = None
                        try:
                            done.result()
                        except BaseException:
                            upload.close()
                            raise
                        chunks.append(chunk)
                        keys.append(upload.key)

                try:
                    for chunk, upload in archive_chunks(rng, track_lost(batches, lost), self.format, output):
                        metadata = chunk.metadata()
                        if self.run:
                            metadata["logtap-run"] = self.run
                        try:
                            settle()
                        except BaseException:
                            upload.close()
                            raise
                        finishing = (finisher.submit(upload.finish, metadata), chunk, upload)
                    settle()
                except BaseException:
                    if finishing is not None:  # reading failed while an object was finishing: let it end
                        wait([finishing[0]])
                        finishing[2].close()
                    raise

    def abort_orphans(self, rng: OffsetRange) -> list[str]:
        """Abort the multipart uploads an earlier attempt of this range left unfinished (it was killed, or
        S3 refused its abort): their keys start inside the range. Returns those keys. Without the permission
        ``s3:ListBucketMultipartUploads`` this is skipped with a warning (a lifecycle rule
        ``AbortIncompleteMultipartUpload`` on the bucket then cleans such uploads up)."""
        directory = naming.partition_dir(self.prefix, rng.topic, rng.partition) + "/"
        aborted: list[str] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            uploads = [
                u
                for page in paginator.paginate(Bucket=self.bucket, Prefix=directory)
                for u in page.get("Uploads", ())
            ]
        except Exception as exc:
            if _error_code(exc) != "AccessDenied":
                raise
            log.warning(
                "s3://%s: may not list multipart uploads (%s); uploads an earlier attempt left unfinished are "
                "not aborted. Grant s3:ListBucketMultipartUploads or give the bucket a lifecycle rule "
                "AbortIncompleteMultipartUpload.",
                self.bucket,
                exc,
            )
            return aborted
        for upload in uploads:
            parsed = naming.parse_file_name(upload["Key"])
            if parsed is None or parsed.topic != rng.topic or parsed.partition != rng.partition:
                continue
            if parsed.start in rng:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted.append(upload["Key"])
        return aborted

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
        """Delete the objects of earlier attempts starting in the range; refuse (after deleting the others) if
        some start at offsets lost to retention: those are kept."""
        stale = stale_objects(rng, self.existing(rng), written, lost)
        doomed = list(stale.removed)
        for i in range(0, len(doomed), 1000):
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in doomed[i : i + 1000]], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                raise LogtapError(f"could not delete stale archive objects: {errors[:5]}")
        if stale.kept:
            raise StaleObjectConflict(
                f"{rng}: the archive holds objects of an earlier write that start at offsets Kafka no longer "
                f"has (lost to retention): {list(stale.kept[:5])}. They were kept, and they may overlap what "
                "was just written. Inspect them and delete by hand the ones this write now covers."
            )
        return doomed


def _is_client_error(exc: BaseException) -> bool:
    """A botocore error: the service's answer (after retries) or the connection to it."""
    return type(exc).__module__.startswith(("botocore.", "boto3.", "urllib3."))
