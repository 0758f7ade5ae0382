from __future__ import annotations

import dataclasses
import ipaddress
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core import accesslog
from airflow_provider_logtap.core.accesslog import (
    LOG_FORMATS,
    TOMBSTONE,
    AccessLogParser,
    address,
    iso_utc,
    request_parts,
    text,
    unescape,
)
from airflow_provider_logtap.core.eventtime import TimeFormat
from airflow_provider_logtap.errors import ConfigurationError

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
COMMON = b'81.2.69.160 - frank [28/Oct/2015:14:03:07 +0000] "GET /a?b=1 HTTP/1.1" 200 2326'
COMBINED = COMMON + b' "https://example.com/" "curl/8.5.0"'
VHOST = b"www.example.com:443 " + COMBINED


# -- configuration ----------------------------------------------------------------------------------------


def test_formats_are_validated_with_the_standard_message() -> None:
    assert LOG_FORMATS == ("combined", "common", "vhost_combined", "auto")
    with pytest.raises(
        ConfigurationError, match=r"log_format must be one of \{'auto', 'combined', .*\}. Got 'nginx'"
    ):
        AccessLogParser(log_format="nginx")
    with pytest.raises(ConfigurationError, match="time_format must be a TimeFormat"):
        AccessLogParser(time_format="apache")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="geoip must be a lookup"):
        AccessLogParser(geoip="/path/to/db.mmdb")  # type: ignore[arg-type]


def test_parser_is_a_frozen_keyword_only_value() -> None:
    parser = AccessLogParser(log_format="combined")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parser.log_format = "common"  # type: ignore[misc]
    with pytest.raises(TypeError):
        AccessLogParser("combined")  # type: ignore[misc]
    assert parser == AccessLogParser(log_format="combined")
    assert parser != AccessLogParser()
    assert "combined" in repr(parser)


# -- formats ------------------------------------------------------------------------------------------------


def test_each_format_reads_its_own_lines() -> None:
    common = AccessLogParser(log_format="common")
    combined = AccessLogParser(log_format="combined")
    vhost = AccessLogParser(log_format="vhost_combined")
    auto = AccessLogParser()

    doc = combined.parse(COMBINED)
    assert isinstance(doc, dict)
    assert doc["http"]["request"] == {"method": "GET", "referrer": "https://example.com/"}
    assert doc["user_agent"] == {"original": "curl/8.5.0"}
    assert auto.parse(COMBINED) == doc

    # common reads the common part of a combined line and ignores the rest
    c = common.parse(COMBINED)
    assert isinstance(c, dict)
    assert "user_agent" not in c and "referrer" not in c["http"]["request"]
    assert c == common.parse(COMMON) | {"message": COMBINED.decode()}

    # combined needs the referrer and agent, vhost_combined the virtual host in front
    assert combined.parse(COMMON) == "does not match the combined format"
    assert vhost.parse(COMBINED) == "does not match the vhost_combined format"
    v = vhost.parse(VHOST)
    assert isinstance(v, dict)
    assert v["destination"] == {"address": "www.example.com", "domain": "www.example.com", "port": 443}
    assert {k: x for k, x in v.items() if k not in ("destination", "message")} == {
        k: x for k, x in doc.items() if k != "message"
    }
    assert auto.parse(VHOST) == v
    # auto also takes a virtual host in front of the common format
    a = auto.parse(b"www.example.com " + COMMON)
    assert isinstance(a, dict)
    assert a["destination"] == {"address": "www.example.com", "domain": "www.example.com"}
    assert a["source"]["ip"] == "81.2.69.160"


def test_the_fields_a_kibana_user_expects() -> None:
    doc = AccessLogParser().parse(COMBINED)
    assert doc == {
        "@timestamp": "2015-10-28T14:03:07Z",
        "message": COMBINED.decode(),
        "source": {"address": "81.2.69.160", "ip": "81.2.69.160"},
        "user": {"name": "frank"},
        "url": {"original": "/a?b=1"},
        "http": {
            "request": {"method": "GET", "referrer": "https://example.com/"},
            "version": "1.1",
            "response": {"status_code": 200, "body": {"bytes": 2326}},
        },
        "user_agent": {"original": "curl/8.5.0"},
    }


def test_other_date_formats_in_the_brackets() -> None:
    parser = AccessLogParser(time_format=TimeFormat.named("iso8601"))
    line = b'192.0.2.1 - - [2015-10-28T14:03:07+01:00] "GET / HTTP/1.1" 200 5'
    doc = parser.parse(line)
    assert isinstance(doc, dict)
    assert doc["@timestamp"] == "2015-10-28T13:03:07Z"
    assert AccessLogParser().parse(line) == (
        "timestamp '2015-10-28T14:03:07+01:00' does not match 'apache' (not dd/Mon/yyyy:HH:MM:SS +zzzz)"
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (COMMON.replace(b" 200 ", b" 20 "), "bad status code '20'"),
        (COMMON.replace(b" 200 ", b" 2000 "), "bad status code '2000'"),
        (COMMON.replace(b" 2326", b" -5"), "bad response size '-5'"),
        (COMMON.replace(b" 2326", b" 1e3"), "bad response size '1e3'"),
        (
            COMMON.replace(b"28/Oct", b"28/Okt"),
            "timestamp '28/Okt/2015:14:03:07 +0000' does not match 'apache'",
        ),
        (COMMON.replace(b"[", b""), "does not match the combined, common or vhost_combined format"),
        (b"81.2.69.160 - - [28/Oct/2015:14:03:07 +0000]", "does not match"),
        # text in front of the line that is no syslog prefix: no fields shifted (tests/unit/test_syslog_prefix.py)
        (
            b"web1 httpd[812]: " + COMMON,
            "does not match the combined, common or vhost_combined format: read as it stands, the client address "
            "would be 'web1' and the user name '81.2.69.160 - frank' (text in front of the line?)",
        ),
    ],
)
def test_reasons(line: bytes, reason: str) -> None:
    doc = AccessLogParser().parse(line)
    assert isinstance(doc, str)
    assert doc.startswith(reason)


def test_dash_status_and_size_are_left_out() -> None:
    doc = AccessLogParser().parse(b'192.0.2.1 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" - -')
    assert isinstance(doc, dict)
    assert doc["http"] == {"request": {"method": "GET"}, "version": "1.1"}
    doc = AccessLogParser().parse(b'192.0.2.1 - - [28/Oct/2015:14:03:07 +0000] "-" - -')
    assert isinstance(doc, dict)
    assert "http" not in doc and "url" not in doc


def test_sizes_are_numbers_and_leading_zeros_go() -> None:
    p = AccessLogParser()
    for size, expected in ((b"0", 0), (b"007", 7), (b"123456789012", 123456789012)):
        doc = p.parse(COMMON.replace(b" 2326", b" " + size))
        assert isinstance(doc, dict)
        assert doc["http"]["response"]["body"]["bytes"] == expected
        (j,), _ = p.parse_many_json([COMMON.replace(b" 2326", b" " + size)])
        assert json.loads(j) == doc


@pytest.mark.parametrize("line", [COMMON, COMBINED], ids=["common", "combined"])
def test_a_size_no_long_holds_gets_a_reason_and_the_largest_is_kept(line: bytes) -> None:
    p = AccessLogParser()
    largest = str(2**63 - 1).encode()
    too_large = [line.replace(b" 2326", b" " + n) for n in (str(2**63).encode(), b"9" * 40)]
    docs, rejected = p.parse_many_json([*too_large, line.replace(b" 2326", b" 0" + largest)])
    assert [i for i, _ in rejected] == [0, 1] and all("is larger than" in r for _, r in rejected)
    assert json.loads(docs[0])["http"]["response"]["body"]["bytes"] == 2**63 - 1
    assert p.parse(too_large[0]) == rejected[0][1]


def test_a_trailing_newline_is_tolerated() -> None:
    p = AccessLogParser()
    for line in (COMMON, COMBINED, VHOST):
        doc, ref = p.parse(line + b"\n"), p.parse(line)
        assert isinstance(doc, dict) and isinstance(ref, dict)
        assert doc["message"] == ref["message"] + "\n"
        assert doc | {"message": ref["message"]} == ref


# -- batches ------------------------------------------------------------------------------------------------


def test_parse_many_keeps_order_counts_tombstones_and_adds_provenance() -> None:
    values = [COMBINED, None, b"garbage", COMMON]
    p = AccessLogParser()
    docs, rejected = p.parse_many(values, topic="weblogs", partition=3, offsets=[10, 11, 12, 14])
    assert rejected == [(1, TOMBSTONE), (2, "does not match the combined, common or vhost_combined format")]
    assert [d["kafka"] for d in docs] == [
        {"topic": "weblogs", "partition": 3, "offset": 10},
        {"topic": "weblogs", "partition": 3, "offset": 14},
    ]
    assert [d["message"] for d in docs] == [COMBINED.decode(), COMMON.decode()]
    jdocs, jrejected = p.parse_many_json(values, topic="weblogs", partition=3, offsets=[10, 11, 12, 14])
    assert jrejected == rejected
    assert [json.loads(d) for d in jdocs] == docs
    # without a topic: no provenance; without offsets: the index
    plain, _ = p.parse_many(values)
    assert all("kafka" not in d for d in plain)
    indexed, _ = p.parse_many(values, topic="t", partition=0)
    assert [d["kafka"]["offset"] for d in indexed] == [0, 3]
    jplain, _ = p.parse_many_json(values)
    assert [json.loads(d) for d in jplain] == plain
    with pytest.raises(ValueError, match="offsets has 1 items for 4 values"):
        p.parse_many(values, offsets=[1])
    with pytest.raises(ValueError, match="offsets has 1 items for 4 values"):
        p.parse_many_json(values, offsets=[1])


def test_json_documents_are_compact_utf8() -> None:
    line = rb'192.0.2.1 - - [28/Oct/2015:14:03:07 +0000] "GET /caf\xc3\xa9 HTTP/1.1" 200 5 "-" "\x01"'
    (doc,), _ = AccessLogParser().parse_many_json([line])
    assert "/café".encode() in doc
    assert b'"user_agent":{"original":"\\u0001"}' in doc
    assert b": " not in doc and b", " not in doc.replace(b'", "', b"")


def test_documents_share_the_nested_dicts_of_repeated_values() -> None:
    # Documented: documents are read-only; the same client shares one "source" dict.
    docs, _ = AccessLogParser().parse_many([COMBINED, COMBINED.replace(b"14:03:07", b"14:03:08")])
    assert docs[0]["source"] is docs[1]["source"]
    assert docs[0]["user_agent"] is docs[1]["user_agent"]
    assert docs[0]["http"] is not docs[1]["http"]


def test_caches_are_bounded_and_results_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesslog, "CACHE_LIMIT", 5)
    p = AccessLogParser()
    lines = [
        f'192.0.2.{i} - - [28/Oct/2015:14:03:{i % 60:02d} +0000] "GET /{i} HTTP/1.1" 200 {i} "-" "ua{i}"'.encode()
        for i in range(40)
    ]
    for _ in range(2):
        docs, rejected = p.parse_many(lines)
        jdocs, _ = p.parse_many_json(lines)
        assert not rejected
        assert [d["url"]["original"] for d in docs] == [f"/{i}" for i in range(40)]
        assert [d["user_agent"]["original"] for d in docs] == [f"ua{i}" for i in range(40)]
        assert [d["@timestamp"][-3:] for d in docs] == [f"{i % 60:02d}Z" for i in range(40)]
        assert [json.loads(j) for j in jdocs] == docs


# -- GeoIP hook ---------------------------------------------------------------------------------------------


def test_geoip_fields_go_under_source_once_per_client() -> None:
    calls: list[str] = []
    geo = {"geo": {"country_iso_code": "GB", "location": {"lat": 51.5, "lon": -0.1}}, "as": {"number": 5}}

    def lookup(ip: str) -> dict[str, Any] | None:
        calls.append(ip)
        return geo if ip.startswith("81.") else None

    p = AccessLogParser(geoip=lookup)
    lines = [
        COMBINED,
        COMBINED,
        COMBINED.replace(b"81.2.69.160", b"10.0.0.1"),
        b"host.example " + COMMON[12:],
    ]
    docs, rejected = p.parse_many(lines)
    assert not rejected
    assert docs[0]["source"] == {"address": "81.2.69.160", "ip": "81.2.69.160"} | geo
    assert docs[2]["source"] == {"address": "10.0.0.1", "ip": "10.0.0.1"}
    assert docs[3]["source"] == {"address": "host.example", "domain": "host.example"}
    assert calls == ["81.2.69.160", "10.0.0.1"]  # no lookup for a repeat or for a host name
    jdocs, _ = p.parse_many_json(lines)
    assert [json.loads(d) for d in jdocs] == docs
    assert AccessLogParser(geoip=lookup) == AccessLogParser()  # the lookup is no part of the value


# -- the pieces ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logged", "raw"),
    [
        (rb"plain", b"plain"),
        (rb"a\"b", b'a"b'),
        (rb"back\\slash", b"back\\slash"),
        (rb"\x16\x03\x01", b"\x16\x03\x01"),
        (rb"\xC3\xA9", b"\xc3\xa9"),
        (rb"\n\t\r\v\b", b"\n\t\r\v\b"),
        (rb"\\x41", b"\\x41"),  # an escaped backslash before "x41" is no \x escape
        (rb"\q", b"\\q"),  # not an escape Apache writes: kept
    ],
)
def test_unescape(logged: bytes, raw: bytes) -> None:
    assert unescape(logged) == raw


def test_text_decodes_utf8_and_keeps_other_bytes_as_hex() -> None:
    assert text(rb"caf\xc3\xa9") == "café"
    assert text(rb"\xff") == "\\xff"
    assert text(b"\xe9t\xe9") == "\\xe9t\\xe9"
    assert text("über".encode()) == "über"


@pytest.mark.parametrize(
    ("request_line", "parts"),
    [
        (b"GET / HTTP/1.1", ("GET", "/", "1.1")),
        (b"get / HTTP/1.1", ("get", "/", "1.1")),
        (b"GET / HTTP/2", ("GET", "/", "2")),
        (b"GET /a b c HTTP/1.0", ("GET", "/a b c", "1.0")),
        (b"GET /", ("GET", "/", None)),
        (b"GET / http/1.1", ("GET", "/ http/1.1", None)),
        (b"PRI * HTTP/2.0", ("PRI", "*", "2.0")),
        (b"-", (None, None, None)),
        (b"", (None, None, None)),
        (b"GET", (None, None, None)),
        (rb"\x16\x03\x01", (None, None, None)),
        (b"- - HTTP/1.0", (None, None, "1.0")),
        (b"GET  HTTP/1.1", ("GET", None, "1.1")),
    ],
)
def test_request_parts(request_line: bytes, parts: tuple[str | None, str | None, str | None]) -> None:
    assert request_parts(request_line) == parts


@pytest.mark.parametrize(
    ("host", "fields"),
    [
        (b"192.0.2.1", {"address": "192.0.2.1", "ip": "192.0.2.1"}),
        (b"2001:db8::1", {"address": "2001:db8::1", "ip": "2001:db8::1"}),
        (b"fe80::1%eth0", {"address": "fe80::1%eth0", "ip": "fe80::1"}),
        (b"192.0.2.1:8080", {"address": "192.0.2.1:8080", "ip": "192.0.2.1", "port": 8080}),
        (b"[2001:db8::1]:443", {"address": "[2001:db8::1]:443", "ip": "2001:db8::1", "port": 443}),
        (b"01.2.3.4", {"address": "01.2.3.4", "domain": "01.2.3.4"}),
        (b"999.1.1.1:80", {"address": "999.1.1.1:80", "domain": "999.1.1.1:80"}),
        (b"crawler.example.net", {"address": "crawler.example.net", "domain": "crawler.example.net"}),
    ],
)
def test_address(host: bytes, fields: dict[str, Any]) -> None:
    assert address(host) == fields


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1446041000) == "2015-10-28T14:03:20Z"
    assert iso_utc(-1) == "1969-12-31T23:59:59Z"
    assert iso_utc(253402300799) == "9999-12-31T23:59:59Z"
    with pytest.raises(ValueError, match="year 10000"):
        iso_utc(253402300800)


@given(st.integers(-62135596800, 253402300799))
def test_iso_utc_is_what_datetime_says(epoch: int) -> None:
    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=epoch)
    assert iso_utc(epoch) == expected.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + "Z"


def test_epoch_timestamps_out_of_range_are_a_reason() -> None:
    parser = AccessLogParser(time_format=TimeFormat(regex=r"(\d+)", date_format="epoch_s"))
    assert parser.parse(b'192.0.2.1 - - [1446041000] "GET / HTTP/1.1" 200 5')["@timestamp"] == (  # type: ignore[index]
        "2015-10-28T14:03:20Z"
    )
    reason = parser.parse(b'192.0.2.1 - - [99999999999999] "GET / HTTP/1.1" 200 5')
    assert reason == "timestamp '99999999999999' is outside the years 1000 to 9999"


# -- property tests: format a line as Apache does, parse it back ---------------------------------------------


def apache_escape(raw: bytes) -> bytes:
    """mod_log_config's ap_escape_logitem: \\" \\\\ and C whitespace escapes, \\xhh for other unprintables."""
    out = bytearray()
    for b in raw:
        c = bytes((b,))
        if c in b'"\\':
            out += b"\\" + c
        elif c in b"\b\n\r\t\v":
            out += b"\\" + {b"\b": b"b", b"\n": b"n", b"\r": b"r", b"\t": b"t", b"\v": b"v"}[c]
        elif b < 0x20 or b >= 0x7F:
            out += b"\\x%02x" % b
        else:
            out.append(b)
    return bytes(out)


def apache_time(moment: datetime, offset: int) -> bytes:
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    sign = "+" if offset >= 0 else "-"
    hh, mm = divmod(abs(offset), 60)
    return (
        f"{local.day:02d}/{MONTHS[local.month - 1]}/{local.year:04d}:{local:%H:%M:%S} {sign}{hh:02d}{mm:02d}"
    ).encode()


TCHAR = "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
hosts = st.ip_addresses().map(str)
users = st.one_of(st.none(), st.text(TCHAR + "@", min_size=1, max_size=12).filter(lambda u: u != "-"))
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=timezone.utc)
)
zones = st.sampled_from([0, -480, -300, 60, 330, 345, 540, -570, 840, -720])
methods = st.one_of(
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]), st.text(TCHAR, min_size=1)
)
# A target: any bytes but a space (a space would make "target HTTP/x" ambiguous); at least one byte.
targets = st.binary(min_size=1, max_size=60).filter(lambda t: b" " not in t)
versions = st.one_of(st.none(), st.sampled_from(["1.0", "1.1", "2.0", "3"]))
fields_text = st.one_of(st.none(), st.binary(max_size=60))
sizes = st.one_of(st.none(), st.integers(0, 10**12))


def decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


@settings(max_examples=400)
@given(
    vhost=st.one_of(
        st.none(),
        st.tuples(st.sampled_from(["www.example.com", "a.example", "192.0.2.80"]), st.integers(1, 65535)),
    ),
    host=hosts,
    user=users,
    moment=moments,
    zone=zones,
    method=methods,
    target=targets,
    version=versions,
    status=st.integers(100, 599),
    size=sizes,
    referrer=fields_text,
    agent=fields_text,
    combined=st.booleans(),
)
@example(
    vhost=None,
    host="::1",
    user=None,
    moment=datetime(2015, 10, 28, 14, 3, 7, tzinfo=timezone.utc),
    zone=0,
    method="GET",
    target=b'/"q"\\',
    version="1.1",
    status=200,
    size=None,
    referrer=b'say "hi"\\',
    agent="Café \x00\u2028".encode(),
    combined=True,
)
def test_formatted_lines_parse_back(
    vhost: tuple[str, int] | None,
    host: str,
    user: str | None,
    moment: datetime,
    zone: int,
    method: str,
    target: bytes,
    version: str | None,
    status: int,
    size: int | None,
    referrer: bytes | None,
    agent: bytes | None,
    combined: bool,
) -> None:
    request = method.encode() + b" " + target + (b"" if version is None else b" HTTP/" + version.encode())
    line = b'%s %s - %s [%s] "%s" %d %s' % (
        b"" if vhost is None else b"%s:%d" % (vhost[0].encode(), vhost[1]),
        host.encode(),
        b"-" if user is None else user.encode(),
        apache_time(moment, zone),
        apache_escape(request),
        status,
        b"-" if size is None else str(size).encode(),
    )
    line = line.lstrip(b" ")
    if combined:
        line += b' "%s" "%s"' % (
            b"-" if referrer is None else apache_escape(referrer),
            b"-" if agent is None else apache_escape(agent),
        )
    parser = AccessLogParser(log_format="auto")
    doc = parser.parse(line)
    assert isinstance(doc, dict), doc

    assert doc["@timestamp"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert doc["message"] == line.decode()
    assert doc["source"] == {"address": host, "ip": host}
    assert ipaddress.ip_address(doc["source"]["ip"]) == ipaddress.ip_address(host)
    assert doc.get("user") == (None if user is None else {"name": user})
    assert doc.get("url") == (None if target == b"-" else {"original": decoded(target)})
    http = doc["http"]
    assert http["response"] == {"status_code": status} | ({} if size is None else {"body": {"bytes": size}})
    assert http.get("version") == version
    request_fields = {}
    if method != "-":
        request_fields["method"] = method
    if combined and referrer not in (None, b"", b"-"):
        request_fields["referrer"] = decoded(referrer)  # type: ignore[arg-type]
    assert http.get("request", {}) == request_fields
    if combined and agent not in (None, b"", b"-"):
        assert doc["user_agent"] == {"original": decoded(agent)}  # type: ignore[arg-type]
    else:
        assert "user_agent" not in doc
    if vhost is None:
        assert "destination" not in doc
    else:
        assert doc["destination"]["port"] == vhost[1]
        assert doc["destination"]["address"] == vhost[0]

    # the same document from the JSON path, and from the explicit format
    (j,), _ = parser.parse_many_json([line])
    assert json.loads(j) == doc
    fmt = {(True, True): "vhost_combined", (False, True): "combined", (False, False): "common"}.get(
        (vhost is not None, combined)
    )
    if fmt is not None:  # (a virtual host before the common format has no name of its own: auto reads it)
        assert AccessLogParser(log_format=fmt).parse(line) == doc


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(st.none(), st.binary(max_size=120), st.sampled_from([COMMON, COMBINED, VHOST])), max_size=20
    )
)
def test_any_bytes_give_a_document_or_a_reason_never_an_error(values: list[bytes | None]) -> None:
    parser = AccessLogParser()
    docs, rejected = parser.parse_many(values)
    jdocs, jrejected = parser.parse_many_json(values)
    assert len(docs) + len(rejected) == len(values)
    assert jrejected == rejected
    assert [json.loads(d) for d in jdocs] == docs
    assert all(isinstance(reason, str) and reason for _, reason in rejected)


@settings(max_examples=200)
@given(
    st.binary(max_size=40).map(lambda b: b.replace(b'"', b"")),
    st.sampled_from([COMMON, COMBINED, VHOST]),
    st.integers(0, 200),
)
def test_mutated_lines_never_crash(junk: bytes, line: bytes, at: int) -> None:
    mutated = line[:at] + junk + line[at:]
    for fmt in LOG_FORMATS:
        parser = AccessLogParser(log_format=fmt)
        doc = parser.parse(mutated)
        assert isinstance(doc, (dict, str))
        jdocs, rejected = parser.parse_many_json([mutated])
        if isinstance(doc, dict):
            assert [json.loads(j) for j in jdocs] == [doc]
        else:
            assert rejected == [(0, doc)]
