"""Targets → sinks: the one place that builds a sink (with its Airflow hook) from a target's settings.

The load operators build their sink here; the replay DAG relocates a tap's target (a new S3 prefix, HDFS path,
or index) or narrows it to chosen event-time partitions, then builds it here too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from typing import Any

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.core.eventtime import EventTimeReader, TimeFormat
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.archive import ArchiveFormat
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.sinks.hdfs import HdfsEventTimeSink, HdfsRawSink
from airflow_provider_logtap.sinks.s3 import S3ArchiveSink
from airflow_provider_logtap.sinks.search import SearchClient, SearchSink, replay_prefix
from airflow_provider_logtap.taps import (
    TARGETS,
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    Target,
)

REPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def target_to_dict(target: Target) -> dict[str, Any]:
    return {"type": target.type, **asdict(target)}


def target_from_dict(data: dict[str, Any]) -> Target:
    settings = dict(data)
    kind = settings.pop("type", None)
    if kind not in TARGETS:
        raise ConfigurationError(f"target type must be one of {set(TARGETS)}. Got {kind!r}")
    return TARGETS[kind](**settings)


def relocated(target: Target, name: str) -> Target:
    """The same kind of target under a new name, inside the tap's own location: S3 ``<prefix>/replays/<name>``,
    HDFS ``<base_path>/_replays/<name>``, search indices ``<prefix>.replay-<name>-*`` (outside the live
    ``<prefix>-*``). ``name`` is one safe
    segment, so it cannot escape the tap's base."""
    if not isinstance(name, str) or not REPLAY_NAME.match(name):
        raise ConfigurationError(
            f"target_name must be 1-64 letters, digits, '_' or '-' (starting with a letter or digit). Got {name!r}"
        )
    if isinstance(target, S3ArchiveTarget):
        return replace(
            target, prefix="/".join(p for p in (naming.clean_prefix(target.prefix), "replays", name) if p)
        )
    if isinstance(target, SearchTarget):
        return replace(target, index_prefix=replay_prefix(target.index_prefix, name))
    return replace(target, base_path=f"{naming.clean_base(target.base_path)}/_replays/{name}")


def build_sink(
    target: Target,
    *,
    run: str,
    only_partitions: tuple[str, ...] = (),
) -> Sink:
    """The sink of ``target``; for an event-time target, ``only_partitions`` rebuilds those partitions in
    place (see the replay's partition overwrite)."""
    if isinstance(target, S3ArchiveTarget):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3ArchiveSink(
            client=S3Hook(aws_conn_id=target.aws_conn_id).get_conn(),
            bucket=target.bucket,
            prefix=target.prefix,
            archive_format=ArchiveFormat(
                compression=target.compression,
                level=target.compression_level,
                max_records=target.max_records_per_object,
                max_bytes=target.max_bytes_per_object,
            ),
            run=run,
        )
    if isinstance(target, HdfsRawTarget):
        return HdfsRawSink(
            client=webhdfs_client(target.webhdfs_conn_id, target.proxy_user),
            base=target.base_path,
            archive_format=ArchiveFormat(
                compression=target.compression,
                level=target.compression_level,
                max_records=target.max_records_per_file,
                max_bytes=target.max_bytes_per_file,
            ),
        )
    if isinstance(target, HdfsEventTimeTarget):
        partitioner = EventTimePartitioner(
            EventTimeReader(target.time_format),
            PartitionTemplate(target.partition_template, target.partition_zone),
        )
        return HdfsEventTimeSink(
            client=webhdfs_client(target.webhdfs_conn_id, target.proxy_user),
            base=target.base_path,
            partitioner=partitioner,
            compression=target.compression,
            max_bad_ratio=target.max_bad_ratio,
            run=run,
            only_partitions=only_partitions,
        )
    if isinstance(target, SearchTarget):
        return SearchSink(
            client=search_client(target.search_conn_id),
            index_prefix=target.index_prefix,
            parser=AccessLogParser(
                log_format=target.log_format,
                time_format=TimeFormat(date_format=target.date_format, assume_zone=target.assume_zone),
                geoip=_geoip(target.geoip_database),
            ),
            index_date_format=target.index_date_format,
            max_bad_ratio=target.max_bad_ratio,
            bulk_docs=target.bulk_docs or 5000,
        )
    raise TypeError(f"no sink for target {target!r}")


def webhdfs_client(conn_id: str, proxy_user: str | None = None) -> Any:
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

    return WebHDFSHook(webhdfs_conn_id=conn_id, proxy_user=proxy_user).get_conn()


def _geoip(path: str | None) -> Any:
    """The GeoIP lookup of ``path`` (``a.mmdb:b.mmdb``), else of ``$LOGTAP_GEOIP_DB``, else none."""
    from airflow_provider_logtap.enrich.geoip import GeoIP, default_database_path

    paths = tuple(p for p in path.split(":") if p) if path else default_database_path()
    return GeoIP(paths).lookup if paths else None


class _Elasticsearch:
    def __init__(self, client: Any) -> None:
        self.client = client

    def bulk(self, body: bytes) -> dict[str, Any]:
        return dict(self.client.bulk(operations=body))

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.client.indices.put_index_template(name=name, **body)


class _OpenSearch:
    def __init__(self, client: Any) -> None:
        self.client = client

    def bulk(self, body: bytes) -> dict[str, Any]:
        return dict(self.client.bulk(body=body))

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.client.indices.put_index_template(name=name, body=body)


def search_client(conn_id: str) -> SearchClient:
    """An Elasticsearch or OpenSearch client, chosen by the connection's type (``elasticsearch`` through the
    elasticsearch provider's hook, ``opensearch`` through the opensearch provider's hook)."""
    from airflow_provider_logtap.compat import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "opensearch":
        from airflow.providers.opensearch.hooks.opensearch import OpenSearchHook

        return _OpenSearch(OpenSearchHook(open_search_conn_id=conn_id, log_query=False).client)
    if conn.conn_type == "elasticsearch":
        from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchPythonHook

        extra = conn.extra_dejson
        scheme = extra.get("scheme") or ("https" if extra.get("use_ssl") else "http")
        args: dict[str, Any] = dict(extra.get("es_conn_args") or {})
        if conn.login:
            args.setdefault("basic_auth", (conn.login, conn.password or ""))
        url = f"{scheme}://{conn.host}:{conn.port or 9200}"
        return _Elasticsearch(ElasticsearchPythonHook(hosts=[url], es_conn_args=args).get_conn)
    raise ConfigurationError(
        f"connection {conn_id!r} is of type {conn.conn_type!r}; a search target needs one of "
        "{'elasticsearch', 'opensearch'}"
    )
