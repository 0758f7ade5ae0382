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
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_logtap.core.eventtime import TimeFormat
from airflow_provider_logtap.core.partitions import PartitionTemplate
from airflow_provider_logtap.core.ranges import EndSpec, StartSpec, _check_topic, parse_timestamp_ms
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.hdfs import check_partition_prefix
from airflow_provider_logtap.taps import HdfsEventTimeTarget, Tap, Target
from airflow_provider_logtap.targets import relocated

FROM_KINDS = ("earliest", "offsets", "timestamp")
TO_KINDS = ("latest", "offsets", "timestamp", "committed")
#: The form's defaults (the DAG's ``Param`` s derive from these): a replay only writes once asked to.
DEFAULTS: Mapping[str, Any] = {"from": "earliest", "to": "latest", "dry_run": True, "target_name": None}


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

    @property
    def ends_at_committed(self) -> bool:
        return self.end is None


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
    name = params.get("tap")
    if name not in by_name:
        raise ConfigurationError(f"tap must be one of {sorted(by_name)}. Got {name!r}")
    tap = by_name[name]
    from_kind, to_kind = params.get("from", DEFAULTS["from"]), params.get("to", DEFAULTS["to"])
    if from_kind not in FROM_KINDS:
        raise ConfigurationError(f"from must be one of {set(FROM_KINDS)}. Got {from_kind!r}")
    if to_kind not in TO_KINDS:
        raise ConfigurationError(f"to must be one of {set(TO_KINDS)}. Got {to_kind!r}")
    start = StartSpec.parse(
        _spec_value(from_kind, params.get("from_offsets"), params.get("from_timestamp"), "from")
    )
    end = (
        None
        if to_kind == "committed"
        else EndSpec.parse(_spec_value(to_kind, params.get("to_offsets"), params.get("to_timestamp"), "to"))
    )
    target: Target = tap.target
    regex, date_format = params.get("timestamp_regex") or None, params.get("date_format") or None
    if regex or date_format:
        if not isinstance(target, HdfsEventTimeTarget):
            raise ConfigurationError(
                f"timestamp_regex/date_format apply to event-time targets; tap {tap.name!r} writes {target.type}"
            )
        target = replace(
            target,
            timestamp_regex=regex or target.timestamp_regex,
            date_format=date_format or target.date_format,
        )
        TimeFormat(regex=target.timestamp_regex, date_format=target.date_format)
    overwrite = tuple(check_partition_prefix(p) for p in params.get("overwrite_partitions") or ())
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
        name = params.get("target_name") or DEFAULTS["target_name"]
        target = relocated(target, name if name else name_from_run(run_id))
    topic = params.get("topic") or tap.topic
    _check_topic(topic)
    return ReplayRequest(
        tap=tap,
        topic=topic,
        start=start,
        end=end,
        target=target,
        overwrite=overwrite,
        dry_run=bool(params.get("dry_run", DEFAULTS["dry_run"])),
    )
