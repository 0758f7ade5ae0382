"""A batch of records of one partition, in offset order, as plain lists (cheap to build and to slice)."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_logtap.core.ranges import OffsetRange


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one partition: ``offsets[i]``, ``values[i]`` (``None`` for a tombstone), ``timestamps[i]``
    (Kafka timestamp, epoch ms, -1 when the record has none).

    ``lost`` is set on the first batch after the reader skipped offsets deleted by retention while it read
    (only under ``on_data_loss='log_start'``).
    """

    topic: str
    partition: int
    offsets: list[int]
    values: list[bytes | None]
    timestamps: list[int]
    lost: OffsetRange | None = None

    def __len__(self) -> int:
        return len(self.offsets)
