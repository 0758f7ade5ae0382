"""Apache access-log lines to Elastic Common Schema documents: fast, pure, one pass per line.

Formats (mod_log_config's names; ``auto`` tells them apart per line):

- ``common``: ``%h %l %u %t "%r" %>s %b``
- ``combined``: ``common`` + ``"%{Referer}i" "%{User-Agent}i"``
- ``vhost_combined``: ``%v:%p`` (or just ``%v``) before ``combined`` (Debian's format)
- ``auto``: any of these, and ``vhost`` + ``common``

Text after the last field (``"-"``, ``X-Forwarded-For="..."`` that some sites append) is ignored, and so is
a number between the size and the referrer (``%D`` or ``%T`` added to the format).

A syslog prefix in front of the line (the log went through syslog) is recognised in any format and its fields go
to ``log.syslog``: RFC 3164 ``[<PRI>]Mmm dd hh:mm:ss [HOST ][TAG[PID]: ]`` (the day may be space-padded),
rsyslog's ``[<PRI>]2026-11-28T10:00:01+00:00 [HOST ][TAG[PID]: ]`` and RFC 5424
``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD|-] ``. ``@timestamp`` stays the access line's own time.

The document (nested, as Elasticsearch stores it; a ``-`` field is left out, never ``null``)::

    {"@timestamp": "2015-10-28T14:03:07Z",        # the line's own event time, UTC
     "message": "<the raw line>",
     "source": {"address": "81.2.69.160", "ip": "81.2.69.160"},   # or "domain" for a host name,
                                                  # "port" for ip:port; + "geo"/"as" with a GeoIP lookup
     "user": {"name": "frank"},                   # %u
     "http": {"request": {"method": "GET", "referrer": "https://example.com/"},
              "version": "1.1",
              "response": {"status_code": 200, "body": {"bytes": 2326}}},
     "url": {"original": "/apache_pb.gif?q=1"},
     "user_agent": {"original": "Mozilla/5.0 ..."},
     "destination": {"address": "www.example.com", "domain": "www.example.com", "port": 443},   # %v:%p
     "log": {"syslog": {"priority": 134, "facility": {"code": 16}, "severity": {"code": 6},   # a syslog
                        "hostname": "web1", "appname": "httpd", "procid": "812"}},   # prefix (+ version, msgid)
     "kafka": {"topic": "weblogs", "partition": 0, "offset": 42}}  # parse_many with a topic

Rules, decided here once:

- **Escapes.** Apache (since 2.0.46) writes ``"`` and ``\\`` inside ``%r``/``%i``/``%u`` as ``\\"`` and
  ``\\\\``, the C whitespace escapes ``\\b \\n \\r \\t \\v``, and every other non-printable or non-ASCII
  byte as ``\\xhh`` (nginx writes ``\\xHH`` too). Field values (``url.original``, ``user_agent.original``,
  ``http.request.referrer``, ``user.name``) are unescaped back to the bytes the client sent and decoded as
  UTF-8. ``message`` is the line exactly as logged.
- **Bytes that are not UTF-8** (after unescaping, or raw in the line) are written as ``\\xhh`` text —
  ``"backslashreplace"``, Apache's own notation — so nothing is lost and the result is always valid text.
- **The request line** ``%r`` is ``METHOD TARGET [HTTP/x.y]``: method (an RFC 9110 token, case kept),
  target (``url.original``; may contain spaces, which some clients send and Apache logs), version
  (``HTTP/1.1`` gives ``"1.1"``). A request that is not of that form — ``"-"`` (timeouts, 408), TLS
  handshakes sent to a plain port (``"\\x16\\x03\\x01..."``), scanner garbage — keeps the line and its
  other fields but has no method, URL or version; ``message`` holds it.
- **Sizes.** ``%b`` and ``%O`` (Debian's ``combined`` and ``vhost_combined`` log ``%O``, which counts the
  headers too) both become ``http.response.body.bytes``, as in Filebeat and Logstash: the line does not say
  which one it is. A size above ``2**63 - 1`` (what an index's ``long`` holds) gets a reason.
- A line whose structure, status code (three digits), size or timestamp is wrong gets a reason instead
  (a ``str``); :meth:`AccessLogParser.parse_many` returns those with their index.
- **Never shifted fields.** Text in front of a line that is no recognised syslog prefix (a forwarder's own
  prefix, words) would be read as client, ident and user, with the line's own client inside the user name. So a
  user name with spaces (which Apache logs as it is) is taken only after the ident ``-`` and when none of its
  words is ``-`` or an IP address, and a client address ``-`` is never taken after a virtual host or a syslog
  prefix; otherwise the line gets a reason ``does not match ...: read as it stands, the client address would
  be ... (text in front of the line?)``.
- Documents share nested dicts of repeated values (``source``, ``url``, ``user_agent``): treat a document
  as read-only (serialise it), or copy before changing it.
- ``user.name`` is left out for ``-`` and for ``""`` (Apache's way of logging an empty user name).

Speed: the line-by-line work of the JSON path runs in logtap's compiled kernel (``native/src/lib.rs``): it cuts
a line of three quoted fields as :func:`_Engine.fields` does, looks every field up in its cache of JSON pieces,
and joins the document (and, for :meth:`AccessLogParser.bulk`, its bulk action line) from them. The pieces are
made here, by the functions below, once per distinct value (a host with its GeoIP answer, a timestamp, a request,
a referrer, a user agent, a user, a virtual host). The kernel writes two itself, from rules it holds for both
ways: the ``@timestamp`` of an Apache time (``apache_epoch``, ``iso_utc``) and the source of a client that is an
IP address (``ip_address``, as :func:`_ip` reads it), whose GeoIP part :func:`_block_lookup` gives once per
block where the answer holds for the whole block. A line the kernel does not take (a syslog prefix, an unusual
shape, a piece that says no) is read here: :func:`_Engine.fields` cuts it with ``bytes.split`` or one compiled
regex per format, then a lenient one for servers that do not escape quotes. The two ways give the same bytes
(``tests/unit/test_kernel_parity.py``). :meth:`AccessLogParser.parse` builds the document as a dict.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from airflow_provider_logtap._kernel import Documents, ip_address, iso_utc
from airflow_provider_logtap.core.eventtime import END_EPOCH, FIRST_EPOCH, EventTimeReader, TimeFormat
from airflow_provider_logtap.errors import ConfigurationError, one_of

LogFormat = Literal["combined", "common", "vhost_combined", "auto"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
TOMBSTONE = "tombstone (the record has no value)"
CACHE_LIMIT = 100_000
#: GeoIP answers whose JSON is kept (one per network seen lately): each holds the lookup's dict alive, ~2 KB; the
#: kernel keeps as many distinct GeoIP parts (~700 bytes each).
GEO_PIECES_LIMIT = 4096

# A quoted field as Apache writes it: no bare ", backslash escapes anything.
_Q = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
_HEAD = rb"(\S+) (\S+) (\S+) \[([^\]]*)\] " + _Q + rb" (\S+) (\S+)"
_TAIL = rb" " + _Q + rb" " + _Q
_STRICT = {
    "common": rb"()" + _HEAD + rb"()()",
    "combined": rb"()" + _HEAD + _TAIL,
    "vhost_combined": rb"(\S+) " + _HEAD + _TAIL,
    "auto": rb"(?:(\S+) )??" + _HEAD + rb"(?:" + _TAIL + rb")?",
}
# For servers (or old Apache) that do not escape quotes: the request runs to the first `" status size`,
# the referrer to the first `" "`, the user agent to the last quote. The user may contain spaces, and a number
# between the size and the referrer (%D or %T added to the format) is skipped.
_LHEAD = rb'(\S+) (\S+) (.+?) \[([^\]]*)\] "(.*?)" (\d{3}|-) (\d+|-)'
_LTAIL = rb'(?: \d+)? "(.*?)" "(.*)"'
_LREST = rb"(?:" + _LTAIL + rb"|(?: |$))"  # auto: the combined tail or none
_LENIENT = {
    "common": rb"()" + _LHEAD + rb"()()(?: |$)",
    "combined": rb"()" + _LHEAD + _LTAIL,
    "vhost_combined": rb"(\S+) " + _LHEAD + _LTAIL,
    "auto": rb"(?:(\S+) )??" + _LHEAD + _LREST,
}
# auto's other reading when the first one (no virtual host) would shift the fields: a virtual host in front.
_LENIENT_AUTO_VHOST = rb"(\S+) " + _LHEAD + _LREST
# A syslog prefix in front of the access-log line (the line was forwarded by syslog and its log stored as such).
# One definition of each piece; tried only when the strict regex does not match (the fast path never sees a
# prefixed line: the prefix adds tokens before the timestamp).
_PRI = rb"<(?P<pri>19[01]|1[0-8][0-9]|[1-9]?[0-9])>"  # 0-191: facility * 8 + severity
_ISO_TIME = (
    rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})"
)
_BSD_TIME = (
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?: [1-9]|[0-3][0-9]) [0-9]{2}:[0-9]{2}:[0-9]{2}"
    rb"(?:\.[0-9]{1,9})?"
)
_TAG = rb"(?P<app>[^\s\[\]:]+)(?:\[(?P<procid>[^\s\[\]]+)\])?: "  # tag[pid]: or tag:
_SD = rb'(?:\[[^\s=\]"]+(?: [^\s=\]"]+="[^"\\]*(?:\\.[^"\\]*)*")*\])+'  # [id param="value" ...]...
# RFC 3164 (BSD, what syslog daemons write to files; <PRI> only on the wire) and rsyslog's ISO-time file format:
# [<PRI>]TIME [HOST ][TAG[PID]: ]. A host name does not end in ":" (then it is the tag of a line without one).
_RFC3164 = (
    rb"(?:"
    + _PRI
    + rb")?(?:"
    + _BSD_TIME
    + rb"|"
    + _ISO_TIME
    + rb") (?:(?P<host>\S*[^\s:]) )?(?:"
    + _TAG
    + rb")?"
)
# RFC 5424: <PRI>VERSION TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA, "-" for nil; a BOM may open the MSG.
_RFC5424 = (
    _PRI
    + rb"(?P<version>[1-9][0-9]?) (?:-|"
    + _ISO_TIME
    + rb") (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?:-|"
    + _SD
    + rb") (?:\xef\xbb\xbf)?"
)
_SYSLOG_FIELDS = ("pri", "version", "host", "app", "procid", "msgid")
_DESCRIBE = {
    "common": "the common format",
    "combined": "the combined format",
    "vhost_combined": "the vhost_combined format",
    "auto": "the combined, common or vhost_combined format",
}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PROTOCOL = re.compile(rb"HTTP/(\d(?:\.\d)?)")
_ESCAPE = re.compile(rb'\\(x[0-9A-Fa-f]{2}|[\\"bnrtvf])')
_ESCAPES = {
    b"\\": b"\\",
    b'"': b'"',
    b"b": b"\b",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
    b"f": b"\f",
}
_IP_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})|\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\]:(\d{1,5})")


def _json_stdlib(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_json: Callable[[Any], bytes]
"""Compact UTF-8 JSON of a value (orjson when it is installed: the ``search`` extra has it)."""
try:
    from orjson import dumps as _json
except ImportError:  # pragma: no cover - the search extra installs orjson
    _json = _json_stdlib


GeoLookup = Callable[[str], Mapping[str, Any] | None]
"""What enriches a client address: ``ip`` to the fields to merge under ``source`` (``geo``, ``as``) or None."""

_Fields = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes | None, bytes | None, bytes]


def _unescape_one(m: re.Match[bytes]) -> bytes:
    s = m.group(1)
    return bytes((int(s[1:], 16),)) if len(s) == 3 else _ESCAPES[s]


def unescape(value: bytes) -> bytes:
    """The bytes behind Apache's (and nginx's) log escapes: ``\\"``, ``\\\\``, ``\\n`` ..., ``\\xhh``."""
    return _ESCAPE.sub(_unescape_one, value) if b"\\" in value else value


def text(value: bytes) -> str:
    """A logged field as text: unescaped, decoded as UTF-8, bytes that are not UTF-8 as ``\\xhh``."""
    raw = unescape(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def request_parts(request: bytes) -> tuple[str | None, str | None, str | None]:
    """``(method, target, version)`` of a logged ``%r``; ``None`` for each part it does not have."""
    parts = request.split(b" ")
    if len(parts) < 2 or not _TOKEN.fullmatch(parts[0]):
        return (None, None, None)
    version = None
    if len(parts) > 2:
        proto = _PROTOCOL.fullmatch(parts[-1])
        if proto is not None:
            version = proto.group(1).decode("ascii")
            parts.pop()
    target = b" ".join(parts[1:])
    return (
        None if parts[0] == b"-" else parts[0].decode("ascii"),
        None if target in (b"", b"-") else text(target),
        version,
    )


def address(host: bytes) -> dict[str, Any]:
    """ECS fields of a logged client or server address: ``address`` and ``ip`` (+ ``port``) or ``domain``."""
    h = host.decode("utf-8", "backslashreplace")
    ip = _ip(h)
    if ip is not None:
        return {"address": h, "ip": ip}
    m = _IP_PORT.fullmatch(h)
    if m is not None:
        ip = _ip(m[1] or m[3])
        if ip is not None:
            return {"address": h, "ip": ip, "port": int(m[2] or m[4])}
    return {"address": h, "domain": h}


def _ip(h: str) -> str | None:
    """``h`` if it is an IP address (without an IPv6 zone: ``fe80::1%eth0`` is ``fe80::1``), else None.

    An IP address is what glibc's ``inet_pton`` reads as one (the kernel's ``ip_address``, which also takes the
    kernel's own source pieces)."""
    raw = h.encode("utf-8", "surrogatepass")
    if ip_address(raw) is not None:
        return h
    if b"%" in raw and b":" in raw:
        packed = ip_address(raw.partition(b"%")[0])
        if packed is not None and len(packed) == 16:
            return h.partition("%")[0]
    return None


def _block_lookup(geoip: GeoLookup | None) -> Callable[[str], tuple[Mapping[str, Any] | None, bool]]:
    """``ip -> (answer, whole_block)``: the lookup's answer, and whether every address of the kernel's
    ``geo_block`` of ``ip`` has it. A :class:`~airflow_provider_logtap.enrich.geoip.GeoIP`'s ``lookup`` knows
    (its ``lookup_block``); any other lookup is asked per address."""
    if geoip is None:
        return lambda ip: (None, True)
    owner = getattr(geoip, "__self__", None)
    lookup_block = getattr(owner, "lookup_block", None)
    if lookup_block is not None and geoip == getattr(owner, "lookup", None):
        return lookup_block  # type: ignore[no-any-return]
    return lambda ip: (geoip(ip), False)


class _Reject(Exception):
    """A line has no document; the message is the reason."""


#: The largest response size a document holds: ECS ``http.response.body.bytes`` is a ``long`` (a larger number
#: is no size a server sent, and neither JSON encoder nor index could take it).
MAX_SIZE = 2**63 - 1


def size_of(size: bytes) -> int | None:
    """The response size of a logged ``%b``/``%O``: ``None`` for ``-``."""
    if size == b"-":
        return None
    if size.isdigit():
        n = int(size)
        if n <= MAX_SIZE:
            return n
        raise _Reject(f"response size {size.decode('ascii')} is larger than {MAX_SIZE}")
    raise _Reject(f"bad response size {size.decode('utf-8', 'backslashreplace')!r}")


def _or_none(make: Callable[[bytes], bytes]) -> Callable[[bytes], bytes | None]:
    """``make`` for the kernel: ``None`` where it rejects (the line then takes the Python way, which says why)."""

    def piece(value: bytes) -> bytes | None:
        try:
            return make(value)
        except _Reject:
            return None

    return piece


_SYSLOG_MATCHES = (re.compile(_RFC5424).match, re.compile(_RFC3164).match)


def _syslog_prefix(line: bytes) -> tuple[int, bytes] | None:
    """``(where the access-log line starts, key)`` of a syslog prefix in front of ``line``, or None. The key is
    the prefix's fields without its time (``pri version host app procid msgid``, ``-`` for each it lacks):
    the same for all lines of one process, so its conversion is cached."""
    for match in _SYSLOG_MATCHES:
        m = match(line)
        if m is not None:
            groups = m.groupdict()
            return m.end(), b" ".join(groups.get(name) or b"-" for name in _SYSLOG_FIELDS)
    return None


def _syslog(key: bytes) -> dict[str, Any]:
    """ECS ``log`` fields of a syslog prefix's key: ``{"syslog": {"priority", "facility": {"code"},
    "severity": {"code"}, "version", "hostname", "appname", "procid", "msgid"}}``, each only when present
    (nothing for a prefix that is only a time)."""
    pri, *names = key.split(b" ")
    syslog: dict[str, Any] = {}
    if pri != b"-":
        code = int(pri)
        syslog["priority"] = code
        syslog["facility"] = {"code": code >> 3}
        syslog["severity"] = {"code": code & 7}
    for name, value in zip(("version", "hostname", "appname", "procid", "msgid"), names, strict=True):
        if value != b"-":
            syslog[name] = value.decode("utf-8", "backslashreplace")
    return {"syslog": syslog} if syslog else {}


def _shifted(m: re.Match[bytes], syslog: bytes) -> bool:
    """Whether a regex's reading of a line may have shifted its fields, which happens when text stands in front
    of the client address (a syslog prefix that is not recognised, a virtual host, words): then the line's own
    client would be inside the user name, or the client read would be its ident ``-``. A client address is
    never ``-`` after a virtual host or a syslog prefix; a user name with spaces (only the lenient regexes read
    those) is taken only after the ident ``-`` and when none of its words is ``-`` or an IP address (a client
    address and its ident, as in ``Nov 28 10:00:01 web1 httpd[812]: 203.0.113.9 - -``)."""
    if m[2] == b"-" and (m[1] or syslog):
        return True
    user: bytes = m[4]
    if b" " not in user:
        return False
    if m[3] != b"-":
        return True
    return any(word == b"-" or "ip" in address(word) for word in user.split(b" "))


class _Engine:
    """The per-parser state: compiled regexes, the event-time reader, the value caches, and the per-line
    functions (closures over all of these, which is the fastest way for CPython to reach them)."""

    def __init__(self, log_format: str, time_format: TimeFormat, geoip: GeoLookup | None) -> None:
        strict = re.compile(_STRICT[log_format]).match
        lenient = re.compile(_LENIENT[log_format]).match
        lenient_vhost = re.compile(_LENIENT_AUTO_VHOST).match if log_format == "auto" else None
        nomatch = f"does not match {_DESCRIBE[log_format]}"
        fast_tokens = {"common": (3,), "combined": (3,), "vhost_combined": (4,), "auto": (3, 4)}[log_format]
        need_tail = log_format in ("combined", "vhost_combined")
        want_tail = log_format != "common"
        reader = EventTimeReader(time_format)
        convert = reader.convert

        def fields(line: bytes, syslog: bytes = b"") -> _Fields:
            """``(vhost, host, user, timestamp, request, status, size, referrer, agent, syslog)`` as logged;
            ``syslog`` is the key of a syslog prefix (``b""`` for none; see :func:`_syslog_prefix`)."""
            # The common case, cut with split (no regex): quotes only around the fields. A field that ends in
            # a backslash had an escaped quote (\") split off: such lines take the regex.
            parts = line.split(b'"')
            n = len(parts)
            if n == 7 or n == 3:
                head = parts[0]
                mid = parts[2]
                i = head.find(b" [")
                if i > 0 and head[-2:] == b"] " and mid[:1] == b" " and parts[1][-1:] != b"\\":
                    tokens = head[:i].split(b" ")
                    sizes = mid.split()
                    nt = len(tokens)
                    # (a client "-" after a virtual host or a syslog prefix: a shifted reading; see _shifted)
                    if (
                        nt in fast_tokens
                        and len(sizes) >= 2
                        and (tokens[-3] != b"-" or (nt == 3 and not syslog))
                    ):
                        if (
                            n == 7
                            and parts[4] == b" "
                            and len(sizes) == 2
                            and mid[-1:] == b" "
                            and parts[3][-1:] != b"\\"
                            and parts[5][-1:] != b"\\"
                        ):
                            if want_tail:
                                return (
                                    tokens[0] if nt == 4 else b"",
                                    tokens[-3],
                                    tokens[-1],
                                    head[i + 2 : -2],
                                    parts[1],
                                    sizes[0],
                                    sizes[1],
                                    parts[3],
                                    parts[5],
                                    syslog,
                                )
                        elif need_tail or (n == 7 and want_tail):
                            sizes = []
                        if sizes:
                            return (
                                tokens[0] if nt == 4 else b"",
                                tokens[-3],
                                tokens[-1],
                                head[i + 2 : -2],
                                parts[1],
                                sizes[0],
                                sizes[1],
                                None,
                                None,
                                syslog,
                            )
            m = strict(line)
            if m is not None and _shifted(m, syslog):
                m = None
            if m is None and not syslog:
                prefix = _syslog_prefix(line)
                if prefix is not None:
                    try:
                        return fields(line[prefix[0] :], prefix[1])
                    except _Reject as exc:
                        raise _Reject(f"{exc} after its syslog prefix") from None
            if m is None or (m[9] is None and m.end() < len(line) and b'"' in line[m.end() :]):
                loose = lenient(line)
                if (
                    loose is not None
                    and lenient_vhost is not None
                    and not loose[1]
                    and _shifted(loose, syslog)
                ):
                    other = lenient_vhost(line)  # auto: a virtual host in front, if that reads right
                    if other is not None and not _shifted(other, syslog):
                        loose = other
                if loose is not None and (m is None or not _shifted(loose, syslog)):
                    m = loose
            if m is None:
                raise _Reject(nomatch)
            if _shifted(m, syslog):
                client = m[2].decode("utf-8", "backslashreplace")
                user = m[4].decode("utf-8", "backslashreplace")
                raise _Reject(
                    f"{nomatch}: read as it stands, the client address would be {client!r} and the user name "
                    f"{user!r} (text in front of the line?)"
                )
            return (m[1] or b"", m[2], m[4], m[5], m[6], m[7], m[8], m[9] or None, m[10] or None, syslog)

        def stamp_of(ts: bytes) -> str:
            epoch = convert(ts)
            if isinstance(epoch, str):
                raise _Reject(epoch)
            try:
                return iso_utc(epoch)
            except (OverflowError, OSError, ValueError):
                raise _Reject(f"timestamp {text(ts)!r} is out of range ({epoch} s since 1970)") from None

        def status_of(status: bytes) -> int:
            if len(status) == 3 and status.isdigit():
                return int(status)
            if status == b"-":
                return 0
            raise _Reject(f"bad status code {status.decode('utf-8', 'backslashreplace')!r}")

        def source_of(host: bytes) -> dict[str, Any]:
            source = address(host)
            if geoip is not None and "ip" in source:
                found = geoip(source["ip"])
                if found:
                    source.update(found)
            return source

        def user_of(user: bytes) -> dict[str, str]:
            name = text(user)
            return {} if name in ("", '""') else {"name": name}

        def request_of(req: bytes) -> tuple[str | None, dict[str, str] | None, str | None]:
            method, target, version = request_parts(req)
            return (method, None if target is None else {"original": target}, version)

        def cache(compute: Callable[[bytes], Any]) -> tuple[Callable[[bytes], Any], Callable[[bytes], Any]]:
            """``(get, miss)``: the cache's ``dict.get`` for the hit, and ``compute`` that fills the cache
            (bounded: full, it starts again) for the miss."""
            store: dict[bytes, Any] = {}

            def miss(key: bytes) -> Any:
                value = compute(key)
                if len(store) >= CACHE_LIMIT:
                    store.clear()
                store[key] = value
                return value

            return store.get, miss

        stamps, stamp_miss = cache(stamp_of)
        statuses, status_miss = cache(status_of)
        sources, source_miss = cache(source_of)
        requests, request_miss = cache(request_of)
        texts, text_miss = cache(text)
        users, user_miss = cache(user_of)
        agents, agent_miss = cache(lambda a: {"original": text(a)})
        vhosts, vhost_miss = cache(_vhost)
        logs, log_miss = cache(_syslog)

        def parse(line: bytes) -> dict[str, Any] | str:
            try:
                vhost, host, user, ts, req, status, size, ref, agent, syslog = fields(line)
                stamp = stamps(ts) or stamp_miss(ts)
                code = statuses(status)
                if code is None:
                    code = status_miss(status)
                nbytes = size_of(size)
                if nbytes is None:
                    response: dict[str, Any] | None = {"status_code": code} if code else None
                else:
                    response = {"status_code": code, "body": {"bytes": nbytes}}
                    if not code:
                        del response["status_code"]
            except _Reject as exc:
                return str(exc)
            try:
                message = line.decode("utf-8")
            except UnicodeDecodeError:
                message = line.decode("utf-8", "backslashreplace")
            doc: dict[str, Any] = {
                "@timestamp": stamp,
                "message": message,
                "source": sources(host) or source_miss(host),
            }
            method, url, version = requests(req) or request_miss(req)
            if url is not None:
                doc["url"] = url
            http: dict[str, Any] = {} if response is None else {"response": response}
            if method is not None:
                http["request"] = {"method": method}
            if version is not None:
                http["version"] = version
            if ref and ref != b"-":
                referrer = texts(ref) or text_miss(ref)
                if method is None:
                    http["request"] = {"referrer": referrer}
                else:
                    http["request"]["referrer"] = referrer
            if http:
                doc["http"] = http
            if agent and agent != b"-":
                doc["user_agent"] = agents(agent) or agent_miss(agent)
            if user != b"-":
                u = users(user)
                if u is None:
                    u = user_miss(user)
                if u:
                    doc["user"] = u
            if vhost:
                doc["destination"] = vhosts(vhost) or vhost_miss(vhost)
            if syslog:
                log = logs(syslog) or log_miss(syslog)
                if log:
                    doc["log"] = log
            return doc

        # -- the same document as JSON, joined from cached pieces: no dict per line ----------------------------

        geo_pieces: dict[int, tuple[Mapping[str, Any], bytes]] = {}

        def geo_part(found: Mapping[str, Any] | None) -> bytes:
            """``b',"geo":{...},"as":{...}'`` of a lookup's answer, ``b""`` for none."""
            if not found:
                return b""
            # The lookup returns one shared object per network: its JSON is made once.
            known = geo_pieces.get(id(found))
            if known is None or known[0] is not found:
                if len(geo_pieces) >= GEO_PIECES_LIMIT:
                    geo_pieces.clear()
                known = geo_pieces[id(found)] = (found, b"," + _json(dict(found))[1:-1])
            return known[1]

        def jsource_of(host: bytes) -> bytes:
            source = address(host)
            found = geoip(source["ip"]) if geoip is not None and "ip" in source else None
            return b',"source":' + _json(source)[:-1] + geo_part(found) + b"}"

        by_block = _block_lookup(geoip)

        def jgeo_of(ip: bytes) -> tuple[bytes, bool]:
            # The kernel joins the source piece of an address that is all an IP address (as address() would:
            # address and ip are the text) from this part, asked once per block where it holds for the block.
            found, whole = by_block(ip.decode("ascii"))
            return geo_part(found), whole

        def jrequest_of(req: bytes) -> tuple[bytes, bytes | None, bytes]:
            method, target, version = request_parts(req)
            return (
                b"" if target is None else b',"url":{"original":' + _json(target) + b"}",
                None if method is None else b',"http":{"request":{"method":' + _json(method),
                b"}," + (b"" if version is None else b'"version":' + _json(version) + b",") + b'"response":{',
            )

        def juser_of(user: bytes) -> bytes:
            u = user_of(user)
            return b',"user":' + _json(u) if u else b""

        def jstatus_of(status: bytes) -> bytes:
            code = status_of(status)
            return b'"status_code":%d' % code if code else b""

        def jstamp_of(ts: bytes) -> bytes:
            return b'{"@timestamp":"' + stamp_of(ts).encode() + b'","message":'

        def jreferrer_of(ref: bytes) -> bytes:
            return b',"referrer":' + _json(text(ref))

        def jagent_of(agent: bytes) -> bytes:
            return b',"user_agent":{"original":' + _json(text(agent)) + b"}"

        def jvhost_of(vhost: bytes) -> bytes:
            return b',"destination":' + _json(_vhost(vhost))

        jstamps, jstamp_miss = cache(jstamp_of)
        jstatuses, jstatus_miss = cache(jstatus_of)
        jsources, jsource_miss = cache(jsource_of)
        jrequests, jrequest_miss = cache(jrequest_of)
        jtexts, jtext_miss = cache(jreferrer_of)
        jagents, jagent_miss = cache(jagent_of)
        jusers, juser_miss = cache(juser_of)
        jvhosts, jvhost_miss = cache(jvhost_of)

        def jlog_of(key: bytes) -> bytes:
            log = _syslog(key)
            return b',"log":' + _json(log) if log else b""

        jlogs, jlog_miss = cache(jlog_of)
        join = b"".join

        def parse_json(line: bytes, tail: bytes) -> bytes | str:
            """The document of a line the kernel does not take (see :func:`kernel`), or its reason."""
            try:
                vhost, host, user, ts, req, status, size, ref, agent, syslog = fields(line)
                stamp = jstamps(ts) or jstamp_miss(ts)
                code = jstatuses(status)
                if code is None:
                    code = jstatus_miss(status)
                nbytes = size_of(size)
                body = b"" if nbytes is None else b',"body":{"bytes":%d}' % nbytes
                url, opening, middle = jrequests(req) or jrequest_miss(req)
            except _Reject as exc:
                return str(exc)
            if opening is None or not code:  # no request line or no status: rare, take the general way
                return _json(parse(line))[:-1] + tail  # the same checks passed: a document
            try:
                message = line.decode("utf-8")
            except UnicodeDecodeError:
                message = line.decode("utf-8", "backslashreplace")
            u = b"" if user == b"-" else jusers(user)
            return join(
                (
                    stamp,
                    _json(message),
                    jsources(host) or jsource_miss(host),
                    url,
                    opening,
                    (jtexts(ref) or jtext_miss(ref)) if ref and ref != b"-" else b"",
                    middle,
                    code,
                    body,
                    b"}}",
                    (jagents(agent) or jagent_miss(agent)) if agent and agent != b"-" else b"",
                    juser_miss(user) if u is None else u,
                    (jvhosts(vhost) or jvhost_miss(vhost)) if vhost else b"",
                    (jlogs(syslog) or jlog_miss(syslog)) if syslog else b"",
                    tail,
                )
            )

        self.fields = fields
        self.parse = parse
        self.parse_json = parse_json
        # The kernel cuts the lines of six quotes (with the referrer and user agent) as fields() does, and joins
        # their documents from the pieces these functions make, once per distinct value (None: the Python way).
        self.pieces: dict[str, Callable[[bytes], Any]] = {
            "stamp": _or_none(jstamp_of),
            "status": _or_none(jstatus_of),
            "source": jsource_of,
            "geo": jgeo_of,
            "request": lambda req: None if (r := jrequest_of(req))[1] is None else r,
            "referrer": jreferrer_of,
            "agent": jagent_of,
            "user": juser_of,
            "vhost": jvhost_of,
        }
        self.heads = {"common": (), "combined": (3,), "vhost_combined": (4,), "auto": (3, 4)}[log_format]
        #: The kernel reads Apache timestamps itself (the reader's function, and its bounds), else asks ``stamp``.
        self.apache_bounds = (FIRST_EPOCH, END_EPOCH) if reader.apache else None


@dataclass(frozen=True, kw_only=True)
class AccessLogParser:
    """Parses Apache access-log lines into ECS documents (see the module's docstring for the rules).

    :param log_format: ``combined``, ``common``, ``vhost_combined`` or ``auto`` (any of them, per line).
    :param time_format: how to read the text between ``[`` and ``]`` (its ``date_format`` and
        ``assume_zone``; the position is fixed by the format). Default: Apache's ``%t``.
    :param geoip: a lookup of client IPs, e.g. ``GeoIP(path).lookup``; its fields are merged under
        ``source``. It is called once per distinct client address.
    """

    log_format: str = "auto"
    time_format: TimeFormat | None = None
    geoip: GeoLookup | None = field(default=None, compare=False)
    _engine: _Engine = field(init=False, repr=False, compare=False)
    _kernel: Documents | None = field(init=False, repr=False, compare=False)
    #: The kernel's caches are one thread's at a time (a parser shared by threads takes turns per batch).
    _turn: threading.Lock = field(init=False, repr=False, compare=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        one_of("log_format", self.log_format, LOG_FORMATS)
        if self.time_format is not None and not isinstance(self.time_format, TimeFormat):
            raise ConfigurationError(
                "time_format must be a TimeFormat (e.g. TimeFormat.named('iso8601')) or None for Apache's %t. "
                f"Got {self.time_format!r}"
            )
        if self.geoip is not None and not callable(self.geoip):
            raise ConfigurationError(
                f"geoip must be a lookup of an IP string such as GeoIP(path).lookup, or None. Got {self.geoip!r}"
            )
        engine = _Engine(self.log_format, self.time_format or TimeFormat(), self.geoip)
        object.__setattr__(self, "_engine", engine)
        heads = engine.heads
        kernel = (
            Documents(
                three=3 in heads,
                four=4 in heads,
                pieces=engine.pieces,
                limit=CACHE_LIMIT,
                geo_limit=GEO_PIECES_LIMIT,
                apache_bounds=engine.apache_bounds,
            )
            if heads
            else None
        )
        object.__setattr__(self, "_kernel", kernel)

    def parse(self, line: bytes) -> dict[str, Any] | str:
        """The ECS document of one line, or the reason (a ``str``) it has none."""
        return self._engine.parse(line)

    def parse_many(
        self,
        values: Sequence[bytes | None],
        *,
        topic: str | None = None,
        partition: int | None = None,
        offsets: Sequence[int] | None = None,
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        """``(documents, rejected)`` of a batch of record values, in order.

        ``rejected`` holds ``(index in values, reason)`` of lines that do not parse and of tombstones
        (``None``; reason :data:`TOMBSTONE`). With a ``topic``, each document gets
        ``"kafka": {"topic", "partition", "offset"}`` (``offsets[i]``, else the index).
        """
        if offsets is not None and len(offsets) != len(values):
            raise ValueError(f"offsets has {len(offsets)} items for {len(values)} values")
        parse = self._engine.parse
        docs: list[dict[str, Any]] = []
        rejected: list[tuple[int, str]] = []
        add, reject = docs.append, rejected.append
        for i, value in enumerate(values):
            if value is None:
                reject((i, TOMBSTONE))
                continue
            doc = parse(value)
            if isinstance(doc, str):
                reject((i, doc))
                continue
            if topic is not None:
                doc["kafka"] = {
                    "topic": topic,
                    "partition": partition,
                    "offset": i if offsets is None else offsets[i],
                }
            add(doc)
        return docs, rejected

    def parse_many_json(
        self,
        values: Sequence[bytes | None],
        *,
        topic: str | None = None,
        partition: int | None = None,
        offsets: Sequence[int] | None = None,
        kernel: bool = True,
    ) -> tuple[list[bytes], list[tuple[int, str]]]:
        """Like :meth:`parse_many`, with each document already serialised (compact UTF-8 JSON).

        ``json.loads`` of each equals the document :meth:`parse_many` makes, but no dict is built: the JSON
        of every distinct value is made once and the line's document is joined from those pieces. This is
        the fast way to a bulk request. ``kernel=False`` for values the kernel has declined already (the
        ``rest`` of :meth:`bulk`): they are read the Python way at once, not cut a second time.
        """
        if offsets is not None and len(offsets) != len(values):
            raise ValueError(f"offsets has {len(offsets)} items for {len(values)} values")
        values = values if isinstance(values, list) else list(values)
        parse_json = self._engine.parse_json
        kafka = None
        if topic is not None:
            kafka = b',"kafka":{"topic":' + _json(topic) + b',"partition":' + _json(partition) + b',"offset":'
        if self._kernel is None or not kernel:
            found: list[bytes | None] = [None] * len(values)
        else:
            with self._turn:
                found = self._kernel.documents(values, offsets, kafka)
        docs: list[bytes] = []
        rejected: list[tuple[int, str]] = []
        add, reject = docs.append, rejected.append
        for i, taken in enumerate(found):
            if taken is not None:
                add(taken)
                continue
            value = values[i]
            if value is None:
                reject((i, TOMBSTONE))
                continue
            tail = b"}" if kafka is None else kafka + b"%d}}" % (i if offsets is None else offsets[i])
            doc = parse_json(value, tail)
            if isinstance(doc, str):
                reject((i, doc))
            else:
                add(doc)
        return docs, rejected

    def bulk(
        self,
        values: list[bytes | None],
        *,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        index_of: Callable[[bytes], bytes],
    ) -> tuple[bytes, list[int], list[bytes]]:
        """Bulk lines (action + document) of the values the kernel reads: ``(body, rest, indices)``. ``rest``
        are the indexes of the values it leaves to :meth:`parse_many_json` (tombstones, unusual lines, lines
        with a reason); ``indices`` the index names in ``body``, ``index_of(b"2015-10-28")`` for each day's.
        Each action is ``{"index":{"_index":...,"_id":"<topic>-<partition>-<offset>"}}``."""
        if offsets is not None and len(offsets) != len(values):
            raise ValueError(f"offsets has {len(offsets)} items for {len(values)} values")
        if self._kernel is None:
            return b"", list(range(len(values))), []
        kafka = b',"kafka":{"topic":' + _json(topic) + b',"partition":' + _json(partition) + b',"offset":'
        with self._turn:
            return self._kernel.bulk(values, offsets, f"{topic}-{partition}-".encode(), kafka, index_of)


def _vhost(vhost: bytes) -> dict[str, Any]:
    """``%v:%p`` (or ``%v``) to ECS ``destination`` fields."""
    name, sep, port = vhost.rpartition(b":")
    if sep and port.isdigit() and name and not name.endswith(b":"):
        d = address(name)
        d["port"] = int(port)
        return d
    return address(vhost)
