"""Taps: a topic, its own consumer group and one target, declared once in a configuration file.

Each tap becomes its own DAG (see :mod:`airflow_provider_logtap.dag_factory`), so a failing target never holds
the others back. The file is YAML (or JSON)::

    defaults:                       # optional, merged into every tap
      kafka_conn_id: kafka_default
    taps:
      - name: weblogs_archive
        topic: weblogs
        schedule: "*/15 * * * *"
        target:
          type: s3_archive
          bucket: logtap-archive
          prefix: raw

:class:`Tap` is the single definition of every tap setting; the target types are in
:mod:`airflow_provider_logtap.targets`. Validation reports every invalid setting of a tap at once, each with
the tap, the field, the problem and the fix; the settings reference (``docs/settings.md``) is generated from
the same models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BeforeValidator, ValidationInfo, field_validator

from airflow_provider_logtap.core.ranges import Initial, OnDataLoss, check_topic
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.kafka.reader import PROGRESS_SECONDS
from airflow_provider_logtap.ledger import DEFAULT_HORIZON_DAYS
from airflow_provider_logtap.models import FieldError, Settings, checked, setting, validate
from airflow_provider_logtap.targets import (
    TARGET_TYPES,
    TARGETS,
    AnyTarget,
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    Target,
)
from airflow_provider_logtap.targets.base import Ratio

__all__ = [
    "DEFAULT_START",
    "MODES",
    "SENSOR_MODES",
    "TAPS_FILE_ENV",
    "TARGETS",
    "TARGET_TYPES",
    "HdfsEventTimeTarget",
    "HdfsRawTarget",
    "S3ArchiveTarget",
    "SearchTarget",
    "Tap",
    "TapConfigError",
    "TapsFileError",
    "Target",
    "load_taps",
    "load_taps_leniently",
    "parse_tap",
]

TAPS_FILE_ENV = "LOGTAP_TAPS_FILE"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
Mode = Literal["group", "interval"]
MODES: tuple[str, ...] = get_args(Mode)
SensorMode = Literal["deferrable", "reschedule", "poke"]
SENSOR_MODES: tuple[str, ...] = get_args(SensorMode)


class TapConfigError(ConfigurationError):
    """A tap's configuration is invalid: every invalid setting, each with its field, problem and fix
    (``field``/``problem``/``fix`` are the first one's)."""

    def __init__(self, tap: str, errors: Sequence[FieldError]) -> None:
        self.tap, self.errors = tap, list(errors)
        first = self.errors[0]
        self.field, self.problem, self.fix = first.field, first.problem, first.fix
        if len(self.errors) == 1:
            message = f"tap {tap!r}: {first}"
        else:
            lines = "\n".join(f"  - {e}" for e in self.errors)
            message = f"tap {tap!r} has {len(self.errors)} invalid settings:\n{lines}"
        super().__init__(message)

    @classmethod
    def one(cls, tap: str, field_name: str, problem: str, fix: str) -> TapConfigError:
        return cls(tap, [FieldError(field_name, problem, fix)])


class TapsFileError(ConfigurationError):
    """Some taps of the taps file are invalid (the others still load); one entry per invalid tap."""

    def __init__(self, errors: list[ConfigurationError]) -> None:
        self.errors = errors
        lines = "\n".join(f"- {e}" for e in errors)
        super().__init__(
            f"{len(errors)} invalid tap(s) in the taps file; the other taps load normally:\n{lines}"
        )


def _name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigurationError(
            f"must be letters, digits, '_', '.', '-' (not starting with '.' or '-'), not {name!r}"
        )
    return name


def _topic(topic: str) -> str:
    try:
        return check_topic(topic)
    except ConfigurationError:
        raise ConfigurationError(
            f"must be a Kafka topic name (1-249 of [A-Za-z0-9._-]), not {topic!r}"
        ) from None


def _schedule(schedule: str) -> str:
    from airflow_provider_logtap.compat import check_schedule

    return check_schedule(schedule)


def _moment(value: Any) -> Any:
    """A start date as YAML gives it (a date, a date-time, an ISO-8601 text), made a UTC-aware date-time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(f"is not an ISO-8601 date: {value!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=timezone.utc)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _tags(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class Tap(Settings):
    """One tap.

    ``mode`` is ``group`` (each run loads from the tap group's committed offsets to the high-water mark) or
    ``interval`` (each run loads its data interval's records by Kafka timestamp; backfills and clears reload
    exactly the same offsets).
    """

    kind_label: ClassVar[str] = "tap"
    anchor: ClassVar[str] = "tap-settings"

    name: Annotated[str, checked(_name)] = setting(
        description="The tap's name: its DAG is logtap_<name>, its consumer group logtap-<name>.",
        fix="give the tap a name like weblogs_archive",
    )
    topic: Annotated[str, checked(_topic)] = setting(
        description="The Kafka topic the tap reads.", fix="set topic to the topic's exact name"
    )
    target: AnyTarget = setting(
        description="Where the tap writes: a mapping with a type (" + ", ".join(TARGET_TYPES) + ") and "
        "that type's settings.",
        fix=f"add target: {{type: {TARGET_TYPES[0]}, ...}}",
    )
    group_id: str = setting("", description="The tap's own consumer group; '': logtap-<name>.")
    kafka_conn_id: str = setting(
        "kafka_default",
        description="The Airflow Kafka connection (apache-kafka provider); its extra is the librdkafka "
        "configuration. A group.id there is replaced by the tap's group.",
    )
    mode: Mode = setting(
        "group",
        description="group loads from the committed offsets; interval loads each run's data interval by "
        "Kafka time.",
    )
    schedule: Annotated[str, checked(_schedule)] | None = setting(
        "*/15 * * * *",
        description="A cron expression or preset (@hourly...); null: no schedule (group mode only: runs only "
        "when triggered).",
        fix='set schedule to a cron like "*/15 * * * *" or a preset like "@hourly"',
    )
    start_date: Annotated[datetime, BeforeValidator(_moment)] = setting(
        DEFAULT_START,
        description="The DAG's start date: 2026-01-01 or 2026-01-01T00:00:00Z (UTC unless a zone is given).",
        fix="write it like 2026-01-01 or 2026-01-01T00:00:00Z",
    )
    catchup: bool = setting(False, description="Interval mode: run the intervals since start_date.")
    initial: Initial = setting(
        "earliest",
        description="Where a partition without a committed offset starts: earliest loads the retained log, "
        "latest only new records, fail stops.",
    )
    on_data_loss: OnDataLoss = setting(
        "fail",
        description="When retention deleted offsets before they were loaded: fail stops (nothing written for "
        "that partition); log_start records the loss and goes on from the log start.",
    )
    max_records_per_run: int | None = setting(
        None, description="Group mode: at most this many records per partition per run; null: no limit.", ge=1
    )
    chunk_records: int | None = setting(
        None,
        description="Split each partition's range of a run that is longer than this many offsets into balanced "
        "chunks, each loaded by its own task on whatever worker is free (and retried alone); null: one load per "
        "partition. Chunks are cut at plan time and reused on every retry and clear. Interval mode cuts an "
        "interval's core, never the zones around its boundaries.",
        fix="e.g. 1000000 (a million offsets per load task)",
        ge=1,
    )
    max_active_chunks: int | None = setting(
        None,
        description="At most this many of the tap's load tasks at once, over all its runs (a backfill too): "
        "Airflow's max_active_tis_per_dag of the load; null: bounded only by the pool and Airflow's parallelism.",
        ge=1,
    )
    pool: str | None = setting(
        None,
        description="The Airflow pool of the tap's load tasks (create it: airflow pools set <name> <slots> "
        "<description>); one pool shared by several taps bounds their loads together, e.g. to spare the broker. "
        "null: default_pool.",
        min_length=1,
    )
    priority_weight: int = setting(
        10,
        description="The Airflow priority of the tap's load tasks when slots are short (absolute weight); the "
        "logtap_replay DAG's loads have 1, so a replay never starves the scheduled loads.",
        ge=1,
    )
    sensor_mode: SensorMode = setting(
        "deferrable",
        description="How the DAG's first task waits: deferrable in the triggerer (no worker slot; needs "
        "`airflow triggerer`), reschedule frees the slot between checks, poke holds it.",
    )
    min_backlog: int = setting(1, description="Group mode: the records a run waits for.", ge=1)
    max_backlog_age_seconds: int | None = setting(
        None,
        description="Group mode: start anyway once the oldest waiting record is this old; null: never.",
        ge=1,
    )
    wait_timeout_seconds: int = setting(
        600,
        description="Group mode: how long a run waits for the backlog; a run without one is skipped.",
        ge=1,
    )
    lateness_seconds: int = setting(
        0, description="Interval mode: how long after an interval's end its records may still arrive.", ge=0
    )
    max_disorder_seconds: int = setting(
        300,
        description="Interval mode: how far a record's Kafka timestamp may be from its neighbours' and still "
        "be loaded with the interval of its own time; at most half the schedule's interval.",
        fix="e.g. 300 (5 minutes), at most half the schedule's shortest interval",
        ge=0,
    )
    max_out_of_place_ratio: Ratio | None = setting(
        None,
        description="Interval mode: fail a load (its records written) when more than this share of its "
        "records are stamped outside its interval; null: only report them.",
        fix="e.g. 0.01 fails a load with over 1% out of place",
    )
    idle_grace_seconds: int | None = setting(
        600,
        description="Interval mode: an interval counts as complete once a partition has been idle this "
        "long after its end; null: wait for a later record.",
        ge=0,
    )
    completeness_timeout_seconds: int = setting(
        7200, description="Interval mode: how long a run waits for its interval to be complete.", ge=1
    )
    ledger_horizon_days: float | None = setting(
        DEFAULT_HORIZON_DAYS,
        description="Interval mode: the recorded plans of intervals that ended more than this many days before "
        "the newest are deleted (Airflow Variables logtap/<dag>/...); clears and backfills inside the horizon "
        "reload the same offsets, older intervals are refused (replay them). null: keep every plan.",
        gt=0,
    )
    retention_headroom: int = setting(
        100_000,
        description="Warn when fewer offsets than this separate the oldest unloaded record from the log start.",
        ge=0,
    )
    retention_max_share: float = setting(
        0.8,
        description="Warn once the oldest unloaded record has used up this share of the topic's retention.ms.",
        gt=0,
        le=1,
    )
    retention_fail: bool = setting(False, description="Fail the retention check instead of warning.")
    progress_seconds: float = setting(
        PROGRESS_SECONDS,
        description="Seconds between a load's progress lines in the task log (records, bytes, rate, offsets "
        "remaining, ETA); the first comes after the read's first second.",
        gt=0,
    )
    retries: int = setting(
        2, description="Airflow retries of each task (not of failures no retry can fix).", ge=0
    )
    retry_delay_seconds: int = setting(30, description="Seconds between retries.", ge=0)
    tags: Annotated[tuple[str, ...], BeforeValidator(_tags)] = setting(
        (), description="Extra DAG tags (the DAG always has logtap and the target type)."
    )

    @field_validator("schedule")
    @classmethod
    def _interval_schedule(cls, schedule: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "interval" and (schedule is None or schedule in ("@once", "@continuous")):
            raise ConfigurationError(
                "must be a cron schedule in interval mode (each run loads its data interval)"
            )
        return schedule

    @field_validator("max_disorder_seconds")
    @classmethod
    def _disorder(cls, seconds: int, info: ValidationInfo) -> int:
        from airflow_provider_logtap.core.intervals import check_disorder, shortest_interval_ms

        schedule = info.data.get("schedule")
        if info.data.get("mode") != "interval" or not isinstance(schedule, str):
            return seconds
        shortest = shortest_interval_ms(schedule)
        try:
            check_disorder(seconds * 1000, shortest, "max_disorder_seconds")
        except ConfigurationError:
            raise ConfigurationError(
                f"is {seconds}s, more than half the schedule's shortest data interval "
                f"({(shortest or 0) / 1000:g}s): a record is only placed by its own time when it is out of order "
                "by less than half an interval"
            ) from None
        return seconds

    @property
    def dag_id(self) -> str:
        return f"logtap_{self.name}"

    @property
    def group(self) -> str:
        return self.group_id or f"logtap-{self.name}"


def parse_tap(raw: Any, defaults: Mapping[str, Any] | None = None, index: int = 0) -> Tap:
    """One tap from its mapping (``defaults`` merged under it); a :class:`TapConfigError` lists every invalid
    setting."""
    if not isinstance(raw, Mapping):
        raise TapConfigError.one(
            f"#{index + 1}",
            "(tap)",
            f"must be a mapping, not {raw!r}",
            "write each tap as name: ..., topic: ..., target: {...}",
        )
    merged = {**(defaults or {}), **raw}
    tap, errors = validate(Tap, merged)
    if errors:
        name = merged.get("name")
        label = name if isinstance(name, str) and name else f"#{index + 1}"
        raise TapConfigError(label, errors)
    return tap  # type: ignore[no-any-return]


def load_taps(path: str | Path) -> list[Tap]:
    """Every tap of a configuration file; the first invalid tap (or a repeated name or group) is an error."""
    taps, errors = load_taps_leniently(path)
    if errors:
        raise errors[0]
    return taps


def load_taps_leniently(path: str | Path) -> tuple[list[Tap], list[ConfigurationError]]:
    """The valid taps of a configuration file, and an error for each invalid one (so the others still load)."""
    import yaml

    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as exc:
        return [], [
            ConfigurationError(
                f"cannot read the taps file {file}: {exc.strerror}. Set {TAPS_FILE_ENV} to its path."
            )
        ]
    except yaml.YAMLError as exc:
        return [], [ConfigurationError(f"the taps file {file} is not valid YAML: {exc}")]
    if not isinstance(raw, Mapping) or not isinstance(raw.get("taps"), list):
        return [], [ConfigurationError(f"the taps file {file} must hold a mapping with a list under 'taps'")]
    defaults = raw.get("defaults") or {}
    taps: list[Tap] = []
    errors: list[ConfigurationError] = []
    names: dict[str, str] = {}
    groups: dict[str, str] = {}
    for i, entry in enumerate(raw["taps"]):
        try:
            tap = parse_tap(entry, defaults, i)
            for seen, key, field_name, what in (
                (names, tap.name, "name", "name"),
                (groups, tap.group, "group_id", "consumer group"),
            ):
                if key in seen:
                    raise TapConfigError.one(
                        tap.name,
                        field_name,
                        f"repeats the {what} {key!r} of tap {seen[key]!r}",
                        "give every tap its own name and consumer group",
                    )
            names[tap.name] = groups[tap.group] = tap.name
            taps.append(tap)
        except ConfigurationError as exc:
            errors.append(exc)
    return taps, errors
