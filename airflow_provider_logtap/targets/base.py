"""What every target type is: a typed settings model that builds its sink and relocates itself for a replay.

A target type is one module of this package (its model, its sink, its relocation, its docs) plus one entry in
the registry of :mod:`airflow_provider_logtap.targets`. Settings that several types share are declared once
here, as mixins.
"""

from __future__ import annotations

import builtins
import inspect
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from airflow_provider_logtap.core import compression as codecs
from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.eventtime import NAMED_FORMATS, TimeFormat, zone_of
from airflow_provider_logtap.models import Settings, build, checked, setting
from airflow_provider_logtap.sinks.base import Sink

Self = TypeVar("Self", bound="TargetModel")

#: An absolute HDFS directory, normalised; never ``/`` or one with ``..``.
BasePath = Annotated[str, checked(naming.clean_base)]
Compression = Annotated[str, checked(codecs.check)]
Zone = Annotated[str, checked(zone_of)]
Ratio = Annotated[float, Field(ge=0, le=1)]


class TargetModel(Settings):
    """Base of the target types (``type`` is each one's tag)."""

    type: str
    #: The load operator of this type (a ``KafkaRangeLoadOperator`` subclass naming it as ``target_model``),
    #: by import path: what a tap DAG's load step is.
    operator: ClassVar[str] = "airflow_provider_logtap.operators.target.KafkaToTargetOperator"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "type" in inspect.get_annotations(cls):
            cls.kind_label = f"{cls.tag()} target"

    @classmethod
    def tag(cls) -> str:
        """The type's name in the taps file (``type: s3_archive``)."""
        default = cls.model_fields["type"].default if "type" in cls.model_fields else None
        return str(default)

    @property
    def asset_uri(self) -> str:
        """The Airflow asset of this target (each tap's load task emits ``<asset_uri>/<topic>``)."""
        raise NotImplementedError

    def build_sink(self, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
        """The sink writing into this target, with its Airflow hook's client (``run``: who writes)."""
        raise NotImplementedError

    def relocated(self: Self, name: str) -> Self:
        """The same target under a replay's new ``name``, inside this target's own location."""
        raise NotImplementedError

    def replaced(self: Self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like the original."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @classmethod
    def of(cls: builtins.type[Self], owner: str = "", **settings: Any) -> Self:
        """An instance from keyword settings, or one ``ConfigurationError`` listing every invalid one."""
        return build(cls, settings, owner=owner or cls.kind_label)  # type: ignore[no-any-return]


class Compressed(Settings):
    """How files or objects are compressed (a target may override the default)."""

    compression: Compression = setting("none", description="none, gzip or zstd.")


class Codec(Compressed):
    """Compression with a level."""

    compression_level: int | None = setting(
        None,
        description="The codec's level: gzip 0-3 run on ISA-L (default 2, fast), 4-9 on zlib (smaller, "
        "slower); zstd 1-22 (default 3). null: the codec's default.",
    )

    @field_validator("compression_level")
    @classmethod
    def _level(cls, level: int | None, info: ValidationInfo) -> int | None:
        if level is not None and "compression" in info.data:
            codecs.new_compressor(info.data["compression"], level)
        return level


class HdfsTarget(TargetModel):
    """A target in HDFS, reached through WebHDFS; a replay writes under ``<base_path>/_replays/<name>``."""

    base_path: BasePath = setting(
        description="The absolute HDFS directory of this copy.", templated=True, example="/data/weblogs/raw"
    )
    webhdfs_conn_id: str = setting(
        "webhdfs_default", description="The Airflow WebHDFS connection (apache-hdfs provider's WebHDFSHook)."
    )
    proxy_user: str | None = setting(
        None, description="The HDFS user to act as (WebHDFSHook's proxy_user); the connection's user if null."
    )

    @property
    def asset_uri(self) -> str:
        return f"hdfs://{self.webhdfs_conn_id}{naming.clean_base(self.base_path)}"

    def client(self) -> Any:
        return webhdfs_client(self.webhdfs_conn_id, self.proxy_user)

    def relocated(self: Self, name: str) -> Self:
        base = naming.clean_base(self.base_path)  # type: ignore[attr-defined]
        return self.replaced(base_path=f"{base}/_replays/{name}")


def _date_format(date_format: str) -> None:
    TimeFormat(date_format=date_format)


class EventTime(Settings):
    """How a line's own time is read (shared by the event-time and search targets)."""

    date_format: Annotated[str, checked(_date_format)] = setting(
        "apache",
        description="How the timestamp is read: "
        + ", ".join(NAMED_FORMATS)
        + " or a strptime format like '%Y-%m-%d %H:%M:%S'.",
        templated=True,
        example="iso8601",
    )
    assume_zone: Zone = setting(
        "UTC",
        description="The zone of timestamps that carry none: UTC, an IANA name like Europe/Berlin, or +05:30.",
    )


class BadLines(Settings):
    """The share of bad lines a load tolerates (a wrong regex must fail loudly, not fill the dead letters)."""

    max_bad_ratio: Ratio | None = setting(
        0.05,
        description="The largest share of a range's lines that may be bad (no readable event time, or not "
        "parseable) before the load fails having written nothing; bad lines under it go to the dead letters "
        "with their reason. null: any share.",
    )


def webhdfs_client(conn_id: str, proxy_user: str | None = None) -> Any:
    """An ``hdfs`` client of a WebHDFS connection, through the apache-hdfs provider's hook, with bounded
    timeouts and retries (:func:`~airflow_provider_logtap.sinks.hdfs.with_retries`). The connection's extra
    may set ``retries`` (5), ``retry_backoff`` (0.5 s, doubled each retry) and ``timeout`` (120 s to read an
    answer); the hook itself ignores them."""
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

    from airflow_provider_logtap.sinks.hdfs import with_retries

    hook = WebHDFSHook(webhdfs_conn_id=conn_id, proxy_user=proxy_user)
    extra = hook.get_connection(conn_id).extra_dejson
    settings = {"retries": int, "retry_backoff": float, "timeout": float}
    given = {k: cast(v) for k, cast in settings.items() if (v := extra.get(k)) is not None}
    if "retry_backoff" in given:
        given["backoff"] = given.pop("retry_backoff")
    return with_retries(hook.get_conn(), **given)
