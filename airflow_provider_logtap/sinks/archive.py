"""Raw archive objects: record values as they are, each followed by ``\\n``, in offset order, compressed.

Shared by the S3 archive and the raw HDFS copy. A range is cut into chunks by a record or byte limit; chunk
boundaries depend only on the records, so re-writing a range from the same start yields the same names. The
chunks tile the range: each covers ``[start, end)`` where ``end`` is the next chunk's first offset (or the
range's end), so gaps in the offsets (compaction, transaction markers) belong to a chunk too.

The rules for unusual records (the archive never crashes on them and never alters a byte):

- a tombstone (``None`` value) has no bytes to archive: it is skipped and counted (``tombstones``);
- a value that is not valid UTF-8 is archived byte for byte and counted (``invalid_utf8``);
- a value containing ``\\n`` is archived byte for byte and counted (``embedded_newlines``); line-based readers
  will see it as several lines.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import IO, Any

from airflow_provider_logtap.core import compression
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError

SPOOL_IN_MEMORY = 16 * 1024 * 1024
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ArchiveFormat:
    """How archive objects are cut and compressed.

    :param compression: one of ``gzip`` (default), ``zstd``, ``none``.
    :param level: compression level (gzip 1-9, zstd 1-22); the codec's default when ``None``.
    :param max_records: cut an object after this many records (``None``: no record limit).
    :param max_bytes: cut an object once its uncompressed size would exceed this (``None``: no limit).
    """

    compression: str = "gzip"
    level: int | None = None
    max_records: int | None = None
    max_bytes: int | None = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        compression.check(self.compression)
        for name in ("max_records", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"{name} must be a positive integer or None. Got {value!r}")

    @property
    def suffix(self) -> str:
        return compression.SUFFIXES[self.compression]

    @property
    def content_type(self) -> str:
        return compression.CONTENT_TYPES[self.compression]


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """One archive object's coverage ``[start, end)`` and what is inside."""

    start: int
    end: int
    lines: int
    tombstones: int
    invalid_utf8: int
    embedded_newlines: int
    first_offset: int
    last_offset: int
    first_timestamp: int
    last_timestamp: int
    min_timestamp: int
    max_timestamp: int
    bytes_in: int
    bytes_out: int

    def metadata(self) -> dict[str, str]:
        """Object metadata (S3 ``x-amz-meta-*`` names, HDFS xattrs) describing the chunk."""
        return {
            "logtap-start-offset": str(self.start),
            "logtap-end-offset": str(self.end),
            "logtap-first-offset": str(self.first_offset),
            "logtap-last-offset": str(self.last_offset),
            "logtap-record-count": str(self.lines),
            "logtap-tombstones": str(self.tombstones),
            "logtap-first-timestamp": str(self.first_timestamp),
            "logtap-last-timestamp": str(self.last_timestamp),
            "logtap-min-timestamp": str(self.min_timestamp),
            "logtap-max-timestamp": str(self.max_timestamp),
        }


class _Building:
    """The chunk being filled: a streaming compressor writing into a spool file."""

    def __init__(self, start: int, fmt: ArchiveFormat, spool: IO[bytes]) -> None:
        self.start = start
        self.spool = spool
        self.compressor = compression.new_compressor(fmt.compression, fmt.level)
        self.records = 0
        self.lines = 0
        self.tombstones = 0
        self.invalid_utf8 = 0
        self.embedded_newlines = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.first_offset = -1
        self.last_offset = -1
        self.first_ts = -1
        self.last_ts = -1
        self.min_ts: int | None = None
        self.max_ts: int | None = None

    def add(self, offsets: list[int], values: list[bytes | None], timestamps: list[int]) -> None:
        if not offsets:
            return
        if None in values:
            lines = [v for v in values if v is not None]
            self.tombstones += len(values) - len(lines)
        else:
            lines = values  # type: ignore[assignment]
        if self.records == 0:
            self.first_offset = offsets[0]
            self.first_ts = timestamps[0]
        self.records += len(offsets)
        self.last_offset = offsets[-1]
        self.last_ts = timestamps[-1]
        lo, hi = min(timestamps), max(timestamps)
        self.min_ts = lo if self.min_ts is None else min(self.min_ts, lo)
        self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
        if not lines:
            return
        data = b"\n".join(lines) + b"\n"
        self.lines += len(lines)
        self.embedded_newlines += data.count(b"\n") - len(lines)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 += sum(1 for v in lines if not _is_utf8(v))
        self.bytes_in += len(data)
        out = self.compressor.compress(data)
        if out:
            self.spool.write(out)
            self.bytes_out += len(out)

    def finish(self, end: int) -> tuple[Chunk, IO[bytes]]:
        out = self.compressor.flush()
        if out:
            self.spool.write(out)
            self.bytes_out += len(out)
        self.spool.seek(0)
        chunk = Chunk(
            start=self.start,
            end=end,
            lines=self.lines,
            tombstones=self.tombstones,
            invalid_utf8=self.invalid_utf8,
            embedded_newlines=self.embedded_newlines,
            first_offset=self.first_offset,
            last_offset=self.last_offset,
            first_timestamp=self.first_ts,
            last_timestamp=self.last_ts,
            min_timestamp=-1 if self.min_ts is None else self.min_ts,
            max_timestamp=-1 if self.max_ts is None else self.max_ts,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )
        return chunk, self.spool


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _fits(values: list[bytes | None], used: int, limit: int) -> int:
    """How many of ``values`` (at least one) fit in ``limit - used`` bytes, counting one newline each."""
    if None in values:
        sizes: Iterable[int] = (0 if v is None else len(v) + 1 for v in values)
    else:
        total = sum(map(len, values)) + len(values)  # type: ignore[arg-type]
        if used + total <= limit:
            return len(values)
        sizes = (len(v) + 1 for v in values)  # type: ignore[arg-type]
    n = 0
    for n, acc in enumerate(accumulate(sizes)):
        if used + acc > limit:
            return max(n, 1) if used == 0 else n
    return len(values)


def default_spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)


def archive_chunks(
    rng: OffsetRange,
    batches: Iterable[RecordBatch],
    fmt: ArchiveFormat,
    spool: Callable[[], IO[bytes]] = default_spool,
) -> Iterator[tuple[Chunk, IO[bytes]]]:
    """Cut the records of ``rng`` into archive chunks; yields each chunk with its spool file at position 0.

    Chunks without a line (only tombstones) are not yielded. The caller closes each spool.
    """
    current: _Building | None = None
    cut = False  # the current chunk is full: the next record starts a new one
    for batch in batches:
        offsets, values, stamps = batch.offsets, batch.values, batch.timestamps
        i, n = 0, len(offsets)
        while i < n:
            if current is None:
                current = _Building(rng.start, fmt, spool())
            elif cut:
                yield from _emit(current, offsets[i])
                current = _Building(offsets[i], fmt, spool())
                cut = False
            take = n - i
            if fmt.max_records is not None:
                take = min(take, fmt.max_records - current.records)
            if fmt.max_bytes is not None and take > 0:
                take = min(take, _fits(values[i : i + take], current.bytes_in, fmt.max_bytes))
            if take > 0:
                current.add(offsets[i : i + take], values[i : i + take], stamps[i : i + take])
                i += take
            cut = (
                i < n
                or (fmt.max_records is not None and current.records >= fmt.max_records)
                or (fmt.max_bytes is not None and current.bytes_in >= fmt.max_bytes)
            )
    if current is not None:
        yield from _emit(current, rng.end)


def _emit(building: _Building, end: int) -> Iterator[tuple[Chunk, IO[bytes]]]:
    chunk, spool = building.finish(end)
    if chunk.lines:
        yield chunk, spool
    else:
        spool.close()


def read_lines(data: bytes, kind: str) -> list[bytes]:
    """The record values inside one archive object (for readers and tests)."""
    content = compression.decompress(kind, data)
    if not content:
        return []
    return content[:-1].split(b"\n") if content.endswith(b"\n") else content.split(b"\n")


def chunk_from_metadata(meta: dict[str, Any]) -> tuple[int, int] | None:
    """``(start, end)`` coverage recorded in an object's metadata, or ``None``."""
    try:
        return int(meta["logtap-start-offset"]), int(meta["logtap-end-offset"])
    except (KeyError, TypeError, ValueError):
        return None
