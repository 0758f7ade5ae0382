"""The search sink against a real OpenSearch node and the Elasticsearch API of noida-db, fed by a real broker:
counts per day index, status and country equal independent counts; re-runs change nothing; refused items are
retried; what cannot be indexed lands in the dead-letter index with its reason."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import maxminddb
import pytest
from confluent_kafka import Consumer
from kafka_helpers import counted_read, create_topic, produce

from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.enrich.geoip import GeoIP
from airflow_provider_logtap.kafka.client import reader_config
from airflow_provider_logtap.kafka.reader import read_range
from airflow_provider_logtap.sinks.search import BadLineRatioError, SearchSink
from airflow_provider_logtap.targets import search_client


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    c = Consumer(reader_config({"bootstrap.servers": kafka_bootstrap}, "logtap-test-search"))
    yield c
    c.close()


@pytest.fixture(params=["opensearch", "elasticsearch"])
def search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """(flavour, the server's own client) with an Airflow connection ``search_test`` of that type."""
    url = request.getfixturevalue(f"{request.param}_url")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEARCH_TEST", json.dumps({"conn_type": request.param, "host": host, "port": int(port)})
    )
    if request.param == "opensearch":
        from opensearchpy import OpenSearch

        return request.param, OpenSearch(url)
    from elasticsearch import Elasticsearch

    return request.param, Elasticsearch(url)


def sink(prefix: str, geoip_database: str, **kw: Any) -> SearchSink:
    parser = AccessLogParser(geoip=GeoIP(geoip_database).lookup)
    return SearchSink(client=search_client("search_test"), index_prefix=prefix, parser=parser, **kw)


def query(client: Any, index: str, **body: Any) -> Any:
    """A search in either client's dialect (opensearch-py takes a body, elasticsearch-py 9 keywords)."""
    client.indices.refresh(index=index)
    if type(client).__module__.startswith("opensearchpy"):
        return client.search(index=index, body=body)
    return client.search(index=index, **body)


def counts(client: Any, index: str, field: str) -> Counter[str]:
    response = query(client, index, size=0, aggs={"f": {"terms": {"field": field, "size": 1000}}})
    return Counter({str(b["key"]): b["doc_count"] for b in response["aggregations"]["f"]["buckets"]})


def total(client: Any, index: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


def test_documents_per_day_status_and_country_match_independent_counts(
    search: tuple[str, Any], kafka_bootstrap: str, topic_name: str, consumer: Consumer, geoip_database: str
) -> None:
    from devstack.loggen import generate

    client = search[1]
    lines = list(generate(1500, seed=17))
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [x.line for x in lines])
    prefix = f"t-{topic_name.lower()}"
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(lines))
    result = sink(prefix, geoip_database).write(rng, read_range(consumer, rng))
    assert result.written == len(lines) and result.dead_letters == 0
    # Independent counts: the generator's own event times, the status field of each line, and a plain maxminddb
    # lookup of each client address.
    by_day = Counter(f"{prefix}-{x.event_utc:%Y.%m.%d}" for x in lines)
    for index, n in by_day.items():
        assert total(client, index) == n
    assert counts(client, f"{prefix}-*", "http.response.status_code") == Counter(
        x.line.split(b'" ')[1].split()[0].decode() for x in lines
    )
    with maxminddb.open_database(geoip_database) as db:
        countries = Counter()
        for x in lines:
            record = db.get(x.line.split(b" ", 1)[0].decode())
            if record and "country" in record:
                countries[record["country"]["iso_code"]] += 1
    assert countries and counts(client, f"{prefix}-*", "source.geo.country_iso_code") == countries
    # The same range again: the same ids, so the count does not change.
    sink(prefix, geoip_database).write(rng, read_range(consumer, rng))
    assert total(client, f"{prefix}-2*") == len(lines)


def test_bulk_requests_in_flight_at_once_index_every_offset_once(
    search: tuple[str, Any], kafka_bootstrap: str, topic_name: str, consumer: Consumer, geoip_database: str
) -> None:
    from devstack.loggen import generate

    client = search[1]
    lines = [x.line for x in generate(1000, seed=23, days=0.5)]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, lines)
    prefix = f"c-{topic_name.lower()}"
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(lines))
    # 25 requests of 40 documents, four at once
    result = sink(prefix, geoip_database, bulk_docs=40, bulk_concurrency=4).write(
        rng, read_range(consumer, rng)
    )
    assert result.written == len(lines) and result.dead_letters == 0
    offsets = query(
        client, f"{prefix}-2*", size=0, aggs={"o": {"terms": {"field": "kafka.offset", "size": 2000}}}
    )
    held = Counter({int(b["key"]): b["doc_count"] for b in offsets["aggregations"]["o"]["buckets"]})
    assert held == Counter(range(len(lines)))
    # again, one request at a time: the same ids, nothing doubles
    sink(prefix, geoip_database, bulk_docs=40, bulk_concurrency=1).write(rng, read_range(consumer, rng))
    assert total(client, f"{prefix}-2*") == len(lines)


def test_malformed_lines_go_to_the_dead_letter_index_and_a_wrong_format_fails(
    search: tuple[str, Any], kafka_bootstrap: str, topic_name: str, consumer: Consumer, geoip_database: str
) -> None:
    from devstack.loggen import generate

    client = search[1]
    good = [x.line for x in generate(60, seed=2)]
    bad = [b"not an access log line", b'1.2.3.4 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 2x0 5']
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, good[:30] + bad + good[30:])
    prefix = f"d-{topic_name.lower()}"
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=62)
    result = sink(prefix, geoip_database).write(rng, read_range(consumer, rng))
    assert (result.written, result.dead_letters) == (60, 2)
    hits = query(client, f"{prefix}.dead-letter", query={"match_all": {}})
    dead = sorted((h["_source"]["offset"], h["_source"]["reason"]) for h in hits["hits"]["hits"])
    assert [o for o, _ in dead] == [30, 31]
    assert "does not match" in dead[0][1] and "status" in dead[1][1]
    # Lines of another server's format: loud, and nothing indexed.
    wrong = f"w-{topic_name.lower()}"
    produce(kafka_bootstrap, topic_name, 0, [b'{"ts": "2015-10-28T14:03:07Z", "msg": "json logs"}'] * 50)
    json_logs = OffsetRange(topic=topic_name, partition=0, start=62, end=112)
    read: list[int] = []
    batches = counted_read(consumer, json_logs, read, batch_size=10)

    with pytest.raises(
        BadLineRatioError, match=r"already 10 of the range's 50 offsets \(stopped early\) do not"
    ):
        sink(wrong, geoip_database, max_bad_ratio=0.01).write(json_logs, batches)
    assert sum(read) == 10  # stopped once the ratio could no longer end below the limit
    assert not client.indices.exists(index=f"{wrong}.dead-letter")


def test_items_refused_for_a_while_are_retried_until_they_are_indexed(
    opensearch_url: str,
    kafka_bootstrap: str,
    topic_name: str,
    consumer: Consumer,
    geoip_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real partial failure: one daily index is write-blocked (OpenSearch answers 429 for its items) and is
    unblocked a moment later; the other days' items are indexed at once, the blocked ones on a retry."""
    from opensearchpy import OpenSearch

    host, port = opensearch_url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEARCH_TEST", json.dumps({"conn_type": "opensearch", "host": host, "port": int(port)})
    )
    client = OpenSearch(opensearch_url)
    from devstack.loggen import generate

    lines = list(generate(400, seed=8))
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, [x.line for x in lines])
    prefix = f"r-{topic_name.lower()}"
    blocked = f"{prefix}-{lines[0].event_utc:%Y.%m.%d}"
    client.indices.create(index=blocked, body={"settings": {"index.blocks.read_only_allow_delete": True}})
    unblock = threading.Timer(
        1.5,
        lambda: client.indices.put_settings(
            index=blocked, body={"index.blocks.read_only_allow_delete": None}
        ),
    )
    unblock.start()
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=400)
    result = sink(prefix, geoip_database, backoff=0.5).write(rng, read_range(consumer, rng))
    unblock.join()
    assert (result.written, result.dead_letters) == (400, 0)
    assert total(client, f"{prefix}-2*") == 400
    assert total(client, blocked) == sum(1 for x in lines if f"{x.event_utc:%Y.%m.%d}" == blocked[-10:])


@pytest.mark.parametrize("order", ["live_first", "replay_first"])
def test_live_loads_replays_and_nested_taps_coexist_and_the_live_view_holds_only_live_documents(
    search: tuple[str, Any],
    kafka_bootstrap: str,
    topic_name: str,
    consumer: Consumer,
    geoip_database: str,
    order: str,
) -> None:
    """Before: the replay's template (``<prefix>-replay-<name>-*``) tied with the live one (``<prefix>-*``, both
    priority 200) and the second put was refused; dead letters and replays sat inside ``<prefix>-*``."""
    from devstack.loggen import generate

    from airflow_provider_logtap.sinks.search import index_names
    from airflow_provider_logtap.taps import SearchTarget
    from airflow_provider_logtap.targets import relocated

    client = search[1]
    lines = [x.line for x in generate(200, seed=23)]
    lines[50:50] = [b"garbage that is no access log", b"more garbage"]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, lines)
    prefix = f"n-{topic_name.lower()}"
    live_target = SearchTarget(search_conn_id="search_test", index_prefix=prefix)
    replay_target = relocated(live_target, "Again")
    everything = OffsetRange(topic=topic_name, partition=0, start=0, end=len(lines))
    part = OffsetRange(topic=topic_name, partition=0, start=0, end=120)
    writes = {
        "live": lambda: sink(prefix, geoip_database).write(everything, read_range(consumer, everything)),
        "replay": lambda: sink(replay_target.index_prefix, geoip_database).write(
            part, read_range(consumer, part)
        ),
        # A second tap whose prefix extends the first one's: its pattern overlaps the first's.
        "nested": lambda: sink(f"{prefix}-eu", geoip_database).write(part, read_range(consumer, part)),
    }
    sequence = ["live", "replay", "nested"] if order == "live_first" else ["nested", "replay", "live"]
    for name in sequence:
        writes[name]()  # every put of every template is accepted, whatever came before
    names = index_names(prefix)
    replay_names = index_names(replay_target.index_prefix)
    assert replay_target.index_prefix == f"{prefix}.replay-again"
    # The live view (the alias) holds exactly the live tap's parsed documents: no dead letter, no replay, no
    # other tap's documents, although the other tap's indices match `<prefix>-*`.
    assert total(client, names["alias"]) == 200
    assert total(client, names["dead_letter"]) == 2
    assert total(client, replay_names["alias"]) == 118
    assert total(client, replay_names["dead_letter"]) == 2
    assert total(client, index_names(f"{prefix}-eu")["alias"]) == 118
    assert total(client, names["replays"]) == 120
    # `<prefix>-*` is the live view only while no other tap's prefix extends `<prefix>-`: here it also holds
    # the nested tap's documents and dead letters; the alias is exact in every case (the README says so).
    assert total(client, names["live"]) == 200 + 118 + 2
    own = [i for i in client.indices.get(index=names["live"]) if not i.startswith(f"{prefix}-eu")]
    assert own and not [i for i in own if "dead-letter" in i or ".replay-" in i]
    # Each index got the mapping of its own template (a geo_point and a long where they belong).
    live_index = next(i for i in client.indices.get(index=names["alias"]))
    mapping = client.indices.get_mapping(index=live_index)[live_index]["mappings"]["properties"]
    assert mapping["kafka"]["properties"]["offset"]["type"] == "long"
    dead = client.indices.get_mapping(index=names["dead_letter"])[names["dead_letter"]]["mappings"][
        "properties"
    ]
    assert dead["offset"]["type"] == "long" and dead["reason"]["type"] == "text"
