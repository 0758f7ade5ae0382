"""The ``search`` target: parsed, GeoIP-enriched ECS documents in Elasticsearch or OpenSearch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import model_validator

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.accesslog import AccessLogParser, LogFormat
from airflow_provider_logtap.core.eventtime import TimeFormat
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.models import SettingError, checked, setting
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.sinks.search import (
    BULK_CONCURRENCY,
    DEAD_LETTER_SUFFIX,
    REPLAY_INFIX,
    SearchClient,
    TransientBulkError,
    check_index_prefix,
    index_names,
    replay_prefix,
)
from airflow_provider_logtap.targets.base import BadLines, EventTime, TargetModel


class SearchTarget(TargetModel, EventTime, BadLines):
    """Parsed, GeoIP-enriched ECS documents, ``_id`` = ``topic-partition-offset``, in daily indices
    ``<index_prefix>-YYYY.MM.DD`` of each line's own event time, all under the alias ``<index_prefix>``. Lines
    that do not parse, and documents the server refuses, go to ``<index_prefix>.dead-letter`` with the reason.
    The connection's type (``elasticsearch`` or ``opensearch``) chooses the client. A replay writes into
    ``<index_prefix>.replay-<name>-*``."""

    type: Literal["search"] = "search"
    operator: ClassVar[str] = "airflow_provider_logtap.operators.search.KafkaToSearchOperator"
    search_conn_id: str = setting(
        "opensearch_default",
        description="An Airflow elasticsearch or opensearch connection; its type chooses the client.",
    )
    index_prefix: Annotated[str, checked(check_index_prefix)] = setting(
        "logtap-weblogs",
        description="The indices' prefix: lower-case letters, digits, '-', '_', '.'.",
        templated=True,
    )
    index_date_format: str = setting("%Y.%m.%d", description="The daily indices' suffix (strftime).")
    log_format: LogFormat = setting(
        "auto", description="The access-log format; auto recognises combined, common and vhost_combined."
    )
    geoip_database: str | None = setting(
        None,
        description="MaxMind DB file(s), city.mmdb or city.mmdb:asn.mmdb (GeoLite2/DB-IP); null: "
        "$LOGTAP_GEOIP_DB, and without one documents get no geo fields.",
    )
    bulk_docs: int = setting(5000, description="Documents per bulk request.", ge=1)
    bulk_concurrency: int = setting(
        BULK_CONCURRENCY,
        description="Bulk requests in flight at once: a cluster indexes each request of a shard on one write "
        "thread, so more keep more of its cores busy (fewer for a cluster that answers 429).",
        ge=1,
    )

    @model_validator(mode="after")
    def _names(self) -> SearchTarget:
        """Every index name the target makes is one the servers accept (:func:`naming.check_index_name`): the
        dead letters' and the daily indices' of any event time (with what the date format writes)."""
        dead = index_names(self.index_prefix)["dead_letter"]
        _index_name("index_prefix", dead, "its dead-letter index")
        for day in _SAMPLE_DAYS:
            daily = f"{self.index_prefix}{_daily_suffix(day, self.index_date_format)}"
            _index_name("index_date_format", daily, f"the daily index of {day:%Y-%m-%d}")
        return self

    @property
    def asset_uri(self) -> str:
        return f"search://{self.search_conn_id}/{self.index_prefix}"

    def build_sink(self, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
        from airflow_provider_logtap.sinks.search import SearchSink

        return SearchSink(
            client=search_client(self.search_conn_id),
            index_prefix=self.index_prefix,
            parser=AccessLogParser(
                log_format=self.log_format,
                time_format=TimeFormat(date_format=self.date_format, assume_zone=self.assume_zone),
                geoip=_geoip(self.geoip_database),
            ),
            index_date_format=self.index_date_format,
            max_bad_ratio=self.max_bad_ratio,
            bulk_docs=self.bulk_docs,
            bulk_concurrency=self.bulk_concurrency,
        )

    def relocated(self, name: str) -> SearchTarget:
        prefix = f"{self.index_prefix}{REPLAY_INFIX}{name.lower()}"
        suffix = max(
            len(DEAD_LETTER_SUFFIX), *(len(_daily_suffix(d, self.index_date_format)) for d in _SAMPLE_DAYS)
        )
        over = len(prefix.encode()) + suffix - naming.INDEX_NAME_MAX_BYTES
        if over > 0:
            raise ConfigurationError(
                f"target_name must be at most {len(name) - over} characters for tap index_prefix "
                f"{self.index_prefix!r}: the replay's indices {prefix}-* must stay within "
                f"{naming.INDEX_NAME_MAX_BYTES} bytes. Got {name!r}"
            )
        return self.replaced(index_prefix=replay_prefix(self.index_prefix, name))


#: Days whose daily index names show what a date format writes: every month and weekday, short and long years.
_SAMPLE_DAYS = tuple(datetime(y, m, d) for y in (1000, 2026, 9999) for m in range(1, 13) for d in (1, 12, 28))


def _daily_suffix(day: datetime, date_format: str) -> str:
    """What the sink appends to the prefix for the daily index of ``day`` (lower-cased, as it does)."""
    return f"-{day.strftime(date_format)}".lower()


def _index_name(setting: str, name: str, what: str) -> None:
    try:
        naming.check_index_name(name, what)
    except ConfigurationError as exc:
        raise SettingError(setting, str(exc)) from None


def _geoip(path: str | None) -> Any:
    """The GeoIP lookup of ``path`` (``a.mmdb:b.mmdb``), else of ``$LOGTAP_GEOIP_DB``, else none."""
    from airflow_provider_logtap.enrich.geoip import GeoIP, default_database_path

    paths = tuple(p for p in path.split(":") if p) if path else default_database_path()
    return GeoIP(paths).lookup if paths else None


#: Whole-request statuses a bulk request is retried on (as the official bulk helpers retry 429).
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
#: Seconds a template put may take, whatever the connection's request timeout (sized for bulk requests): it
#: waits for a cluster-state update, which a busy cluster's master takes its time over (its own timeout: 30 s).
TEMPLATE_TIMEOUT = 60


class _Elasticsearch:
    def __init__(self, client: Any, server: str) -> None:
        self.client, self.server = client, server

    def bulk(self, body: bytes) -> dict[str, Any]:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        try:
            return dict(self.client.bulk(operations=body))
        except ApiError as exc:
            if exc.meta.status in TRANSIENT_STATUS:
                raise TransientBulkError(self.server, f"HTTP {exc.meta.status} {exc.message}") from exc
            raise
        except TransportError as exc:  # connection refused, dropped, timed out
            raise TransientBulkError(self.server, f"{type(exc).__name__}: {exc}") from exc

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.client.options(request_timeout=TEMPLATE_TIMEOUT).indices.put_index_template(name=name, **body)


class _OpenSearch:
    def __init__(self, client: Any, server: str) -> None:
        self.client, self.server = client, server

    def bulk(self, body: bytes) -> dict[str, Any]:
        from opensearchpy.exceptions import ConnectionError, TransportError

        try:
            return dict(self.client.bulk(body=body))
        except ConnectionError as exc:  # refused, dropped, timed out (ConnectionTimeout)
            raise TransientBulkError(self.server, f"{type(exc).__name__}: {exc}") from exc
        except TransportError as exc:
            if exc.status_code in TRANSIENT_STATUS:
                raise TransientBulkError(self.server, f"HTTP {exc.status_code} {exc.error}") from exc
            raise

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.client.indices.put_index_template(name=name, body=body, request_timeout=TEMPLATE_TIMEOUT)


def search_client(conn_id: str) -> SearchClient:
    """An Elasticsearch or OpenSearch client, chosen by the connection's type (``elasticsearch`` through the
    elasticsearch provider's hook, ``opensearch`` through the opensearch provider's hook)."""
    from airflow_provider_logtap.compat import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "opensearch":
        from airflow.providers.opensearch.hooks.opensearch import OpenSearchHook

        hook = OpenSearchHook(open_search_conn_id=conn_id, log_query=False)
        server = f"OpenSearch at {conn.host}:{conn.port} (connection {conn_id!r})"
        return _OpenSearch(hook.client, server)
    if conn.conn_type == "elasticsearch":
        from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchPythonHook

        extra = conn.extra_dejson
        scheme = extra.get("scheme") or ("https" if extra.get("use_ssl") else "http")
        args: dict[str, Any] = dict(extra.get("es_conn_args") or {})
        if conn.login:
            args.setdefault("basic_auth", (conn.login, conn.password or ""))
        url = f"{scheme}://{conn.host}:{conn.port or 9200}"
        server = f"Elasticsearch at {url} (connection {conn_id!r})"
        return _Elasticsearch(ElasticsearchPythonHook(hosts=[url], es_conn_args=args).get_conn, server)
    raise ConfigurationError(
        f"connection {conn_id!r} is of type {conn.conn_type!r}; a search target needs one of "
        "{'elasticsearch', 'opensearch'}"
    )
