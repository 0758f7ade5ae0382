"""The shipped DAG with a search target, run by real ``airflow`` commands into a real OpenSearch node."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from airflow_env import AirflowEnv
from conftest import write_taps

PARTITIONS = 2


@pytest.mark.airflow2
def test_search_tap_indexes_every_line_once_across_runs_and_a_failure(
    airflow: AirflowEnv, kafka_bootstrap: str, opensearch_url: str, geoip_database: str, topic_name: str
) -> None:
    from devstack import loggen
    from opensearchpy import OpenSearch

    prefix = f"sys-{topic_name.lower()}"
    write_taps(
        airflow,
        {
            "name": "sys_search",
            "topic": topic_name,
            "target": {
                "type": "search",
                "search_conn_id": "opensearch_sys",
                "index_prefix": prefix,
                "geoip_database": geoip_database,
            },
        },
    )
    host, port = opensearch_url.removeprefix("http://").rsplit(":", 1)
    env = {
        "AIRFLOW_CONN_OPENSEARCH_SYS": json.dumps(
            {"conn_type": "opensearch", "host": host, "port": int(port)}
        )
    }
    loggen.create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent: list[Any] = []
    for seed, fail in ((41, False), (42, True), (43, False)):
        sent += loggen.produce(kafka_bootstrap, topic_name, loggen.generate(600, seed=seed))
        extra = {**env, "LOGTAP_TEST_FAIL_TASK": "commit"} if fail else env
        airflow.run("dags", "test", "logtap_sys_search", extra_env=extra, check=not fail)
    client = OpenSearch(opensearch_url)
    client.indices.refresh(index=f"{prefix}-*")
    assert client.count(index=f"{prefix}-2*")["count"] == len(sent) == 1800
    per_day = client.search(
        index=f"{prefix}-2*", body={"size": 0, "aggs": {"d": {"terms": {"field": "_index"}}}}
    )
    got = {b["key"]: b["doc_count"] for b in per_day["aggregations"]["d"]["buckets"]}
    assert got == dict(Counter(f"{prefix}-{s.event_utc:%Y.%m.%d}" for s in sent))
    ids = client.search(
        index=f"{prefix}-2*",
        body={
            "size": 0,
            "aggs": {
                "o": {
                    "cardinality": {
                        "script": {"source": "doc['kafka.partition'].value + '-' + doc['kafka.offset'].value"}
                    }
                }
            },
        },
    )
    assert ids["aggregations"]["o"]["value"] == 1800
