"""A batch of records of one partition, in offset order.

A batch read from Kafka wraps the client's record objects and derives the lists it is asked for once (values,
offsets, timestamps): the raw archive needs only the values and a few offsets, and each list built costs a
method call per record. Tests and other producers build batches from plain lists with :meth:`RecordBatch.of`
(copies) or :meth:`RecordBatch.of_lists` (the lists themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from airflow_provider_logtap.core.ranges import OffsetRange


class Record(Protocol):
    """What a batch needs of a record (confluent-kafka's ``Message`` has these methods)."""

    def value(self) -> bytes | None: ...

    def offset(self) -> int: ...

    def timestamp(self) -> tuple[int, int]: ...


class RecordBatch:
    """Records of one partition: ``values[i]`` (``None`` for a tombstone), ``offsets[i]``, ``timestamps[i]``
    (Kafka timestamp, epoch ms; -1 when the record has none).

    ``lost`` is set on the first batch after the reader skipped offsets deleted by retention while it read
    (only under ``on_data_loss='log_start'``). A batch may be empty when it only carries ``lost``.
    """

    __slots__ = (
        "_nbytes",
        "_offsets",
        "_records",
        "_timestamps",
        "_tombstones",
        "_values",
        "lost",
        "partition",
        "topic",
    )

    def __init__(
        self, topic: str, partition: int, records: Sequence[Record], lost: OffsetRange | None = None
    ) -> None:
        self.topic = topic
        self.partition = partition
        self._records = records
        self.lost = lost
        self._values: list[bytes | None] | None = None
        self._offsets: list[int] | None = None
        self._timestamps: list[int] | None = None
        self._nbytes: int | None = None
        self._tombstones: int | None = None

    @classmethod
    def of(
        cls,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        values: Sequence[bytes | None],
        timestamps: Sequence[int],
        lost: OffsetRange | None = None,
    ) -> RecordBatch:
        return cls.of_lists(topic, partition, list(offsets), list(values), list(timestamps), lost)

    @classmethod
    def of_lists(
        cls,
        topic: str,
        partition: int,
        offsets: list[int],
        values: list[bytes | None],
        timestamps: list[int],
        lost: OffsetRange | None = None,
    ) -> RecordBatch:
        """A batch holding the given lists themselves (no record objects: a reader that has the lists)."""
        if not len(offsets) == len(values) == len(timestamps):
            raise ValueError("offsets, values and timestamps must have the same length")
        batch = cls(topic, partition, values, lost)  # type: ignore[arg-type]
        batch._values, batch._offsets, batch._timestamps = values, offsets, timestamps
        return batch

    @classmethod
    def of_records(
        cls,
        topic: str,
        partition: int,
        records: Sequence[Record],
        values: list[bytes | None],
        nbytes: int,
        tombstones: int,
        lost: OffsetRange | None = None,
    ) -> RecordBatch:
        """A batch of records whose values, their total length and the tombstones among them are known (the
        reader's one pass over a consume result: ``_kernel.unpack``)."""
        if len(values) != len(records):
            raise ValueError("records and values must have the same length")
        batch = cls(topic, partition, records, lost)
        batch._values, batch._nbytes, batch._tombstones = values, nbytes, tombstones
        return batch

    def __len__(self) -> int:
        return len(self._records)

    @property
    def values(self) -> list[bytes | None]:
        if self._values is None:
            self._values = [r.value() for r in self._records]
        return self._values

    @property
    def offsets(self) -> list[int]:
        if self._offsets is None:
            self._offsets = [r.offset() for r in self._records]
        return self._offsets

    @property
    def timestamps(self) -> list[int]:
        if self._timestamps is None:
            self._timestamps = [r.timestamp()[1] for r in self._records]
        return self._timestamps

    def offset_at(self, i: int) -> int:
        return self._records[i].offset() if self._offsets is None else self._offsets[i]

    def timestamp_at(self, i: int) -> int:
        return self._records[i].timestamp()[1] if self._timestamps is None else self._timestamps[i]

    def nbytes(self) -> int:
        """Bytes of the values (tombstones count 0)."""
        if self._nbytes is None:
            self._nbytes = value_bytes(self.values)
        return self._nbytes

    def tombstones(self) -> int:
        """How many values are tombstones (``None``)."""
        if self._tombstones is None:
            self._tombstones = self.values.count(None)
        return self._tombstones


def value_bytes(values: Sequence[bytes | None]) -> int:
    """Total length of ``values``; tombstones (``None``) count 0."""
    if None in values:
        return sum(len(v) for v in values if v is not None)
    return sum(map(len, values))  # type: ignore[arg-type]
