"""Where a load or replay reads its records: Kafka, the S3 archive, or both (``auto``).

- ``kafka``: the topic itself (:func:`airflow_provider_logtap.kafka.reader.read_range`).
- ``archive``: an ``s3_archive`` tap's objects (:class:`~airflow_provider_logtap.sources.archive.ArchiveReader`),
  for offsets retention has deleted from Kafka.
- ``auto``: from the archive what lies below Kafka's log start when the read begins, from Kafka the rest: one
  stream in offset order, seamless at the boundary.

Every source yields the same :class:`~airflow_provider_logtap.core.batch.RecordBatch` es, so every sink writes
the same names, ``_id`` s, event-time placement and dead letters whichever source the records came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import ConfigurationError, one_of

if TYPE_CHECKING:
    from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook
    from airflow_provider_logtap.sources.archive import ArchiveReader
    from airflow_provider_logtap.taps import Tap
    from airflow_provider_logtap.targets.s3_archive import S3ArchiveTarget

SourceKind = Literal["kafka", "archive", "auto"]
SOURCES: tuple[str, ...] = get_args(SourceKind)


@dataclass(frozen=True, kw_only=True)
class Split:
    """The part of a range each source serves: ``archive`` below Kafka's log start, ``kafka`` from there."""

    archive: OffsetRange | None
    kafka: OffsetRange | None

    @classmethod
    def of(cls, kind: str, rng: OffsetRange, log_start: int) -> Split:
        one_of("source", kind, SOURCES)
        if kind == "kafka":
            return cls(archive=None, kafka=rng)
        if kind == "archive":
            return cls(archive=rng, kafka=None)
        cut = min(max(log_start, rng.start), rng.end)
        below = OffsetRange(topic=rng.topic, partition=rng.partition, start=rng.start, end=cut)
        above = OffsetRange(topic=rng.topic, partition=rng.partition, start=cut, end=rng.end)
        return cls(archive=None if below.empty else below, kafka=None if above.empty else above)


@dataclass
class RecordSource:
    """Reads ranges from the chosen ``kind`` of source.

    :param kind: one of :data:`SOURCES`.
    :param hook: the Kafka hook (``kafka`` and ``auto``; ``auto`` asks it for the log start of each range).
    :param archive: the archive reader (``archive`` and ``auto``).
    """

    kind: str
    hook: KafkaRangeHook | None = None
    archive: ArchiveReader | None = None

    def __post_init__(self) -> None:
        one_of("source", self.kind, SOURCES)
        if self.kind != "kafka" and self.archive is None:
            raise ConfigurationError(
                f"source={self.kind!r} needs the S3 archive to read from (an s3_archive tap)"
            )
        if self.kind != "archive" and self.hook is None:
            raise ConfigurationError(f"source={self.kind!r} needs a Kafka connection")

    def split(self, rng: OffsetRange) -> Split:
        """Which part of ``rng`` each source serves, decided now (``auto``: at the log start Kafka has now)."""
        if self.kind != "auto":
            return Split.of(self.kind, rng, 0)
        assert self.hook is not None
        return Split.of("auto", rng, self.hook.log_start(rng.topic, rng.partition))

    def read(
        self,
        rng: OffsetRange,
        *,
        report: Callable[[str], None] | None = None,
        **options: Any,
    ) -> Iterator[RecordBatch]:
        """The records of ``rng`` in offset order (``options``: those of
        :func:`~airflow_provider_logtap.kafka.reader.read_range`: ``batch_size``, ``on_data_loss``,
        ``progress_seconds``)."""
        split = self.split(rng)
        say: Callable[[str], None] = report or (self.hook.log.info if self.hook is not None else _log_info)
        if split.archive is not None:
            assert self.archive is not None
            if self.kind == "auto":
                say(
                    f"{rng}: offsets {split.archive.start}-{split.archive.end - 1} are below Kafka's log start: "
                    f"read from the archive {self.archive.where}, the rest from Kafka"
                )
            yield from self.archive.read(split.archive, report=say, **options)
        if split.kafka is not None:
            assert self.hook is not None
            yield from self.hook.read(split.kafka, report=say, **options)


def _log_info(line: str) -> None:
    import logging

    logging.getLogger(__name__).info(line)


def archive_reader(target: S3ArchiveTarget) -> ArchiveReader:
    """The reader of the objects ``target`` (an ``s3_archive`` tap's target) writes."""
    from airflow_provider_logtap.sources.archive import ArchiveReader
    from airflow_provider_logtap.targets.s3_archive import s3_client

    return ArchiveReader(client=s3_client(target.aws_conn_id), bucket=target.bucket, prefix=target.prefix)


def source_to_dict(kind: str, archive: S3ArchiveTarget | None) -> dict[str, Any]:
    """A source as JSON-ready data (the replay's XCom, a load's ``source`` parameter): its kind and, for
    ``archive``/``auto``, the archive tap's target."""
    from airflow_provider_logtap.targets import target_to_dict

    one_of("source", kind, SOURCES)
    return {"kind": kind, "archive": None if archive is None or kind == "kafka" else target_to_dict(archive)}


def parse_source(data: Any) -> tuple[str, S3ArchiveTarget | None]:
    """The kind and archive of a source given as :func:`source_to_dict` makes it, or as a bare kind
    (``None``: ``kafka``); ``archive`` may be an ``s3_archive`` target's settings alone (``bucket``, ``prefix``,
    ``aws_conn_id``). Validates without connecting to anything."""
    from airflow_provider_logtap.targets import S3ArchiveTarget, target_from_dict

    if data is None or isinstance(data, str):
        data = {"kind": data or "kafka"}
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"source must be one of {sorted(SOURCES)} or a mapping with kind and archive. Got {data!r}"
        )
    kind = one_of("source", data.get("kind", "kafka"), SOURCES)
    archive = data.get("archive")
    if kind == "kafka":
        return kind, None
    if not archive:
        raise ConfigurationError(
            f"source={kind!r} needs the archive to read: the s3_archive target's bucket and prefix, e.g. "
            '{"kind": "archive", "archive": {"bucket": "logtap-archive", "prefix": "raw"}}'
        )
    target = target_from_dict({**archive, "type": "s3_archive"})
    assert isinstance(target, S3ArchiveTarget)
    return kind, target


def record_source(data: Any, hook: KafkaRangeHook | None) -> RecordSource:
    """The source :func:`parse_source` reads ``data`` as, reading Kafka through ``hook``."""
    kind, target = parse_source(data)
    reader = None if target is None else archive_reader(target)
    return RecordSource(kind, hook=hook if kind != "archive" else None, archive=reader)


def archive_tap(taps: Sequence[Tap], topic: str, name: str | None = None) -> Tap:
    """The ``s3_archive`` tap whose archive a replay of ``topic`` reads: the one named ``name``, else the only
    ``s3_archive`` tap of ``topic``."""
    archives = [t for t in taps if t.target.type == "s3_archive"]
    if name:
        one_of("archive_tap (an s3_archive tap)", name, [t.name for t in archives])
        return next(t for t in archives if t.name == name)
    of_topic = [t for t in archives if t.topic == topic]
    if len(of_topic) == 1:
        return of_topic[0]
    if not of_topic:
        raise ConfigurationError(
            f"no s3_archive tap archives topic {topic!r}, so there is no archive to read it from: add one to the "
            f"taps file, name another with archive_tap (one of {sorted(t.name for t in archives)}), or read from "
            "Kafka (source='kafka')"
        )
    raise ConfigurationError(
        f"several s3_archive taps archive topic {topic!r}: name the one to read with archive_tap (one of "
        f"{sorted(t.name for t in of_topic)})"
    )
