"""KafkaToSearchOperator: one range parsed, GeoIP-enriched and indexed into Elasticsearch or OpenSearch."""

from __future__ import annotations

from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.targets import SearchTarget


class KafkaToSearchOperator(KafkaRangeLoadOperator):
    """Index the access-log lines of one offset range as ECS documents (the docs are the target's)."""

    target_model = SearchTarget
