"""A replay request: which tap, which offsets, into which new target — validated before anything is read.

A replay re-reads an old range into a new target beside the live one (``<prefix>/replays/<name>``,
``<base_path>/_replays/<name>``), or rebuilds chosen event-time partitions of the live target in place (the
"my regex was wrong last week" case). It never reads or moves the live group's offsets except to end a partition
rebuild where the live tap has committed, and user input cannot leave the tap's base: names are one safe
segment, partitions are relative paths without ``..`` or wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import ConfigDict, Field

from airflow_provider_logtap.core.partitions import PARTITION_PATH, PartitionTemplate
from airflow_provider_logtap.core.ranges import (
    TOPIC_RE,
    EndSpec,
    Plan,
    StartSpec,
    check_topic,
    parse_timestamp_ms,
)
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.models import Settings, build, checked, setting
from airflow_provider_logtap.sinks.hdfs import check_partition_prefix
from airflow_provider_logtap.sources import SourceKind, archive_tap
from airflow_provider_logtap.taps import Tap
from airflow_provider_logtap.targets import (
    REPLAY_NAME,
    HdfsEventTimeTarget,
    S3ArchiveTarget,
    Target,
    check_replay_name,
    relocated,
)

FromKind = Literal["earliest", "offsets", "timestamp"]
ToKind = Literal["latest", "offsets", "timestamp", "committed"]
FROM_KINDS: tuple[str, ...] = get_args(FromKind)
TO_KINDS: tuple[str, ...] = get_args(ToKind)
_OFFSETS_HELP = 'Offsets per partition, e.g. {"0": 1200, "1": 980}; only these partitions are replayed.'


def _event_time(name: str) -> str:
    """The description of an event-time target's setting, for the form field that overrides it."""
    return f"Event-time targets: {HdfsEventTimeTarget.model_fields[name].description}"


class ReplayForm(Settings):
    """The replay DAG's form (Trigger DAG w/ config): the single definition of its fields, from which the
    form's ``Param`` s derive (:func:`airflow_provider_logtap.dag_factory.replay_params`) and by which a run's
    params are validated (:func:`parse_request`)."""

    kind_label: ClassVar[str] = "replay form"
    anchor: ClassVar[str] = "replay-form"
    model_config = ConfigDict(populate_by_name=True)

    tap: str = setting(description="The tap whose topic and kind of target to replay.", title="Tap")
    from_: FromKind = setting(
        "earliest", alias="from", title="From", description="Where each partition's range starts."
    )
    from_offsets: dict[str, int] | None = setting(None, title="From offsets", description=_OFFSETS_HELP)
    from_timestamp: str | None = setting(
        None,
        title="From time",
        description="The first record at or after this Kafka timestamp (UTC).",
        example="2026-11-01T00:00:00Z",
        json_schema_extra={"format": "date-time"},
    )
    to: ToKind = setting(
        "latest",
        title="To",
        description="Where ranges end (exclusive): the high watermark now, offsets, a time, or the live tap's "
        "committed offsets (required to overwrite partitions).",
    )
    to_offsets: dict[str, int] | None = setting(None, title="To offsets", description=_OFFSETS_HELP)
    to_timestamp: str | None = setting(
        None,
        title="To time",
        description="Before the first record at or after this Kafka timestamp (UTC).",
        example="2026-11-02T00:00:00Z",
        json_schema_extra={"format": "date-time"},
    )
    target_name: Annotated[str, checked(check_replay_name)] | None = setting(
        None,
        title="New target name",
        description="The replay writes beside the live target: S3 <prefix>/replays/<name>, HDFS "
        "<base_path>/_replays/<name>, indices <index_prefix>.replay-<name>-*. Letters, digits, '_' and '-'; "
        "empty: named after the run id. A name already holding another range is refused.",
        example="regex-fix-2026-11-25",
        json_schema_extra={"pattern": REPLAY_NAME.pattern},
    )
    overwrite_partitions: list[Annotated[str, Field(pattern=PARTITION_PATH)]] | None = setting(
        None,
        title="Overwrite event-time partitions",
        description="Instead of a new target: rebuild these partitions of an event-time target in place, "
        "e.g. dt=2015-10-28 or dt=2015-10-28/hour=14 (the recorded writes touching them are written again "
        "whole). Needs to='committed'.",
        example=["dt=2015-10-28"],
    )
    timestamp_regex: str | None = setting(
        None, title="Timestamp regex", description=_event_time("timestamp_regex")
    )
    date_format: str | None = setting(
        None, title="Date format", description=_event_time("date_format"), example="iso8601"
    )
    topic: str | None = setting(
        None,
        title="Topic",
        description="Another topic to replay into the tap's kind of target (default: the tap's).",
        json_schema_extra={"pattern": TOPIC_RE.pattern},
    )
    source: SourceKind = setting(
        "kafka",
        title="Source",
        description="Where the records come from: kafka; archive (the S3 archive tap's objects, for offsets "
        "retention deleted); auto (from the archive what Kafka no longer has, the rest from Kafka).",
    )
    archive_tap: str | None = setting(
        None,
        title="Archive tap",
        description="The s3_archive tap whose archive source archive/auto reads (default: the only s3_archive tap "
        "of the topic).",
    )
    dry_run: bool = setting(
        True,
        title="Dry run",
        description="Only plan and count records and bytes per partition; write nothing. Untick to write.",
    )


#: The form's defaults by field name (a replay only writes once asked to).
DEFAULTS: Mapping[str, Any] = {
    (info.alias or name): ReplayForm.default_of(name) for name, info in ReplayForm.model_fields.items()
}


def name_from_run(run_id: str) -> str:
    """A target name of a replay run that gave none: its run id made one safe segment, e.g.
    ``manual__2026-12-01T10-00-00-000000-00-00``; different runs get different names, so two replays that keep
    the default never write into one place."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", run_id).strip("-_")[:64].rstrip("-_")
    if not name:
        raise ConfigurationError("target_name is required: the run id gives no name to derive one from")
    return name


@dataclass(frozen=True, kw_only=True)
class ReplayRequest:
    tap: Tap
    topic: str
    start: StartSpec
    end: EndSpec | None  # None: the live group's committed offsets
    target: Target
    overwrite: tuple[str, ...] = ()
    dry_run: bool = False
    source: str = "kafka"
    archive: S3ArchiveTarget | None = None  # the s3_archive tap's target that source archive/auto reads

    @property
    def ends_at_committed(self) -> bool:
        return self.end is None


#: The most offsets of one partition a replay reads in one run: each partition's range is one load task that
#: reads it from start to end, so a larger one is refused with the split to ask for instead.
MAX_REPLAY_OFFSETS = 1_000_000_000


def check_replay_plan(plan: Plan, limit: int = MAX_REPLAY_OFFSETS) -> Plan:
    """``plan`` if no range of it spans more than ``limit`` offsets, else the error naming the first split (the
    sizes are differences of offsets: nothing is listed or read)."""
    for rng in plan.ranges:
        if rng.size > limit:
            runs = -(-rng.size // limit)
            raise ConfigurationError(
                f"a replay must span at most {limit:,} offsets per partition (each partition's range is one "
                f"load task). Got {rng}: {rng.size:,} offsets. Split it into {runs} replays by offsets, the first "
                f'with from=offsets, from_offsets {{"{rng.partition}": {rng.start}}}, to=offsets, '
                f'to_offsets {{"{rng.partition}": {rng.start + limit}}}, or narrow it with from_timestamp and '
                "to_timestamp."
            )
    return plan


def _spec_value(kind: str, offsets: Any, timestamp: Any, which: str) -> Any:
    if kind == "offsets":
        if not offsets:
            raise ConfigurationError(
                f'{which}=\'offsets\' needs {which}_offsets, e.g. {{"0": 1200, "1": 980}}'
            )
        return {"offsets": offsets}
    if kind == "timestamp":
        if not timestamp:
            raise ConfigurationError(
                f"{which}='timestamp' needs {which}_timestamp, e.g. 2026-11-01T00:00:00Z"
            )
        return {"timestamp": parse_timestamp_ms(timestamp, f"{which}_timestamp")}
    return kind


def parse_request(params: Mapping[str, Any], taps: Sequence[Tap], *, run_id: str = "") -> ReplayRequest:
    """A validated request from the replay DAG's params; every error says which field and how to fix it.

    Without a ``target_name`` the new target is named after ``run_id`` (:func:`name_from_run`)."""
    by_name = {t.name: t for t in taps}
    form: ReplayForm = build(ReplayForm, dict(params), owner="replay")
    if form.tap not in by_name:
        raise ConfigurationError(f"replay: field 'tap' must be one of {sorted(by_name)}. Got {form.tap!r}")
    tap = by_name[form.tap]
    from_kind, to_kind = form.from_, form.to
    start = StartSpec.parse(_spec_value(from_kind, form.from_offsets, form.from_timestamp, "from"))
    end = (
        None
        if to_kind == "committed"
        else EndSpec.parse(_spec_value(to_kind, form.to_offsets, form.to_timestamp, "to"))
    )
    target: Target = tap.target
    regex, date_format = form.timestamp_regex or None, form.date_format or None
    if regex or date_format:
        if not isinstance(target, HdfsEventTimeTarget):
            raise ConfigurationError(
                f"timestamp_regex/date_format apply to event-time targets; tap {tap.name!r} writes {target.type}"
            )
        target = target.of(
            "replay",
            **{
                **target.settings(),
                "timestamp_regex": regex or target.timestamp_regex,
                "date_format": date_format or target.date_format,
            },
        )
    overwrite = tuple(check_partition_prefix(p) for p in form.overwrite_partitions or ())
    if overwrite:
        if not isinstance(target, HdfsEventTimeTarget):
            raise ConfigurationError(
                f"overwrite_partitions rebuilds event-time partitions; tap {tap.name!r} writes {target.type}. "
                "Leave it empty to replay into a new target named by target_name."
            )
        template = PartitionTemplate(target.partition_template, target.partition_zone)
        overwrite = tuple(template.check_partition(p) for p in overwrite)
        if tap.mode != "group":
            raise ConfigurationError(
                "overwrite_partitions needs a group-mode tap (it ends at its committed offsets)"
            )
        if to_kind not in ("committed",):
            raise ConfigurationError(
                "overwrite_partitions rebuilds partitions up to the live tap's committed offsets, so that the live "
                "tap continues from there: set to='committed'"
            )
    else:
        if to_kind == "committed" and tap.mode != "group":
            raise ConfigurationError(f"to='committed' needs a group-mode tap; {tap.name!r} is {tap.mode}")
        target = relocated(target, form.target_name or name_from_run(run_id))
    topic = form.topic or tap.topic
    check_topic(topic)
    archive: S3ArchiveTarget | None = None
    if form.source != "kafka":
        archived = archive_tap(taps, topic, form.archive_tap).target
        assert isinstance(archived, S3ArchiveTarget)
        archive = archived
    return ReplayRequest(
        source=form.source,
        archive=archive,
        tap=tap,
        topic=topic,
        start=start,
        end=end,
        target=target,
        overwrite=overwrite,
        dry_run=form.dry_run,
    )
