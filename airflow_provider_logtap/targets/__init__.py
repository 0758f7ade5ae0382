"""Target types and their registry.

A target type is one module of this package: its typed settings model (the single definition of each setting:
type, default, bounds, description), how it builds its sink, how a replay relocates it, and its docs (the
model's docstring and field descriptions, from which the settings reference, the operators' parameters and
the validation messages derive). Adding a type is that module plus its entry in :data:`REGISTRY`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.models import Settings, errors_text, validate
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.targets.base import TargetModel, webhdfs_client
from airflow_provider_logtap.targets.hdfs_event_time import HdfsEventTimeTarget
from airflow_provider_logtap.targets.hdfs_raw import HdfsRawTarget
from airflow_provider_logtap.targets.s3_archive import S3ArchiveTarget
from airflow_provider_logtap.targets.search import SearchTarget, search_client

#: Every target type, in the order the docs list them.
REGISTRY: tuple[type[TargetModel], ...] = (S3ArchiveTarget, HdfsRawTarget, HdfsEventTimeTarget, SearchTarget)
TARGETS: dict[str, type[TargetModel]] = {cls.tag(): cls for cls in REGISTRY}
TARGET_TYPES = tuple(TARGETS)

#: A replay's new target name: one safe path segment / index-name part.
REPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

Target = TargetModel
if TYPE_CHECKING:
    AnyTarget = TargetModel
else:  # the taps file's ``target:``: one of the registry's types, chosen by its ``type``
    AnyTarget = Annotated[Union[REGISTRY], Field(discriminator="type")]  # noqa: UP007


class _Holder(Settings):
    target: AnyTarget


__all__ = [
    "REGISTRY",
    "REPLAY_NAME",
    "TARGETS",
    "TARGET_TYPES",
    "AnyTarget",
    "HdfsEventTimeTarget",
    "HdfsRawTarget",
    "S3ArchiveTarget",
    "SearchTarget",
    "Target",
    "TargetModel",
    "build_sink",
    "check_replay_name",
    "relocated",
    "search_client",
    "target_from_dict",
    "target_to_dict",
    "webhdfs_client",
]


def target_to_dict(target: TargetModel) -> dict[str, Any]:
    """The target as JSON-ready data (XCom), ``type`` included."""
    return target.model_dump(mode="json")


def target_from_dict(data: Mapping[str, Any]) -> TargetModel:
    """A target from :func:`target_to_dict`'s data, validated; one ``ConfigurationError`` lists every error."""
    holder, errors = validate(_Holder, {"target": dict(data)})
    if errors:
        raise ConfigurationError(f"invalid target: {errors_text(errors)}")
    return holder.target  # type: ignore[no-any-return]


def relocated(target: TargetModel, name: str) -> TargetModel:
    """The same kind of target under a replay's new ``name``, inside the tap's own location: S3
    ``<prefix>/replays/<name>``, HDFS ``<base_path>/_replays/<name>``, search indices
    ``<prefix>.replay-<name>-*`` (outside the live ``<prefix>-*``). ``name`` is one safe segment, so it cannot
    escape the tap's base."""
    return target.relocated(check_replay_name(name))


def check_replay_name(name: str) -> str:
    """``name`` if it is a replay target name (:data:`REPLAY_NAME`), else the error."""
    if not isinstance(name, str) or not REPLAY_NAME.fullmatch(name):
        raise ConfigurationError(
            f"target_name must be 1-64 letters, digits, '_' or '-' (starting with a letter or digit). Got {name!r}"
        )
    return name


def build_sink(target: TargetModel, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
    """The sink of ``target``; for an event-time target, ``only_partitions`` rebuilds those partitions in
    place (see the replay's partition overwrite)."""
    return target.build_sink(run=run, only_partitions=only_partitions)
