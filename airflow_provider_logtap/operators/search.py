"""KafkaToSearchOperator: one range parsed, GeoIP-enriched and indexed into Elasticsearch or OpenSearch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.taps import SearchTarget


class KafkaToSearchOperator(KafkaRangeLoadOperator):
    """Index the access-log lines of one offset range as ECS documents, ``_id`` = ``topic-partition-offset``,
    in daily indices ``<index_prefix>-YYYY.MM.DD`` of the line's own event time.

    Lines that do not parse, and documents the server refuses, go to ``<index_prefix>.dead-letter`` with the
    reason; when more than ``max_bad_ratio`` of the range's lines do not parse, nothing is indexed and the task
    fails.

    :param search_conn_id: an ``elasticsearch`` or ``opensearch`` connection (its type chooses the client).
    :param index_prefix: the indices' prefix (``logtap-weblogs``).
    :param index_date_format: the daily suffix (``%Y.%m.%d``).
    :param log_format: ``auto`` (default), ``combined``, ``common`` or ``vhost_combined``.
    :param date_format: how ``%t`` is read (``apache``; or ``iso8601``, ``epoch_s``... for other servers).
    :param assume_zone: the zone of timestamps without one.
    :param geoip_database: MaxMind DB path(s), ``city.mmdb:asn.mmdb``; default ``$LOGTAP_GEOIP_DB``.
    :param max_bad_ratio: the largest share of lines that may fail to parse (``0.05``).
    :param bulk_docs: documents per bulk request (``5000``).

    The other parameters are those of :class:`KafkaRangeLoadOperator`.
    """

    template_fields: Sequence[str] = (*KafkaRangeLoadOperator.template_fields, "index_prefix")
    target_type = SearchTarget

    def __init__(
        self,
        *,
        search_conn_id: str = "opensearch_default",
        index_prefix: str = "logtap-weblogs",
        index_date_format: str = "%Y.%m.%d",
        log_format: str = "auto",
        date_format: str = "apache",
        assume_zone: str = "UTC",
        geoip_database: str | None = None,
        max_bad_ratio: float | None = 0.05,
        bulk_docs: int = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.search_conn_id = search_conn_id
        self.index_prefix = index_prefix
        self.index_date_format = index_date_format
        self.log_format = log_format
        self.date_format = date_format
        self.assume_zone = assume_zone
        self.geoip_database = geoip_database
        self.max_bad_ratio = max_bad_ratio
        self.bulk_docs = bulk_docs
