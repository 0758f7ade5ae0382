"""Access-log lines behind a syslog prefix, and text in front of a line that would shift its fields (issue 10).

A line is parsed with the right fields (a recognised syslog prefix goes to ``log.syslog``) or gets a reason; never
a document whose client address, user or other fields were taken from text in front of the line. The prefixes
here are built from the RFCs' descriptions, not from the parser's patterns."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core.accesslog import LOG_FORMATS, AccessLogParser

LINE = b'203.0.113.9 - - [28/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 512'
COMBINED_LINE = LINE + b' "https://example.com/" "curl/8.5.0"'
ISSUE_LINE = b"Nov 28 10:00:01 web1 httpd[812]: " + LINE
GEO = {"geo": {"country_iso_code": "NL", "location": {"lat": 52.4, "lon": 4.9}}}
CORE = ("@timestamp", "source", "user", "url", "http", "user_agent")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def lookup(ip: str) -> dict[str, Any] | None:
    return GEO if ip == "203.0.113.9" else None


def core(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in CORE if k in doc}


def both(parser: AccessLogParser, line: bytes) -> dict[str, Any] | str:
    """``parse`` of the line, checked to equal the JSON path's document (or reason)."""
    doc = parser.parse(line)
    jdocs, rejected = parser.parse_many_json([line])
    if isinstance(doc, str):
        assert (jdocs, rejected) == ([], [(0, doc)])
    else:
        assert rejected == [] and [json.loads(j) for j in jdocs] == [doc]
    return doc


# -- the issue's line and each recognised form ----------------------------------------------------------------


def test_the_issue_line_keeps_its_client_its_geoip_and_no_user() -> None:
    parser = AccessLogParser(geoip=lookup)
    doc = both(parser, ISSUE_LINE)
    assert isinstance(doc, dict), doc
    assert doc["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9"} | GEO
    assert "user" not in doc and "destination" not in doc
    assert doc["log"] == {"syslog": {"hostname": "web1", "appname": "httpd", "procid": "812"}}
    assert doc["message"] == ISSUE_LINE.decode()  # the line exactly as logged, prefix and all
    plain = parser.parse(LINE)
    assert isinstance(plain, dict)
    assert doc == plain | {"message": ISSUE_LINE.decode(), "log": doc["log"]}


@pytest.mark.parametrize(
    ("prefix", "syslog"),
    [
        # RFC 3164 as syslog daemons write files: no PRI; day space-padded; tag with or without pid, or none
        (b"Nov 28 10:00:01 web1 httpd[812]: ", {"hostname": "web1", "appname": "httpd", "procid": "812"}),
        (b"Nov  8 10:00:01 web1 httpd: ", {"hostname": "web1", "appname": "httpd"}),
        (
            b"Nov 08 10:00:01 10.0.0.5 apache2[4]: ",
            {"hostname": "10.0.0.5", "appname": "apache2", "procid": "4"},
        ),
        (b"Nov 28 10:00:01 web1 ", {"hostname": "web1"}),
        (b"Nov 28 10:00:01 httpd[812]: ", {"appname": "httpd", "procid": "812"}),  # no host name
        (b"Nov 28 10:00:01.250 web1 nginx: ", {"hostname": "web1", "appname": "nginx"}),
        # RFC 3164 on the wire: <PRI> first (local0.info = 16 * 8 + 6)
        (
            b"<134>Nov 28 10:00:01 web1 httpd[812]: ",
            {
                "priority": 134,
                "facility": {"code": 16},
                "severity": {"code": 6},
                "hostname": "web1",
                "appname": "httpd",
                "procid": "812",
            },
        ),
        (
            b"<0>Nov 28 10:00:01 h t: ",
            {"priority": 0, "facility": {"code": 0}, "severity": {"code": 0}}
            | {
                "hostname": "h",
                "appname": "t",
            },
        ),
        # rsyslog's RSYSLOG_FileFormat (ISO time) and the traditional format with a high-precision time
        (
            b"2026-11-28T10:00:01+00:00 web1 httpd[812]: ",
            {"hostname": "web1", "appname": "httpd", "procid": "812"},
        ),
        (
            b"2026-11-28T10:00:01.123456+01:00 web-1.example.net httpd: ",
            {"hostname": "web-1.example.net", "appname": "httpd"},
        ),
        (
            b"<13>2026-11-28T10:00:01Z web1 httpd: ",
            {"priority": 13, "facility": {"code": 1}}
            | {
                "severity": {"code": 5},
                "hostname": "web1",
                "appname": "httpd",
            },
        ),
        # RFC 5424: every field, nil fields, structured data (with escapes), a BOM before the message
        (
            b"<165>1 2026-11-28T10:00:01.003Z web1 httpd 812 access - ",
            {
                "priority": 165,
                "facility": {"code": 20},
                "severity": {"code": 5},
                "version": "1",
                "hostname": "web1",
                "appname": "httpd",
                "procid": "812",
                "msgid": "access",
            },
        ),
        (
            b"<14>1 - - - - - - ",
            {"priority": 14, "facility": {"code": 1}, "severity": {"code": 6}, "version": "1"},
        ),
        (
            b'<14>1 2026-11-28T10:00:01+00:00 web1 httpd - - [origin ip="10.0.0.5"][x@1 q="a \\"b\\" \\]"] ',
            {"priority": 14, "facility": {"code": 1}, "severity": {"code": 6}, "version": "1"}
            | {"hostname": "web1", "appname": "httpd"},
        ),
        (
            b"<14>1 2026-11-28T10:00:01Z web1 httpd - - - \xef\xbb\xbf",
            {"priority": 14, "facility": {"code": 1}, "severity": {"code": 6}, "version": "1"}
            | {"hostname": "web1", "appname": "httpd"},
        ),
    ],
)
@pytest.mark.parametrize("line", [LINE, COMBINED_LINE], ids=["common", "combined"])
def test_a_syslog_prefix_is_recognised_and_its_fields_kept(
    prefix: bytes, syslog: dict[str, Any], line: bytes
) -> None:
    for fmt in ("auto", "combined" if line is COMBINED_LINE else "common"):
        parser = AccessLogParser(log_format=fmt, geoip=lookup)
        doc = both(parser, prefix + line)
        assert isinstance(doc, dict), doc
        plain = parser.parse(line)
        assert isinstance(plain, dict)
        assert doc.pop("log") == {"syslog": syslog}
        assert doc.pop("message") == (prefix + line).decode("utf-8", "backslashreplace")
        assert doc == {k: v for k, v in plain.items() if k != "message"}


def test_a_prefix_before_a_virtual_host_line() -> None:
    vhost_line = b"www.example.com:443 " + COMBINED_LINE
    for fmt in ("auto", "vhost_combined"):
        doc = both(AccessLogParser(log_format=fmt), b"<134>Nov 28 10:00:01 web1 httpd[812]: " + vhost_line)
        assert isinstance(doc, dict), doc
        assert doc["destination"] == {"address": "www.example.com", "domain": "www.example.com", "port": 443}
        assert doc["source"]["address"] == "203.0.113.9"
        assert doc["log"]["syslog"]["hostname"] == "web1"


def test_documents_of_one_process_share_the_log_fields() -> None:
    docs, rejected = AccessLogParser().parse_many(
        [ISSUE_LINE, ISSUE_LINE.replace(b"10:00:01 web1", b"10:00:02 web1")]
    )
    assert not rejected
    assert docs[0]["log"] is docs[1]["log"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # a recognised prefix before something that is no access-log line: the reason says so
        (
            b"Nov 28 10:00:01 web1 sshd[99]: Accepted publickey for root",
            "does not match the combined, common",
        ),
        (b"Nov 28 10:00:01 web1 sshd[99]: Accepted publickey for root", "after its syslog prefix"),
        # a PRI above 191 is no syslog PRI: the text is not taken for a prefix
        (
            b"<192>Nov 28 10:00:01 web1 httpd: " + LINE,
            "does not match the combined, common or vhost_combined",
        ),
    ],
)
def test_reasons_with_a_prefix(line: bytes, reason: str) -> None:
    doc = both(AccessLogParser(), line)
    assert isinstance(doc, str) and reason in doc


# -- text in front of the line that is no syslog prefix: a reason, not shifted fields -----------------------


@pytest.mark.parametrize(
    "prefix",
    [
        b"web1 httpd[812]: ",  # a forwarder that dropped the time
        b"Nov 28 10:00:01 web1 httpd [812]: ",  # a space before the pid
        b"Nov 28 2026 10:00:01 web1 httpd: ",  # a year in the time
        b"junk words here ",
        b"a - b ",
        b"- - ",
    ],
)
@pytest.mark.parametrize("fmt", LOG_FORMATS)
def test_text_in_front_that_would_shift_the_fields_is_a_reason(prefix: bytes, fmt: str) -> None:
    line = prefix + (b"www.example.com:443 " + COMBINED_LINE if fmt == "vhost_combined" else COMBINED_LINE)
    doc = both(AccessLogParser(log_format=fmt), line)
    assert isinstance(doc, str), doc
    assert doc.startswith("does not match the ")
    assert "read as it stands, the client address would be " in doc
    assert "(text in front of the line?)" in doc


def test_the_reason_names_the_shifted_reading() -> None:
    doc = AccessLogParser(log_format="combined").parse(b"web1 httpd[812]: " + COMBINED_LINE)
    assert doc == (
        "does not match the combined format: read as it stands, the client address would be 'web1' and the "
        "user name '203.0.113.9 - -' (text in front of the line?)"
    )


# -- user names with spaces: taken where they cannot be a shifted reading -------------------------------------


@pytest.mark.parametrize("fmt", LOG_FORMATS)
@pytest.mark.parametrize("name", [b"John Smith", b"John Q Smith", b"CN=Jane Doe,O=Example Corp"])
def test_a_user_name_with_spaces_after_ident_dash_is_the_user(fmt: str, name: bytes) -> None:
    line = COMBINED_LINE.replace(b"- - [", b"- " + name + b" [")
    if fmt == "vhost_combined":
        line = b"www.example.com " + line
    doc = both(AccessLogParser(log_format=fmt), line)
    assert isinstance(doc, dict), doc
    assert doc["user"] == {"name": name.decode()}
    assert doc["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9"}
    assert ("destination" in doc) == (fmt == "vhost_combined")


@pytest.mark.parametrize(
    "head",
    [
        b"203.0.113.9 identd John Q Smith",  # an ident and a name with spaces: where does the name start?
        b"203.0.113.9 - John - Smith",  # a word "-" (an ident?) inside the name
        b"198.51.100.7 - proxy 203.0.113.9 x",  # an IP address inside the name
    ],
)
def test_a_user_name_with_spaces_that_may_be_shifted_fields_is_a_reason(head: bytes) -> None:
    line = head + COMBINED_LINE.removeprefix(b"203.0.113.9 - -")
    for fmt in ("auto", "combined"):
        doc = both(AccessLogParser(log_format=fmt), line)
        assert isinstance(doc, str), doc
        assert "read as it stands" in doc


# -- property: any prefix in front of any valid line --------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.text(ALNUM + "-._", min_size=1, max_size=12).filter(lambda s: s[0].isalnum() and s[-1].isalnum())
ipv4 = st.ip_addresses(v=4).map(str)
words = st.text(ALNUM + "-", min_size=1, max_size=8).filter(lambda w: w != "-")


@st.composite
def access_lines(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """A valid access-log line (common or combined, maybe a virtual host in front) and what it holds."""
    host = draw(st.one_of(st.ip_addresses().map(str), names.map(lambda n: n + ".example.net")))
    is_ip = not host.endswith(".example.net")
    # identd names only with IP clients: "host.example.net identd John Smith" and "x - host.example.net identd
    # John" cannot be told apart (see test_a_user_name_with_spaces_that_may_be_shifted_fields_is_a_reason)
    ident = draw(st.sampled_from(["-", "identd"])) if is_ip else "-"
    user_words = draw(st.lists(words, min_size=0, max_size=1 if ident != "-" else 3))
    moment = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
    stamp = f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"
    path = "/" + draw(st.text(ALNUM + "/.-_?=&", max_size=20))
    status = draw(st.integers(100, 599))
    size = draw(st.one_of(st.just("-"), st.integers(0, 10**9).map(str)))
    line = f'{host} {ident} {" ".join(user_words) or "-"} [{stamp}] "GET {path} HTTP/1.1" {status} {size}'
    combined = draw(st.booleans())
    referrer = agent = None
    if combined:
        referrer = draw(st.one_of(st.none(), st.just("https://example.com/")))
        agent = draw(st.one_of(st.none(), st.text(ALNUM + " /.;()", min_size=1, max_size=30)))
        line += f' "{referrer or "-"}" "{agent or "-"}"'
    vhost = draw(st.one_of(st.none(), st.just("www.example.com:443"), st.just("vh.example")))
    if vhost is not None:
        line = f"{vhost} {line}"
    expect = {
        "@timestamp": moment.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "address": host,
        "user": " ".join(user_words) or None,
        "url": path,
        "status": status,
        "size": None if size == "-" else int(size),
        "referrer": referrer,
        "agent": agent,
        "format": ("vhost_combined" if combined else None)
        if vhost is not None
        else ("combined" if combined else "common"),
    }
    return line.encode(), expect


pris = st.integers(0, 191)


@st.composite
def rfc3164(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """``[<PRI>]Mmm dd hh:mm:ss [HOST ][TAG[PID]: ]`` or the same with an ISO time (rsyslog), and its fields."""
    pri = draw(st.one_of(st.none(), pris))
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
    if draw(st.booleans()):
        clock = f"{MONTHS[moment.month - 1]} {moment.day:{draw(st.sampled_from(['2d', '02d']))}} {moment:%H:%M:%S}"
    else:
        fraction = draw(st.sampled_from(["", ".5", ".123456"]))
        zone = draw(st.sampled_from(["Z", "+00:00", "-05:00", "+0530"]))
        clock = f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}{zone}"
    hostname = draw(st.one_of(st.none(), names, ipv4))
    tag = draw(st.one_of(st.none(), names))
    pid = draw(st.one_of(st.none(), st.integers(1, 4_000_000).map(str))) if tag else None
    if hostname is None and tag is None:
        hostname = "web1"  # (a bare time: the client address would be read as its host name)
    text = ("" if pri is None else f"<{pri}>") + clock + " "
    text += "" if hostname is None else hostname + " "
    text += "" if tag is None else tag + ("" if pid is None else f"[{pid}]") + ": "
    fields: dict[str, Any] = {} if pri is None else {"priority": pri}
    fields |= {k: v for k, v in (("hostname", hostname), ("appname", tag), ("procid", pid)) if v is not None}
    return text.encode(), fields


sd_values = st.text(ALNUM + ' "]\\=-', max_size=10).map(
    lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
)
sd_elements = st.tuples(names, st.lists(st.tuples(names, sd_values), max_size=2)).map(
    lambda e: "[" + e[0] + "".join(f' {k}="{v}"' for k, v in e[1]) + "]"
)


def nil_or(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """RFC 5424's NILVALUE ``-`` or one of ``values``."""
    return st.one_of(st.just("-"), values)


@st.composite
def rfc5424(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [BOM]`` and its fields."""
    pri = draw(pris)
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
    stamp = draw(nil_or(st.just(f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z")))
    host, app, procid, msgid = (draw(nil_or(names)) for _ in range(4))
    sd = draw(nil_or(st.lists(sd_elements, min_size=1, max_size=2).map("".join)))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    text = f"<{pri}>1 {stamp} {host} {app} {procid} {msgid} {sd} {bom}"
    fields: dict[str, Any] = {"priority": pri, "version": "1"}
    for name, value in (("hostname", host), ("appname", app), ("procid", procid), ("msgid", msgid)):
        if value != "-":
            fields[name] = value
    return text.encode(), fields


garbage = st.lists(st.text(ALNUM + "-:[]._<>", min_size=1, max_size=10), min_size=1, max_size=5).map(
    lambda ws: (" ".join(ws) + " ").encode()
)


def expect_core(doc: dict[str, Any] | str, expect: dict[str, Any], tail: bool = True) -> None:
    """The generated line's own values, in its document (``tail``: referrer and agent read too)."""
    assert isinstance(doc, dict), doc
    assert doc["source"]["address"] == expect["address"]
    assert doc["@timestamp"] == expect["@timestamp"]
    assert doc.get("user") == (None if expect["user"] is None else {"name": expect["user"]})
    assert doc["url"] == {"original": expect["url"]}
    assert doc["http"]["response"].get("status_code") == expect["status"]
    assert doc["http"]["response"].get("body", {}).get("bytes") == expect["size"]
    assert doc["http"]["request"].get("referrer") == (expect["referrer"] if tail else None)
    assert doc.get("user_agent", {}).get("original") == (expect["agent"] if tail else None)


@settings(max_examples=500)
@given(access=access_lines(), prefix=st.one_of(rfc3164(), rfc5424()))
@example(  # the issue's line
    access=(LINE, {}),
    prefix=(b"Nov 28 10:00:01 web1 httpd[812]: ", {"hostname": "web1", "appname": "httpd", "procid": "812"}),
)
def test_a_syslog_prefix_before_any_line_gives_the_line_own_fields(
    access: tuple[bytes, dict[str, Any]], prefix: tuple[bytes, dict[str, Any]]
) -> None:
    line, expect = access
    text, syslog = prefix
    if syslog.get("priority") is not None:
        syslog |= {
            "facility": {"code": syslog["priority"] >> 3},
            "severity": {"code": syslog["priority"] & 7},
        }
    formats = ["auto"] + ([expect["format"]] if expect.get("format") else [])
    for fmt in formats:
        parser = AccessLogParser(log_format=fmt, geoip=lookup)
        plain = both(parser, line)
        if expect:
            expect_core(plain, expect)
        assert isinstance(plain, dict), plain
        doc = both(parser, text + line)
        assert isinstance(doc, dict), doc  # a recognised prefix before a line that parses: a document
        assert core(doc) == core(plain)
        assert doc.get("destination") == plain.get("destination")
        assert doc.get("log") == ({"syslog": syslog} if syslog else None)


@settings(max_examples=500)
@given(
    access=access_lines(),
    prefix=st.one_of(garbage, rfc3164().map(lambda p: p[0]), rfc5424().map(lambda p: p[0])),
    more=garbage,
    order=st.sampled_from(["prefix", "garbage+prefix", "prefix+garbage"]),
)
def test_any_text_in_front_of_a_line_gives_its_own_fields_or_a_reason(
    access: tuple[bytes, dict[str, Any]], prefix: bytes, more: bytes, order: str
) -> None:
    """Random words, syslog prefixes with words before or after them: never fields from the text in front."""
    line, expect = access
    front = {"prefix": prefix, "garbage+prefix": more + prefix, "prefix+garbage": prefix + more}[order]
    for fmt in LOG_FORMATS:
        parser = AccessLogParser(log_format=fmt, geoip=lookup)
        plain = both(parser, line)
        doc = both(parser, front + line)
        if isinstance(doc, str):
            assert doc  # a reason
            continue
        # (a word in front may make a line good: the virtual host that vhost_combined wants)
        expect_core(doc, expect, tail=fmt != "common")
        if isinstance(plain, dict):
            assert core(doc) == core(plain)
        assert doc["source"]["address"] == expect["address"]
        assert doc["source"].get("geo") == (GEO["geo"] if expect["address"] == "203.0.113.9" else None)
