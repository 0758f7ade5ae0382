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

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_provider_logtap.core import compression as codecs
from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.ranges import INITIAL, ON_DATA_LOSS, _check_topic
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES

TAPS_FILE_ENV = "LOGTAP_TAPS_FILE"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
TARGET_TYPES = ("s3_archive",)
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class TapConfigError(ConfigurationError):
    """A tap's configuration is invalid."""

    def __init__(self, tap: str, field_name: str, problem: str, fix: str) -> None:
        self.tap, self.field, self.problem, self.fix = tap, field_name, problem, fix
        super().__init__(f"tap {tap!r}: field {field_name!r} {problem}. Fix: {fix}")


@dataclass(frozen=True, kw_only=True)
class S3ArchiveTarget:
    """The byte-exact S3 archive (see :class:`~airflow_provider_logtap.sinks.s3.S3ArchiveSink`)."""

    bucket: str
    prefix: str = ""
    aws_conn_id: str = "aws_default"
    compression: str = "gzip"
    compression_level: int | None = None
    max_records_per_object: int | None = None
    max_bytes_per_object: int | None = DEFAULT_MAX_BYTES
    type: str = "s3_archive"


Target = S3ArchiveTarget


@dataclass(frozen=True, kw_only=True)
class Tap:
    """One tap. ``group_id`` defaults to ``logtap-<name>``; ``max_records_per_run`` bounds each partition's range."""

    name: str
    topic: str
    target: Target
    group_id: str = ""
    kafka_conn_id: str = "kafka_default"
    schedule: str | None = "*/15 * * * *"
    start_date: datetime = DEFAULT_START
    initial: str = "earliest"
    on_data_loss: str = "fail"
    max_records_per_run: int | None = None
    retries: int = 2
    retry_delay_seconds: int = 30
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dag_id(self) -> str:
        return f"logtap_{self.name}"

    @property
    def group(self) -> str:
        return self.group_id or f"logtap-{self.name}"


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


def _positive(tap: str, key: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise TapConfigError(
            tap, key, f"must be a positive integer, not {value!r}", f"set {key} to 1 or more, or remove it"
        )
    return value


def _target(tap: str, raw: Any) -> Target:
    if not isinstance(raw, Mapping):
        raise TapConfigError(
            tap, "target", "must be a mapping with a type", f"add target: {{type: {TARGET_TYPES[0]}, ...}}"
        )
    kind = raw.get("type")
    if kind not in TARGET_TYPES:
        raise TapConfigError(
            tap,
            "target.type",
            f"must be one of {set(TARGET_TYPES)}, not {kind!r}",
            f"set target.type to one of {', '.join(TARGET_TYPES)}",
        )
    known = {
        "type",
        "bucket",
        "prefix",
        "aws_conn_id",
        "compression",
        "compression_level",
        "max_records_per_object",
        "max_bytes_per_object",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TapConfigError(
            tap,
            f"target.{unknown[0]}",
            "is not a setting of an s3_archive target",
            f"remove it; the settings are {', '.join(sorted(known))}",
        )
    t = f"{tap}"
    bucket = _get(t, raw, "bucket", str, fix="set target.bucket to the S3 bucket name")
    if not bucket or "/" in bucket:
        raise TapConfigError(
            tap, "target.bucket", f"is not a bucket name: {bucket!r}", "use the bare bucket name"
        )
    prefix = _get(t, raw, "prefix", str, "")
    try:
        naming.clean_prefix(prefix, "target.prefix")
    except ConfigurationError as exc:
        raise TapConfigError(tap, "target.prefix", str(exc), "use a relative path like raw/weblogs") from None
    comp = _get(t, raw, "compression", str, "gzip")
    if comp not in codecs.SUFFIXES:
        raise TapConfigError(
            tap,
            "target.compression",
            f"must be one of {set(codecs.SUFFIXES)}, not {comp!r}",
            "use gzip (default), zstd or none",
        )
    return S3ArchiveTarget(
        bucket=bucket,
        prefix=prefix,
        aws_conn_id=_get(t, raw, "aws_conn_id", str, "aws_default"),
        compression=comp,
        compression_level=_get(t, raw, "compression_level", int, None),
        max_records_per_object=_positive(
            tap, "target.max_records_per_object", _get(t, raw, "max_records_per_object", int, None)
        ),
        max_bytes_per_object=_positive(
            tap, "target.max_bytes_per_object", _get(t, raw, "max_bytes_per_object", int, DEFAULT_MAX_BYTES)
        ),
    )


TAP_KEYS = {
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
    "retries",
    "retry_delay_seconds",
    "tags",
}


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
    initial = _get(name, merged, "initial", str, "earliest")
    if initial not in INITIAL:
        raise TapConfigError(
            name,
            "initial",
            f"must be one of {set(INITIAL)}, not {initial!r}",
            "earliest loads the retained log, latest only new records",
        )
    on_loss = _get(name, merged, "on_data_loss", str, "fail")
    if on_loss not in ON_DATA_LOSS:
        raise TapConfigError(
            name,
            "on_data_loss",
            f"must be one of {set(ON_DATA_LOSS)}, not {on_loss!r}",
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
    group_id = _get(name, merged, "group_id", str, "")
    tags = _get(name, merged, "tags", list, [])
    return Tap(
        name=name,
        topic=topic,
        target=_target(name, merged.get("target")),
        group_id=group_id,
        kafka_conn_id=_get(name, merged, "kafka_conn_id", str, "kafka_default"),
        schedule=_get(name, merged, "schedule", str, "*/15 * * * *"),
        start_date=start_date or DEFAULT_START,
        initial=initial,
        on_data_loss=on_loss,
        max_records_per_run=_positive(
            name, "max_records_per_run", _get(name, merged, "max_records_per_run", int, None)
        ),
        retries=_get(name, merged, "retries", int, 2),
        retry_delay_seconds=_get(name, merged, "retry_delay_seconds", int, 30),
        tags=tuple(str(t) for t in tags),
    )


def taps_file(default: str | Path) -> Path:
    """The taps file to load: ``$LOGTAP_TAPS_FILE`` if set, else ``default`` (usually beside the DAG file)."""
    return Path(os.environ.get(TAPS_FILE_ENV) or default)


def load_taps(path: str | Path) -> list[Tap]:
    """Every tap of a configuration file; duplicate names and groups are errors."""
    import yaml

    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the taps file {file}: {exc.strerror}. Set {TAPS_FILE_ENV} to its path."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"the taps file {file} is not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("taps"), list):
        raise ConfigurationError(f"the taps file {file} must hold a mapping with a list under 'taps'")
    defaults = raw.get("defaults") or {}
    taps = [parse_tap(t, defaults, i) for i, t in enumerate(raw["taps"])]
    for attr, what in (("name", "name"), ("group", "consumer group")):
        seen: dict[str, str] = {}
        for tap in taps:
            key = getattr(tap, attr)
            if key in seen:
                raise TapConfigError(
                    tap.name,
                    "group_id" if attr == "group" else "name",
                    f"repeats the {what} {key!r} of tap {seen[key]!r}",
                    "give every tap its own name and consumer group",
                )
            seen[key] = tap.name
    return taps
