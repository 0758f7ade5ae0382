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

Validation names the tap, the field and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_logtap.core import compression as codecs
from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.eventtime import TimeFormat, zone_of
from airflow_provider_logtap.core.partitions import DEFAULT_TEMPLATE, check_template
from airflow_provider_logtap.core.ranges import INITIAL, ON_DATA_LOSS, _check_topic
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES

TAPS_FILE_ENV = "LOGTAP_TAPS_FILE"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class TapConfigError(ConfigurationError):
    """A tap's configuration is invalid."""

    def __init__(self, tap: str, field_name: str, problem: str, fix: str) -> None:
        self.tap, self.field, self.problem, self.fix = tap, field_name, problem, fix
        super().__init__(f"tap {tap!r}: field {field_name!r} {problem}. Fix: {fix}")


class TapsFileError(ConfigurationError):
    """Some taps of the taps file are invalid (the others still load); one line per invalid tap."""

    def __init__(self, errors: list[ConfigurationError]) -> None:
        self.errors = errors
        lines = "\n".join(f"- {e}" for e in errors)
        super().__init__(
            f"{len(errors)} invalid tap(s) in the taps file; the other taps load normally:\n{lines}"
        )


@dataclass(frozen=True, kw_only=True)
class S3ArchiveTarget:
    """The byte-exact S3 archive (see :class:`~airflow_provider_logtap.sinks.s3.S3ArchiveSink`)."""

    type: ClassVar[str] = "s3_archive"
    bucket: str
    prefix: str = ""
    aws_conn_id: str = "aws_default"
    compression: str = "gzip"
    compression_level: int | None = None
    max_records_per_object: int | None = None
    max_bytes_per_object: int | None = DEFAULT_MAX_BYTES

    def checks(self) -> dict[str, Callable[[], object]]:
        return {
            "bucket": lambda: _bucket(self.bucket),
            "prefix": lambda: naming.clean_prefix(self.prefix, "target.prefix"),
            "compression": lambda: codecs.check(self.compression),
            "max_records_per_object": lambda: _positive(self.max_records_per_object),
            "max_bytes_per_object": lambda: _positive(self.max_bytes_per_object),
        }

    @property
    def asset_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True, kw_only=True)
class HdfsRawTarget:
    """The raw HDFS copy (see :class:`~airflow_provider_logtap.sinks.hdfs.HdfsRawSink`)."""

    type: ClassVar[str] = "hdfs_raw"
    base_path: str
    webhdfs_conn_id: str = "webhdfs_default"
    proxy_user: str | None = None
    compression: str = "none"
    compression_level: int | None = None
    max_records_per_file: int | None = None
    max_bytes_per_file: int | None = DEFAULT_MAX_BYTES

    def checks(self) -> dict[str, Callable[[], object]]:
        return {
            "base_path": lambda: naming.clean_base(self.base_path),
            "compression": lambda: codecs.check(self.compression),
            "max_records_per_file": lambda: _positive(self.max_records_per_file),
            "max_bytes_per_file": lambda: _positive(self.max_bytes_per_file),
        }

    @property
    def asset_uri(self) -> str:
        return f"hdfs://{self.webhdfs_conn_id}{naming.clean_base(self.base_path)}"


@dataclass(frozen=True, kw_only=True)
class HdfsEventTimeTarget:
    """HDFS partitioned by each line's event time (see :class:`~airflow_provider_logtap.sinks.hdfs.HdfsEventTimeSink`).

    ``timestamp_regex`` + ``date_format`` find and read the time (Apache's ``[28/Oct/2015:14:03:07 +0000]`` by
    default; ``iso8601``, ``epoch_s``, ``epoch_ms`` or a strptime format); ``partition_template`` and
    ``partition_zone`` make the directory (``dt=%Y-%m-%d/hour=%H`` in UTC by default).
    """

    type: ClassVar[str] = "hdfs_event_time"
    base_path: str
    webhdfs_conn_id: str = "webhdfs_default"
    proxy_user: str | None = None
    compression: str = "none"
    timestamp_regex: str = ""  # the date_format's own
    date_format: str = "apache"
    assume_zone: str = "UTC"
    partition_template: str = DEFAULT_TEMPLATE
    partition_zone: str = "UTC"
    max_bad_ratio: float | None = 0.05

    def checks(self) -> dict[str, Callable[[], object]]:
        return {
            "base_path": lambda: naming.clean_base(self.base_path),
            "compression": lambda: codecs.check(self.compression),
            "timestamp_regex": lambda: TimeFormat(regex=self.timestamp_regex),
            "date_format": lambda: TimeFormat(regex=self.timestamp_regex, date_format=self.date_format),
            "assume_zone": lambda: zone_of(self.assume_zone),
            "partition_template": lambda: check_template(self.partition_template),
            "partition_zone": lambda: zone_of(self.partition_zone),
            "max_bad_ratio": lambda: _ratio(self.max_bad_ratio),
        }

    @property
    def time_format(self) -> TimeFormat:
        return TimeFormat(
            regex=self.timestamp_regex, date_format=self.date_format, assume_zone=self.assume_zone
        )

    @property
    def asset_uri(self) -> str:
        return f"hdfs://{self.webhdfs_conn_id}{naming.clean_base(self.base_path)}"


@dataclass(frozen=True, kw_only=True)
class SearchTarget:
    """Parsed, GeoIP-enriched documents in Elasticsearch or OpenSearch (see
    :class:`~airflow_provider_logtap.sinks.search.SearchSink`); the connection's type chooses which.

    ``geoip_database`` is a MaxMind DB file (GeoLite2/DB-IP City, and an ASN file after a ``:``), else
    ``$LOGTAP_GEOIP_DB``; without one, documents get no geo fields.
    """

    type: ClassVar[str] = "search"
    search_conn_id: str = "opensearch_default"
    index_prefix: str = "logtap-weblogs"
    index_date_format: str = "%Y.%m.%d"
    log_format: str = "auto"
    date_format: str = "apache"
    assume_zone: str = "UTC"
    geoip_database: str | None = None
    max_bad_ratio: float | None = 0.05
    bulk_docs: int | None = 5000

    def checks(self) -> dict[str, Callable[[], object]]:
        from airflow_provider_logtap.core.accesslog import LOG_FORMATS
        from airflow_provider_logtap.errors import one_of
        from airflow_provider_logtap.sinks.search import check_index_prefix

        return {
            "index_prefix": lambda: check_index_prefix(self.index_prefix),
            "log_format": lambda: one_of("log_format", self.log_format, LOG_FORMATS),
            "date_format": lambda: TimeFormat(date_format=self.date_format),
            "assume_zone": lambda: zone_of(self.assume_zone),
            "max_bad_ratio": lambda: _ratio(self.max_bad_ratio),
            "bulk_docs": lambda: _positive(self.bulk_docs),
        }

    @property
    def asset_uri(self) -> str:
        return f"search://{self.search_conn_id}/{self.index_prefix}"


Target = S3ArchiveTarget | HdfsRawTarget | HdfsEventTimeTarget | SearchTarget
TARGETS: dict[
    str, type[S3ArchiveTarget] | type[HdfsRawTarget] | type[HdfsEventTimeTarget] | type[SearchTarget]
] = {cls.type: cls for cls in (S3ArchiveTarget, HdfsRawTarget, HdfsEventTimeTarget, SearchTarget)}
TARGET_TYPES = tuple(TARGETS)


def _bucket(name: str) -> str:
    if not name or "/" in name:
        raise ConfigurationError(f"is not a bucket name: {name!r} (use the bare bucket name)")
    return name


def _positive(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ConfigurationError(f"must be a positive integer or absent, not {value!r}")
    return value


def _ratio(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise ConfigurationError(f"must be between 0 and 1 (a share of lines) or absent, not {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Tap:
    """One tap.

    ``mode`` is ``group`` (each run loads from the tap group's committed offsets to the high-water mark) or
    ``interval`` (each run loads its data interval's records by Kafka timestamp; backfills and clears reload
    exactly the same offsets). ``group_id`` defaults to ``logtap-<name>``; ``max_records_per_run`` bounds each
    partition's range in group mode. In interval mode, ``max_disorder_seconds`` is how far a record's Kafka
    timestamp may be from its neighbours' and still be loaded with the interval of its own time (at most half
    the schedule's interval; the completeness sensor waits at least that long after an interval's end), and
    ``max_out_of_place_ratio`` fails a load whose share of records stamped outside its interval is larger.
    """

    name: str
    topic: str
    target: Target
    group_id: str = ""
    kafka_conn_id: str = "kafka_default"
    schedule: str | None = "*/15 * * * *"
    start_date: datetime = DEFAULT_START
    mode: str = "group"
    initial: str = "earliest"
    on_data_loss: str = "fail"
    max_records_per_run: int | None = None
    catchup: bool = False
    sensor_mode: str = "deferrable"
    min_backlog: int = 1
    max_backlog_age_seconds: int | None = None
    wait_timeout_seconds: int = 600
    lateness_seconds: int = 0
    max_disorder_seconds: int = 300
    max_out_of_place_ratio: float | None = None
    idle_grace_seconds: int | None = 600
    completeness_timeout_seconds: int = 7200
    retention_headroom: int = 100_000
    retention_max_share: float = 0.8
    retention_fail: bool = False
    retries: int = 2
    retry_delay_seconds: int = 30
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dag_id(self) -> str:
        return f"logtap_{self.name}"

    @property
    def group(self) -> str:
        return self.group_id or f"logtap-{self.name}"


_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "float | None": (int, float, type(None)),
}


def _get(
    tap: str,
    raw: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any = ...,
    fix: str = "",
) -> Any:
    if key not in raw or raw[key] is None:
        if default is ...:
            raise TapConfigError(tap, key, "is required", fix or f"add {key}: <value> to the tap")
        return default
    value = raw[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TapConfigError(
            tap,
            key,
            f"must be {names}, not {type(value).__name__} {value!r}",
            fix or f"set {key} to a {names}",
        )
    return value


def _choice(
    tap: str, raw: Mapping[str, Any], key: str, choices: Sequence[str], default: str, fix: str
) -> str:
    value: str = _get(tap, raw, key, str, default)
    if value not in choices:
        raise TapConfigError(
            tap, key, f"must be one of {{{', '.join(map(repr, choices))}}}. Got {value!r}", fix
        )
    return value


def _target(tap: str, raw: Any) -> Target:
    if not isinstance(raw, Mapping):
        raise TapConfigError(
            tap, "target", "must be a mapping with a type", f"add target: {{type: {TARGET_TYPES[0]}, ...}}"
        )
    kind = raw.get("type")
    if kind not in TARGETS:
        raise TapConfigError(
            tap,
            "target.type",
            f"must be one of {{{', '.join(map(repr, TARGET_TYPES))}}}. Got {kind!r}",
            f"set target.type to one of {', '.join(TARGET_TYPES)}",
        )
    cls = TARGETS[kind]
    settings = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(settings) - {"type"})
    if unknown:
        raise TapConfigError(
            tap,
            f"target.{unknown[0]}",
            f"is not a setting of a {kind} target",
            f"remove it; the settings are {', '.join(sorted(settings))}",
        )
    values: dict[str, Any] = {}
    for name, spec in settings.items():
        required = spec.default is MISSING and spec.default_factory is MISSING
        if name not in raw or raw[name] is None:
            if required:
                raise TapConfigError(tap, f"target.{name}", "is required", f"add target.{name} to the tap")
            continue
        value, allowed = raw[name], _KINDS[str(spec.type)]
        if isinstance(value, bool) or not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise TapConfigError(
                tap,
                f"target.{name}",
                f"must be {names}, not {type(value).__name__} {value!r}",
                f"set target.{name} to a {names}",
            )
        values[name] = value
    target = cls(**values)
    for name, check in target.checks().items():
        try:
            check()
        except ConfigurationError as exc:
            raise TapConfigError(
                tap,
                f"target.{name}",
                str(exc).removeprefix("is ").rstrip("."),
                f"see the {kind} settings in the README (default: {settings[name].default!r})",
            ) from None
    return target


MODES = ("group", "interval")
SENSOR_MODES = ("deferrable", "reschedule", "poke")
SENSOR_KEYS: dict[str, type | tuple[type, ...]] = {
    "sensor_mode": str,
    "min_backlog": int,
    "max_backlog_age_seconds": int,
    "wait_timeout_seconds": int,
    "lateness_seconds": int,
    "idle_grace_seconds": int,
    "completeness_timeout_seconds": int,
    "retention_headroom": int,
    "retention_max_share": (int, float),
    "retention_fail": bool,
}
TAP_KEYS = {
    *SENSOR_KEYS,
    "mode",
    "catchup",
    "name",
    "topic",
    "target",
    "group_id",
    "kafka_conn_id",
    "schedule",
    "start_date",
    "initial",
    "on_data_loss",
    "max_records_per_run",
    "max_disorder_seconds",
    "max_out_of_place_ratio",
    "retries",
    "retry_delay_seconds",
    "tags",
}


def _schedule(tap: str, raw: Mapping[str, Any]) -> str | None:
    """The tap's schedule: a cron expression or preset; ``null`` for none (runs only when triggered)."""
    if "schedule" not in raw:
        return "*/15 * * * *"
    if raw["schedule"] is None:
        return None
    return str(_get(tap, raw, "schedule", str, fix='set schedule to a cron like "*/15 * * * *", or null'))


def _positive_setting(tap: str, key: str, raw: Mapping[str, Any]) -> int | None:
    try:
        return _positive(_get(tap, raw, key, int, None))
    except ConfigurationError as exc:
        raise TapConfigError(tap, key, str(exc), f"set {key} to 1 or more, or remove it") from None


def _disorder(tap: str, raw: Mapping[str, Any], schedule: str | None) -> int:
    """``max_disorder_seconds``: 0 or more, and at most half the shortest interval of an interval tap's schedule."""
    from airflow_provider_logtap.core.intervals import check_disorder, shortest_interval_ms

    value = _get(tap, raw, "max_disorder_seconds", int, Tap.max_disorder_seconds)
    shortest = None if schedule is None else shortest_interval_ms(schedule)
    try:
        return check_disorder(value * 1000, shortest, "max_disorder_seconds") // 1000
    except ConfigurationError as exc:
        raise TapConfigError(
            tap,
            "max_disorder_seconds",
            str(exc).removeprefix("max_disorder_seconds ").rstrip("."),
            "e.g. 300 (5 minutes)",
        ) from None


def parse_tap(raw: Any, defaults: Mapping[str, Any] | None = None, index: int = 0) -> Tap:
    """One tap from its mapping (``defaults`` merged under it)."""
    if not isinstance(raw, Mapping):
        raise TapConfigError(
            f"#{index + 1}",
            "(tap)",
            f"must be a mapping, not {raw!r}",
            "write each tap as name: ..., topic: ..., target: {...}",
        )
    merged = {**(defaults or {}), **raw}
    name = merged.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise TapConfigError(
            str(name if name else f"#{index + 1}"),
            "name",
            f"must be letters, digits, '_', '.', '-' (not starting with '.' or '-'), not {name!r}",
            "give the tap a name like weblogs_archive",
        )
    unknown = sorted(set(merged) - TAP_KEYS)
    if unknown:
        raise TapConfigError(
            name,
            unknown[0],
            "is not a tap setting",
            f"remove it; the settings are {', '.join(sorted(TAP_KEYS))}",
        )
    topic = _get(name, merged, "topic", str, fix="set topic to the Kafka topic the tap reads")
    try:
        _check_topic(topic)
    except ConfigurationError as exc:
        raise TapConfigError(name, "topic", str(exc), "use the topic's exact name") from None
    mode = _choice(
        name,
        merged,
        "mode",
        MODES,
        "group",
        "group loads from the committed offsets; interval loads each run's data interval by Kafka time",
    )
    if mode == "interval" and merged.get("schedule", "") is None:
        raise TapConfigError(
            name,
            "schedule",
            "must be a cron schedule in interval mode (each run loads its data interval)",
            'set schedule to e.g. "@hourly" or "0 * * * *"',
        )
    _choice(  # validated here; set with the other sensor settings below
        name,
        merged,
        "sensor_mode",
        SENSOR_MODES,
        "deferrable",
        "deferrable waits in the triggerer (no worker slot; needs `airflow triggerer`), reschedule frees the "
        "slot between checks, poke holds it",
    )
    initial = _choice(
        name,
        merged,
        "initial",
        INITIAL,
        "earliest",
        "earliest loads the retained log, latest only new records, fail stops while the group has no committed "
        "offsets",
    )
    on_loss = _choice(
        name,
        merged,
        "on_data_loss",
        ON_DATA_LOSS,
        "fail",
        "fail (default) stops on data deleted by retention; log_start records and goes on",
    )
    start_date = _get(name, merged, "start_date", (str, datetime), None)
    if isinstance(start_date, str):
        try:
            start_date = datetime.fromisoformat(start_date.replace("Z", "+00:00"))
        except ValueError:
            raise TapConfigError(
                name,
                "start_date",
                f"is not an ISO-8601 date: {start_date!r}",
                "write it like 2026-01-01 or 2026-01-01T00:00:00Z",
            ) from None
    if isinstance(start_date, datetime) and start_date.tzinfo is None:
        start_date = start_date.replace(tzinfo=timezone.utc)
    share = _get(name, merged, "retention_max_share", (int, float), Tap.retention_max_share)
    if not 0 < share <= 1:
        raise TapConfigError(
            name,
            "retention_max_share",
            f"must be in (0, 1], not {share!r}",
            "0.8 warns once the oldest unloaded record has used up 80% of the topic's retention.ms",
        )
    group_id = _get(name, merged, "group_id", str, "")
    tags = _get(name, merged, "tags", list, [])
    schedule = _schedule(name, merged)
    disorder = _disorder(name, merged, schedule if mode == "interval" else None)
    try:
        out_of_place = _ratio(_get(name, merged, "max_out_of_place_ratio", (int, float), None))
    except ConfigurationError as exc:
        raise TapConfigError(
            name, "max_out_of_place_ratio", str(exc), "e.g. 0.01 fails a load with over 1% out of place"
        ) from None
    return Tap(
        name=name,
        topic=topic,
        target=_target(name, merged.get("target")),
        group_id=group_id,
        kafka_conn_id=_get(name, merged, "kafka_conn_id", str, "kafka_default"),
        schedule=schedule,
        start_date=start_date or DEFAULT_START,
        mode=mode,
        catchup=_get(name, merged, "catchup", bool, False),
        **{key: _get(name, merged, key, kind, getattr(Tap, key)) for key, kind in SENSOR_KEYS.items()},
        initial=initial,
        on_data_loss=on_loss,
        max_records_per_run=_positive_setting(name, "max_records_per_run", merged),
        max_disorder_seconds=disorder,
        max_out_of_place_ratio=out_of_place,
        retries=_get(name, merged, "retries", int, 2),
        retry_delay_seconds=_get(name, merged, "retry_delay_seconds", int, 30),
        tags=tuple(str(t) for t in tags),
    )


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
                    raise TapConfigError(
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
