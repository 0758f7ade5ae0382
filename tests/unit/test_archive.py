from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core import compression
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.archive import ArchiveFormat, archive_chunks, read_lines


def batches_of(offsets: list[int], values: list[bytes | None], size: int) -> list[RecordBatch]:
    return [
        RecordBatch.of(
            "t", 0, offsets[i : i + size], values[i : i + size], [1000 + o for o in offsets[i : i + size]]
        )
        for i in range(0, len(offsets), size)
    ]


def chunks(rng: OffsetRange, batches: list[RecordBatch], fmt: ArchiveFormat) -> list[tuple[object, bytes]]:
    return [
        (c, spool.getvalue())
        for c, spool in archive_chunks(rng, batches, fmt, spool=lambda start: io.BytesIO())
    ]


values_st = st.lists(st.one_of(st.none(), st.binary(max_size=30)), max_size=60)


@settings(max_examples=150)
@given(
    values=values_st,
    gaps=st.lists(st.integers(1, 3), min_size=60, max_size=60),
    batch=st.integers(1, 7),
    max_records=st.one_of(st.none(), st.integers(1, 9)),
    max_bytes=st.one_of(st.none(), st.integers(1, 120)),
    kind=st.sampled_from(["gzip", "zstd", "none"]),
)
def test_chunks_tile_the_range_and_keep_every_byte(
    values: list[bytes | None],
    gaps: list[int],
    batch: int,
    max_records: int | None,
    max_bytes: int | None,
    kind: str,
) -> None:
    offsets, o = [], 5
    for g in gaps[: len(values)]:
        o += g
        offsets.append(o)
    rng = OffsetRange(topic="t", partition=0, start=5, end=(offsets[-1] + 2) if offsets else 5)
    fmt = ArchiveFormat(compression=kind, max_records=max_records, max_bytes=max_bytes)
    out = chunks(rng, batches_of(offsets, values, batch), fmt)
    # Every non-tombstone value, byte for byte and in order, across the objects.
    content = b"".join(compression.decompress(kind, data) for _, data in out)
    assert content == b"".join(v + b"\n" for v in values if v is not None)
    # Coverage: consecutive, inside the range, ending at the range end (when the last chunk has lines).
    spans = [(c.start, c.end) for c, _ in out]  # type: ignore[attr-defined]
    for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
        assert e1 <= s2
    for c, _ in out:
        assert rng.start <= c.start <= c.first_offset <= c.last_offset < c.end <= rng.end  # type: ignore[attr-defined]
        if max_records is not None:
            assert c.lines + c.tombstones <= max_records  # type: ignore[attr-defined]
        if max_bytes is not None and c.lines > 1:  # type: ignore[attr-defined]
            assert c.bytes_in <= max_bytes  # type: ignore[attr-defined]
    if out:
        assert out[0][0].start == rng.start or out[0][0].first_offset > rng.start  # type: ignore[attr-defined]


def test_chunk_boundaries_do_not_depend_on_batching() -> None:
    offsets = list(range(100, 200))
    values: list[bytes | None] = [b"x" * (i % 13) for i in range(100)]
    rng = OffsetRange(topic="t", partition=0, start=100, end=200)
    fmt = ArchiveFormat(compression="none", max_bytes=97)
    a = [(c.start, c.end) for c, _ in chunks(rng, batches_of(offsets, values, 1), fmt)]  # type: ignore[attr-defined]
    b = [(c.start, c.end) for c, _ in chunks(rng, batches_of(offsets, values, 33), fmt)]  # type: ignore[attr-defined]
    assert a == b and len(a) > 5
    # A longer range from the same start cuts at the same places (a re-run after new data overwrites).
    longer = OffsetRange(topic="t", partition=0, start=100, end=230)
    more = offsets + list(range(200, 230))
    c = [(x.start, x.end) for x, _ in chunks(longer, batches_of(more, values + [b"y"] * 30, 7), fmt)]  # type: ignore[attr-defined]
    assert c[: len(a) - 1] == a[:-1] and c[len(a) - 1][0] == a[-1][0]


def test_first_chunk_covers_from_range_start_and_last_to_range_end() -> None:
    rng = OffsetRange(topic="t", partition=0, start=10, end=50)
    [(chunk, data)] = chunks(rng, batches_of([12, 13, 40], [b"a", b"b", b"c"], 10), ArchiveFormat())
    assert (chunk.start, chunk.end, chunk.first_offset, chunk.last_offset) == (10, 50, 12, 40)  # type: ignore[attr-defined]
    assert read_lines(data, "gzip") == [b"a", b"b", b"c"]


def test_odd_records_are_counted_not_altered() -> None:
    rng = OffsetRange(topic="t", partition=0, start=0, end=4)
    values: list[bytes | None] = [b"ok", None, b"\xff\xfebad", b"two\nlines"]
    [(chunk, data)] = chunks(rng, batches_of([0, 1, 2, 3], values, 10), ArchiveFormat(compression="zstd"))
    assert (chunk.lines, chunk.tombstones, chunk.invalid_utf8, chunk.embedded_newlines) == (3, 1, 1, 1)  # type: ignore[attr-defined]
    assert compression.decompress("zstd", data) == b"ok\n\xff\xfebad\ntwo\nlines\n"


def test_tombstones_only_yield_no_object() -> None:
    rng = OffsetRange(topic="t", partition=0, start=0, end=2)
    assert chunks(rng, batches_of([0, 1], [None, None], 10), ArchiveFormat()) == []


def test_metadata_names() -> None:
    rng = OffsetRange(topic="t", partition=0, start=0, end=2)
    [(chunk, _)] = chunks(rng, batches_of([0, 1], [b"a", b"b"], 10), ArchiveFormat())
    meta = chunk.metadata()  # type: ignore[attr-defined]
    assert meta["logtap-end-offset"] == "2" and meta["logtap-record-count"] == "2"
    assert meta["logtap-first-timestamp"] == "1000" and meta["logtap-last-timestamp"] == "1001"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"compression": "lz4"}, r"compression must be one of \{'gzip', 'none', 'zstd'\}. Got 'lz4'"),
        ({"max_records": 0}, "max_records must be a positive integer"),
        ({"max_bytes": -5}, "max_bytes must be a positive integer"),
    ],
)
def test_format_validation(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ArchiveFormat(**kw)  # type: ignore[arg-type]


class _Record:
    def __init__(self, offset: int, value: bytes | None) -> None:
        self._offset, self._value = offset, value

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000 + self._offset)


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=20) | st.none(), min_size=1, max_size=40))
def test_a_batch_of_records_with_known_values_archives_like_one_that_reads_them(
    values: list[bytes | None],
) -> None:
    # The reader's batches carry the values, bytes and tombstones the kernel's unpack counted in one pass.
    records = [_Record(i, v) for i, v in enumerate(values)]
    plain = RecordBatch("t", 0, records)
    known = RecordBatch.of_records(
        "t", 0, records, [r.value() for r in records], plain.nbytes(), values.count(None)
    )
    assert known.tombstones() == RecordBatch("t", 0, records).tombstones() == values.count(None)
    rng = OffsetRange(topic="t", partition=0, start=0, end=len(values))
    fmt = ArchiveFormat(max_records=7)
    assert chunks(rng, [known], fmt) == chunks(rng, [RecordBatch("t", 0, records)], fmt)
    with pytest.raises(ValueError, match="same length"):
        RecordBatch.of_records("t", 0, records, [], 0, 0)
