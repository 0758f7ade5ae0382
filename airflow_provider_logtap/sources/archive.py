"""Read records back from the S3 archive: the objects an ``s3_archive`` tap wrote, listed by their metadata
and streamed with bounded memory into the same batches a Kafka read yields.

An archive object covers ``[start, end)`` of one partition (``logtap-start-offset``/``logtap-end-offset``)
and holds the values of the records at offsets ``first..last`` (``logtap-first-offset``,
``logtap-last-offset``), one per line, in offset order. The archive records no per-record offsets, so a record's
offset is known exactly when the object is *dense*: as many lines as offsets from first to last and no tombstone
(every record of a plain log topic). An object of a compacted or transactional topic (offsets without a record
in between), or with a value holding ``\\n``, cannot give its records' offsets back: reading it is refused,
naming it (replay those offsets from Kafka while it has them).

The archive records no per-record Kafka timestamps either, only each object's first and last: the batches carry
those on the object's first and last record and -1 (no timestamp) on the others (a dead letter of such a
record has no Kafka timestamp).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_logtap.core import compression, coverage, naming
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.progress import Progress
from airflow_provider_logtap.core.ranges import OffsetRange, PartitionState
from airflow_provider_logtap.errors import NotRetryable

log = logging.getLogger(__name__)

#: Compressed bytes read from S3 per request of the stream (bounded memory whatever the object size).
READ_BYTES = 1024 * 1024
#: HEAD requests in flight while listing (the metadata of each object is one request).
HEADS_IN_FLIGHT = 16
_CODECS = {suffix: kind for kind, suffix in compression.SUFFIXES.items()}


class ArchiveGapError(NotRetryable):
    """Offsets a replay needs from the archive were never archived (or their objects were deleted)."""

    def __init__(self, rng: OffsetRange, gaps: Sequence[tuple[int, int]], where: str, hint: str = "") -> None:
        self.range = rng
        self.gaps = tuple(coverage.Span(s, e) for s, e in gaps)
        super().__init__(
            f"Archive gap on {rng.topic}[{rng.partition}]: {where} holds no object for offsets "
            f"{coverage.compact(self.gaps)} of {rng}. "
            + (
                hint
                or "Nothing was written. Replay those offsets from Kafka if it still has them (source='auto'), or "
                "accept the loss with on_data_loss='log_start' (the gaps are skipped and reported as lost)."
            )
        )


class ArchiveUnreadableError(NotRetryable):
    """An archive object whose records' offsets cannot be recovered, or whose content contradicts its
    metadata."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchivedObject:
    """One archive object as its key and metadata describe it (nothing downloaded)."""

    key: str
    start: int
    end: int
    first_offset: int
    last_offset: int
    records: int
    tombstones: int
    first_timestamp: int
    last_timestamp: int
    size: int
    codec: str

    @property
    def span(self) -> coverage.Span:
        return coverage.Span(self.start, self.end)

    @property
    def dense(self) -> bool:
        """Its records sit at every offset from first to last: each line's offset is known."""
        return self.tombstones == 0 and self.records == self.last_offset - self.first_offset + 1

    @classmethod
    def of(cls, key: str, size: int, metadata: Mapping[str, str]) -> ArchivedObject:
        """From an object's key, size and user metadata (S3 lower-cases the names)."""
        meta = {k.lower(): v for k, v in metadata.items()}
        parsed = naming.parse_file_name(key)
        try:
            start = int(meta["logtap-start-offset"])
            return cls(
                key=key,
                start=start,
                end=int(meta["logtap-end-offset"]),
                first_offset=int(meta["logtap-first-offset"]),
                last_offset=int(meta["logtap-last-offset"]),
                records=int(meta["logtap-record-count"]),
                tombstones=int(meta.get("logtap-tombstones", "0")),
                first_timestamp=int(meta.get("logtap-first-timestamp", "-1")),
                last_timestamp=int(meta.get("logtap-last-timestamp", "-1")),
                size=size,
                codec=_CODECS.get(parsed.suffix if parsed else "", "gzip"),
            )
        except (KeyError, ValueError) as exc:
            raise ArchiveUnreadableError(
                f"archive object {key} lacks logtap's metadata ({exc}): it was not written by logtap, or its "
                "metadata was lost in a copy (copy with --metadata-directive COPY). Move it out of the archive's "
                "prefix."
            ) from None


def list_objects(
    client: Any,
    bucket: str,
    prefix: str,
    topic: str,
    partition: int,
    rng: OffsetRange | None = None,
) -> list[ArchivedObject]:
    """The archive objects of one partition under ``s3://bucket/prefix``, in offset order, from their listing
    and metadata (a HEAD each, several at once); with ``rng``, only those that may hold offsets of it (the one
    starting at or before its start, and those starting inside it)."""
    directory = naming.partition_dir(prefix, topic, partition) + "/"
    listed: list[tuple[int, str, int]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=directory):
        for obj in page.get("Contents", ()):
            parsed = naming.parse_file_name(obj["Key"])
            if parsed is None or parsed.topic != topic or parsed.partition != partition:
                continue
            if "/" in obj["Key"][len(directory) :]:
                continue  # not directly in the partition's directory
            listed.append((parsed.start, obj["Key"], int(obj.get("Size", 0))))
    listed.sort()
    if rng is not None:
        before = [i for i, (s, _, _) in enumerate(listed) if s <= rng.start]
        first = before[-1] if before else 0
        listed = [o for o in listed[first:] if o[0] < rng.end]
    if not listed:
        return []

    def head(item: tuple[int, str, int]) -> ArchivedObject:
        _start, key, size = item
        return ArchivedObject.of(key, size, client.head_object(Bucket=bucket, Key=key).get("Metadata", {}))

    with ThreadPoolExecutor(max_workers=min(HEADS_IN_FLIGHT, len(listed))) as pool:
        objects = list(pool.map(head, listed))
    if rng is not None:
        objects = [o for o in objects if o.end > rng.start and o.start < rng.end]
    return objects


def archived_partitions(client: Any, bucket: str, prefix: str, topic: str) -> list[int]:
    """The partitions of ``topic`` the archive under ``s3://bucket/prefix`` has a directory for (``partition=<p>/``),
    for a replay of a topic Kafka no longer has at all."""
    directory = naming.partition_dir(prefix, topic, 0).rsplit("/", 1)[0] + "/"
    found: set[int] = set()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=directory, Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", ()):
            name = common["Prefix"][len(directory) :].rstrip("/")
            if name.startswith("partition=") and name[len("partition=") :].isdigit():
                found.add(int(name[len("partition=") :]))
    return sorted(found)


def gaps(objects: Iterable[ArchivedObject], rng: OffsetRange) -> list[coverage.Span]:
    """The offsets of ``rng`` no object covers."""
    return coverage.missing((o.span for o in objects), rng.start, rng.end)


def _decompressor(codec: str) -> Callable[[bytes], bytes]:
    if codec == "gzip":
        try:
            from isal import isal_zlib

            return isal_zlib.decompressobj(47).decompress
        except ImportError:  # pragma: no cover - python-isal is a dependency
            return zlib.decompressobj(47).decompress
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress
    return bytes


def object_lines(
    client: Any, bucket: str, obj: ArchivedObject, read_bytes: int = READ_BYTES
) -> Iterator[list[bytes]]:
    """The lines of ``obj``, in order, in blocks (each block from one read of the stream; memory stays bounded
    by the read size and the longest line)."""
    body = client.get_object(Bucket=bucket, Key=obj.key)["Body"]
    decompress = _decompressor(obj.codec)
    rest = b""
    try:
        while True:
            data = body.read(read_bytes)
            if not data:
                break
            text = rest + decompress(data)
            cut = text.rfind(b"\n")
            if cut < 0:
                rest = text
                continue
            rest = text[cut + 1 :]
            yield text[:cut].split(b"\n")
    finally:
        body.close()
    if rest:
        raise ArchiveUnreadableError(
            f"archive object {obj.key} does not end with a newline: it is truncated or was not written by logtap"
        )


class ArchiveReader:
    """Read ranges of one partition's records back from ``s3://bucket/prefix`` (an ``s3_archive`` tap's
    objects).

    :param client: a boto3 S3 client.
    :param bucket: the archive's bucket.
    :param prefix: the archive tap's key prefix.
    """

    def __init__(self, *, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = naming.check_bucket(bucket)
        self.prefix = naming.clean_prefix(prefix)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def objects(self, rng: OffsetRange) -> list[ArchivedObject]:
        return list_objects(self.client, self.bucket, self.prefix, rng.topic, rng.partition, rng)

    def gaps(self, rng: OffsetRange) -> list[coverage.Span]:
        return gaps(self.objects(rng), rng)

    def read(
        self,
        rng: OffsetRange,
        *,
        batch_size: int = 2000,
        on_data_loss: str = "fail",
        progress_seconds: float = 15.0,
        report: Callable[[str], None] = log.info,
    ) -> Iterator[RecordBatch]:
        """The records of ``rng`` from the archive in offset order, in batches of at most ``batch_size``.

        Offsets of ``rng`` no object covers raise :class:`ArchiveGapError` before anything is yielded, or, under
        ``on_data_loss='log_start'``, are skipped and reported as ``lost`` on the batches (as a Kafka read
        reports offsets retention deleted). Objects overlapping an earlier one (a doubled archive) give each
        offset once."""
        if rng.empty:
            return
        objects = self.objects(rng)
        missing = gaps(objects, rng)
        if missing and on_data_loss == "fail":
            raise ArchiveGapError(rng, missing, self.where)
        for obj in objects:
            if not obj.dense and obj.first_offset < rng.end and obj.last_offset >= rng.start:
                raise ArchiveUnreadableError(
                    f"archive object s3://{self.bucket}/{obj.key} holds {obj.records} records and {obj.tombstones} "
                    f"tombstones over offsets {obj.first_offset}-{obj.last_offset}: some offsets hold no record "
                    "(a compacted or transactional topic), and the archive does not record which, so its records' "
                    f"offsets cannot be recovered. Replay {rng} from Kafka (source='kafka') while it has them."
                )
        progress = Progress(rng=rng, interval=progress_seconds)
        position = rng.start
        pending_lost = [
            OffsetRange(topic=rng.topic, partition=rng.partition, start=s, end=e) for s, e in missing
        ]
        for span in missing:
            report(f"{rng}: offsets {span.start}-{span.end - 1} are not in the archive {self.where}: LOST")
        for obj in objects:
            if obj.last_offset < position or obj.first_offset >= rng.end:
                continue
            for batch in self._read_object(rng, obj, position, batch_size):
                while pending_lost and pending_lost[0].end <= batch.offset_at(0):
                    yield RecordBatch(rng.topic, rng.partition, [], pending_lost.pop(0))
                position = batch.offset_at(len(batch) - 1) + 1
                line = progress.update(len(batch), batch.nbytes(), position)
                if line:
                    report(line)
                yield batch
        for lost in pending_lost:
            yield RecordBatch(rng.topic, rng.partition, [], lost)
        progress.update(0, 0, rng.end)
        report(progress.line() + f" from the archive {self.where} (complete)")

    def _read_object(
        self, rng: OffsetRange, obj: ArchivedObject, position: int, batch_size: int
    ) -> Iterator[RecordBatch]:
        """Batches of the records of ``obj`` at offsets in ``[max(position, rng.start), rng.end)``."""
        low, high = max(position, rng.start), rng.end
        offset = obj.first_offset
        for lines in object_lines(self.client, self.bucket, obj):
            n = len(lines)
            if offset + n - 1 > obj.last_offset:
                raise ArchiveUnreadableError(
                    f"archive object s3://{self.bucket}/{obj.key} holds more lines than its {obj.records} records: a "
                    "value holds a newline (or the object was altered), so its lines' offsets cannot be recovered. "
                    f"Replay {rng} from Kafka (source='kafka') while it has them."
                )
            a, b = max(low - offset, 0), min(high - offset, n)
            for i in range(a, b, batch_size):
                j = min(i + batch_size, b)
                values: list[bytes | None] = list(lines[i:j])
                offsets = list(range(offset + i, offset + j))
                timestamps = [-1] * (j - i)
                if offsets[0] == obj.first_offset:
                    timestamps[0] = obj.first_timestamp
                if offsets[-1] == obj.last_offset:
                    timestamps[-1] = obj.last_timestamp
                yield RecordBatch.of_lists(rng.topic, rng.partition, offsets, values, timestamps)
            offset += n
            if offset >= high:
                return
        if offset != obj.last_offset + 1:
            raise ArchiveUnreadableError(
                f"archive object s3://{self.bucket}/{obj.key} holds {offset - obj.first_offset} lines, its metadata "
                f"says {obj.records} records: it is truncated or was altered. Replay {rng} from Kafka "
                "(source='kafka') while it has them."
            )


def offset_for_time(objects: Sequence[ArchivedObject], timestamp_ms: int, *, end: bool) -> int | None:
    """The first offset stamped at or after ``timestamp_ms`` as the objects' first and last Kafka timestamps
    tell it (``None``: no object holds a record that late). Exact when the time falls between two objects; a
    time inside an object (after its first record's, at or before its last's) resolves to the object's start
    for a range's start and to its end for a range's end, so the range grows to whole objects rather than miss a
    record (the archive keeps no per-record timestamps)."""
    for obj in objects:
        if obj.last_timestamp >= timestamp_ms:
            if obj.first_timestamp >= timestamp_ms:
                return obj.start
            return obj.end if end else obj.start
    return None


def archive_state(
    kind: str,
    state: PartitionState,
    objects: Sequence[ArchivedObject],
    *,
    start_ms: int | None,
    end_ms: int | None,
    to_latest: bool,
) -> PartitionState:
    """What a plan reading from source ``kind`` (``archive`` or ``auto``) sees of a partition Kafka describes as
    ``state``: the log starts where the archive starts (``auto``: where the archive or Kafka does, whichever is
    first), timestamps resolve in the archive below Kafka's log start, and ``latest`` is the archive's end
    (``archive``) or Kafka's high-water mark (``auto``)."""
    if not objects:
        if kind == "archive":
            return replace(
                state,
                log_start=state.log_start,
                high_watermark=state.log_start if to_latest else state.high_watermark,
                start_at_timestamp=None,
                end_at_timestamp=None,
            )
        return state
    first, last = objects[0].start, max(o.end for o in objects)
    if kind == "archive":
        log_start = first
        high = last if to_latest else max(last, state.high_watermark)
        start_at = None if start_ms is None else offset_for_time(objects, start_ms, end=False)
        end_at = None if end_ms is None else offset_for_time(objects, end_ms, end=True)
        return PartitionState(
            partition=state.partition,
            log_start=min(log_start, high),
            high_watermark=high,
            committed=state.committed,
            start_at_timestamp=start_at,
            end_at_timestamp=end_at,
        )
    below = [o for o in objects if o.start < state.log_start]

    def resolved(kafka: int | None, ms: int | None, end: bool) -> int | None:
        if ms is None or not below or (kafka is not None and kafka > state.log_start):
            return kafka  # Kafka still has the records around that time
        archived = offset_for_time(below, ms, end=end)
        return kafka if archived is None or archived >= state.log_start else archived

    return replace(
        state,
        log_start=min(first, state.log_start),
        start_at_timestamp=resolved(state.start_at_timestamp, start_ms, False),
        end_at_timestamp=resolved(state.end_at_timestamp, end_ms, True),
    )
