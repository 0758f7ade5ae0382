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
- a record's key and headers are not archived (the archive is the values); a ``\\r\\n`` ending is part of the
  value and kept (the line then ends ``\\r\\n\\n``).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import IO, Any, Protocol, TypeVar

from airflow_provider_logtap._kernel import frame
from airflow_provider_logtap.core import compression
from airflow_provider_logtap.core.batch import RecordBatch, value_bytes
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import check_positive

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
            check_positive(name, getattr(self, name), or_none=True)

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
        }


# Compressed blocks in flight to the compression thread, per chunk (each a consume batch, some 100s of KiB).
_IN_FLIGHT = 4


class _Building:
    """The chunk being filled: blocks of lines compressed on a worker thread (the codecs release the GIL, so
    compression overlaps with consuming) and written to the chunk's output (a spool file, a streaming upload)."""

    def __init__(self, start: int, fmt: ArchiveFormat, spool: Output, pool: ThreadPoolExecutor) -> None:
        self.start = start
        self.spool = spool
        self.pool = pool
        self.compressor = compression.new_compressor(fmt.compression, fmt.level)
        self.pending: deque[Future[tuple[int, int, int]]] = deque()
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

    def _work(self, values: list[bytes | None] | None) -> tuple[int, int, int]:
        """On the compression thread: frame, check, compress and write one block of values (``None``: the
        end of the chunk). Returns (invalid UTF-8 values, values with embedded newlines, bytes written)."""
        invalid = embedded = 0
        out = b""
        if values:
            # the kernel joins the lines (tombstones have none) and checks the block without the GIL: the reading
            # thread goes on meanwhile
            data, embedded, utf8 = frame(values)
            if not utf8:
                invalid = sum(1 for v in values if v is not None and not _is_utf8(v))
            if data:
                out = self.compressor.compress(data)
        if values is None:
            out += self.compressor.flush()
        if out:
            self.spool.write(out)
        return invalid, embedded, len(out)

    def _collect(self, limit: int) -> None:
        while len(self.pending) > limit:
            invalid, embedded, written = self.pending.popleft().result()
            self.invalid_utf8 += invalid
            self.embedded_newlines += embedded
            self.bytes_out += written

    def add(self, batch: RecordBatch, i: int, j: int) -> None:
        """Add the records ``i:j`` of ``batch`` (the heavy work runs on the compression thread)."""
        whole = i == 0 and j == len(batch)
        values = batch.values if whole else batch.values[i:j]
        if self.records == 0:
            self.first_offset = batch.offset_at(i)
            self.first_ts = batch.timestamp_at(i)
        self.records += j - i
        self.last_offset = batch.offset_at(j - 1)
        self.last_ts = batch.timestamp_at(j - 1)
        tombstones = batch.tombstones() if whole else values.count(None)
        lines = len(values) - tombstones
        self.tombstones += tombstones
        if not lines:
            return
        self.lines += lines
        self.bytes_in += (batch.nbytes() if whole else value_bytes(values)) + lines
        self._collect(_IN_FLIGHT - 1)
        self.pending.append(self.pool.submit(self._work, values))

    def abandon(self) -> None:
        for future in self.pending:
            future.cancel()
        for future in self.pending:
            if not future.cancelled():
                future.exception()
        self.spool.close()

    def finish(self, end: int) -> tuple[Chunk, Output]:
        self.pending.append(self.pool.submit(self._work, None))
        self._collect(0)
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


class Output(Protocol):
    """Where a chunk's compressed bytes go, in order, from one thread at a time."""

    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


OutputT = TypeVar("OutputT", bound=Output)


def default_spool(start: int) -> IO[bytes]:
    """A temporary file (in memory up to 16 MiB) for the chunk starting at ``start``."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)


def archive_chunks(
    rng: OffsetRange,
    batches: Iterable[RecordBatch],
    fmt: ArchiveFormat,
    spool: Callable[[int], OutputT],
) -> Iterator[tuple[Chunk, OutputT]]:
    """Cut the records of ``rng`` into archive chunks; yields each chunk with its output once complete.

    ``spool(start)`` makes the output of the chunk covering offsets from ``start``: a file (rewind it to read),
    or a writer that streams elsewhere (the S3 sink uploads parts while later records are still being read).
    Chunks without a line (only tombstones) are not yielded; their output is closed. The caller finishes and
    closes each yielded output.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="logtap-compress") as pool:
        current: _Building | None = None
        cut = False  # the current chunk is full: the next record starts a new one
        try:
            for batch in batches:
                i, n = 0, len(batch)
                while i < n:
                    if current is None:
                        current = _Building(rng.start, fmt, spool(rng.start), pool)
                    elif cut:
                        first = batch.offset_at(i)
                        done, current = current, None
                        yield from _emit(done, first)
                        current = _Building(first, fmt, spool(first), pool)
                        cut = False
                    take = n - i
                    if fmt.max_records is not None:
                        take = min(take, fmt.max_records - current.records)
                    if fmt.max_bytes is not None and take > 0:
                        whole_fits = take == n and current.bytes_in + batch.nbytes() + n <= fmt.max_bytes
                        if not whole_fits:
                            take = min(
                                take, _fits(batch.values[i : i + take], current.bytes_in, fmt.max_bytes)
                            )
                    if take > 0:
                        current.add(batch, i, i + take)
                        i += take
                    cut = (
                        i < n
                        or (fmt.max_records is not None and current.records >= fmt.max_records)
                        or (fmt.max_bytes is not None and current.bytes_in >= fmt.max_bytes)
                    )
            if current is not None:
                done, current = current, None
                yield from _emit(done, rng.end)
        except BaseException:
            if current is not None:  # an unfinished chunk's output is abandoned (an upload is aborted)
                current.abandon()
            raise


def _emit(building: _Building, end: int) -> Iterator[tuple[Chunk, Any]]:
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
