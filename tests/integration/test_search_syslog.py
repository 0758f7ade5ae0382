"""Access-log lines behind a syslog prefix, through a real broker and the search sink into a real OpenSearch node
and the Elasticsearch API of noida-db (issue 10): each document has the line's own client address and its GeoIP
fields and the prefix's ``log.syslog`` fields; a line whose fields would be shifted by text in front of it is a
dead letter with its reason, never a document with ``source.address`` taken from the prefix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import maxminddb
from confluent_kafka import Consumer
from kafka_helpers import create_topic, produce
from test_search import consumer, query, search, sink, total  # noqa: F401 (fixtures)

from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.kafka.reader import read_range

GEO_CLIENT = "81.2.69.160"  # in the DB-IP City Lite database (GB)
GEO_CLIENT_V6 = "2a02:ec0:2::1"
REQUEST = b'[28/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 512'
COMBINED = b' "https://example.com/" "curl/8.5.0"'

# offset: (line, expected source.address, expected user.name, expected log.syslog)
PARSED: dict[int, tuple[bytes, str, str | None, dict[str, Any]]] = {
    # the line, as it stands: no GeoIP for a documentation address
    0: (
        b"Nov 28 10:00:01 web1 httpd[812]: 203.0.113.9 - - " + REQUEST,
        "203.0.113.9",
        None,
        {"hostname": "web1", "appname": "httpd", "procid": "812"},
    ),
    # the same with a client the GeoIP database knows, and a space-padded day
    1: (
        b"Nov  8 10:00:01 web1 httpd[812]: " + GEO_CLIENT.encode() + b" - - " + REQUEST + COMBINED,
        GEO_CLIENT,
        None,
        {"hostname": "web1", "appname": "httpd", "procid": "812"},
    ),
    # RFC 3164 with its PRI (local0.info), a user
    2: (
        b"<134>Nov 28 10:00:02 web2 apache2: " + GEO_CLIENT.encode() + b" - frank " + REQUEST,
        GEO_CLIENT,
        "frank",
        {
            "priority": 134,
            "facility": {"code": 16},
            "severity": {"code": 6},
            "hostname": "web2",
            "appname": "apache2",
        },
    ),
    # RFC 5424 with structured data, an IPv6 client
    3: (
        b'<165>1 2026-11-28T10:00:03.003Z web3 httpd 4711 access [origin ip="10.0.0.3"] '
        + GEO_CLIENT_V6.encode()
        + b" - - "
        + REQUEST
        + COMBINED,
        GEO_CLIENT_V6,
        None,
        {
            "priority": 165,
            "facility": {"code": 20},
            "severity": {"code": 5},
            "version": "1",
            "hostname": "web3",
            "appname": "httpd",
            "procid": "4711",
            "msgid": "access",
        },
    ),
    # rsyslog's ISO-time file format, a user name with spaces
    4: (
        b"2026-11-28T10:00:04+00:00 web4 nginx[9]: "
        + GEO_CLIENT.encode()
        + b" - John Smith "
        + REQUEST
        + COMBINED,
        GEO_CLIENT,
        "John Smith",
        {"hostname": "web4", "appname": "nginx", "procid": "9"},
    ),
    # no prefix at all
    5: (GEO_CLIENT.encode() + b" - - " + REQUEST + COMBINED, GEO_CLIENT, None, {}),
}
# offset: (line, what the reason says)
DEAD: dict[int, tuple[bytes, str]] = {
    # a forwarder that dropped the time: no syslog prefix; read as it stands, the client would be "web1"
    6: (
        b"web1 httpd[812]: " + GEO_CLIENT.encode() + b" - - " + REQUEST,
        f"read as it stands, the client address would be 'web1' and the user name '{GEO_CLIENT} - -'",
    ),
    # words in front of the line
    7: (
        b"some words " + GEO_CLIENT.encode() + b" - - " + REQUEST + COMBINED,
        "read as it stands, the client address would be 'some'",
    ),
    # a syslog prefix before a line of another program
    8: (
        b"Nov 28 10:00:05 web1 sshd[99]: Accepted publickey for root from 10.0.0.9",
        "after its syslog prefix",
    ),
}


def test_syslog_prefixed_lines_keep_their_client_geoip_and_syslog_fields_and_shifted_ones_are_dead_letters(
    search: tuple[str, Any],  # noqa: F811
    kafka_bootstrap: str,
    topic_name: str,
    consumer: Consumer,  # noqa: F811
    geoip_database: str,
) -> None:
    client = search[1]
    lines = [PARSED[i][0] if i in PARSED else DEAD[i][0] for i in range(len(PARSED) + len(DEAD))]
    create_topic(kafka_bootstrap, topic_name)
    produce(kafka_bootstrap, topic_name, 0, lines)
    prefix = f"s-{topic_name.lower()}"
    rng = OffsetRange(topic=topic_name, partition=0, start=0, end=len(lines))
    tap = sink(prefix, geoip_database, max_bad_ratio=None)  # a third are bad lines on purpose
    result = tap.write(rng, read_range(consumer, rng))
    assert (result.written, result.dead_letters) == (len(PARSED), len(DEAD))

    # The documents as the server stores them: the line's own client, its GeoIP (looked up here independently)
    # and the prefix's fields; no document's client comes from a prefix.
    hits = query(client, f"{prefix}-2*", size=100, query={"match_all": {}})["hits"]["hits"]
    docs = {h["_source"]["kafka"]["offset"]: h["_source"] for h in hits}
    assert sorted(docs) == sorted(PARSED)
    with maxminddb.open_database(geoip_database) as db:
        for offset, (line, address, user, syslog) in PARSED.items():
            doc = docs[offset]
            assert doc["message"] == line.decode()
            assert doc["source"]["address"] == address and doc["source"]["ip"] == address
            record: Any = db.get(address)
            country = record["country"]["iso_code"] if record and "country" in record else None
            assert doc["source"].get("geo", {}).get("country_iso_code") == country, offset
            assert doc.get("user", {}).get("name") == user, offset
            assert doc.get("log", {}).get("syslog", {}) == syslog, offset
            assert doc["http"]["response"] == {"status_code": 200, "body": {"bytes": 512}}
    assert sum(1 for d in docs.values() if d["source"].get("geo", {}).get("country_iso_code")) >= 4

    # Searchable as ECS fields: keywords and numbers, what Kibana/OpenSearch Dashboards filter on.
    by_client = query(client, f"{prefix}-2*", size=0, aggs={"c": {"terms": {"field": "source.address"}}})
    assert Counter({b["key"]: b["doc_count"] for b in by_client["aggregations"]["c"]["buckets"]}) == Counter(
        address for _, address, _, _ in PARSED.values()
    )
    web1 = query(client, f"{prefix}-2*", query={"term": {"log.syslog.hostname": "web1"}})["hits"]["hits"]
    assert sorted(h["_source"]["kafka"]["offset"] for h in web1) == [0, 1]
    local0 = query(client, f"{prefix}-2*", query={"range": {"log.syslog.priority": {"gte": 130, "lt": 170}}})
    assert sorted(h["_source"]["kafka"]["offset"] for h in local0["hits"]["hits"]) == [2, 3]

    mappings = client.indices.get_mapping(index=f"{prefix}-2*")
    (mapping,) = mappings.values()
    syslog_fields = mapping["mappings"]["properties"]["log"]["properties"]["syslog"]["properties"]
    assert syslog_fields["hostname"]["type"] == "keyword" and syslog_fields["priority"]["type"] == "long"

    # The shifted lines are dead letters with their reasons.
    assert total(client, tap.dead_letter_index) == len(DEAD)
    dead = query(client, tap.dead_letter_index, size=100, query={"match_all": {}})["hits"]["hits"]
    reasons = {h["_source"]["offset"]: h["_source"]["reason"] for h in dead}
    assert sorted(reasons) == sorted(DEAD)
    for offset, (_, says) in DEAD.items():
        assert says in reasons[offset], (offset, reasons[offset])
        assert reasons[offset].startswith("does not match the combined, common or vhost_combined format")
    assert {h["_source"]["offset"]: h["_source"]["line"] for h in dead} == {
        o: x.decode() for o, (x, _) in DEAD.items()
    }
