"""The compiled kernel (native/src/lib.rs) against the Python ways, line by line. The parser: for every line the kernel
takes, its document is byte for byte the one the Python way makes, and every line it leaves gets the Python way's
document or reason. Generated lines cover the cut's every condition (quotes, escapes, whitespace, ``-`` fields,
leading zeros, non-UTF-8 bytes, head tokens); the corpus and loggen's lines are real-world-shaped. The
event-time split: the kernel's (the built-in formats' regexes) is the Python split's, bucket for bucket and reason
for reason."""

from __future__ import annotations

import json
import socket

import pytest
from data.accesslog_corpus import CASES
from devstack.loggen import generate
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_provider_logtap._kernel import frame, geo_block, ip_address, unpack
from airflow_provider_logtap.core.accesslog import LOG_FORMATS, TOMBSTONE, AccessLogParser
from airflow_provider_logtap.core.eventtime import FORMATS, EventTimeReader, TimeFormat
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
from airflow_provider_logtap.sinks.search import _ACTION_AND_DOC

KAFKA_TAIL = b',"kafka":{"topic":"weblogs","partition":3,"offset":%d}}'


def python_way(parser: AccessLogParser, value: bytes | None, offset: int) -> bytes | str:
    """What the parser's Python way gives a value (no kernel): its document or its reason."""
    if value is None:
        return TOMBSTONE
    return parser._engine.parse_json(value, KAFKA_TAIL % offset)


def assert_parity(parser: AccessLogParser, values: list[bytes | None]) -> int:
    """The kernel's documents equal the Python way's, and ``parse_many_json`` gives every value its own; returns
    how many values the kernel took."""
    offsets = list(range(100, 100 + len(values)))
    assert parser._kernel is not None
    kafka = b',"kafka":{"topic":"weblogs","partition":3,"offset":'
    found = parser._kernel.documents(values, offsets, kafka)
    expected = [python_way(parser, v, o) for v, o in zip(values, offsets, strict=True)]
    for value, doc, want in zip(values, found, expected, strict=True):
        if doc is not None:
            assert doc == want, value
            assert json.loads(doc) == {
                **parser.parse(value),  # type: ignore[arg-type]
                "kafka": json.loads(doc)["kafka"],
            }
    docs, rejected = parser.parse_many_json(values, topic="weblogs", partition=3, offsets=offsets)
    assert docs == [w for w in expected if isinstance(w, bytes)]
    assert rejected == [(i, w) for i, w in enumerate(expected) if isinstance(w, str)]
    # the Python way alone (what the search sink asks for the values bulk() left) gives the same
    assert parser.parse_many_json(values, topic="weblogs", partition=3, offsets=offsets, kernel=False) == (
        docs,
        rejected,
    )
    return sum(doc is not None for doc in found)


# Pieces of a line, each from an alphabet that reaches the cut's conditions: quotes and backslashes (escaped or
# not, at a field's end), spaces, tabs and vertical tabs, "-" fields, digits with leading zeros, bytes that are
# not UTF-8, brackets.
_BYTES = st.sampled_from(
    [
        b"a",
        b"Z",
        b"0",
        b"7",
        b" ",
        b"\t",
        b"\x0b",
        b"-",
        b'"',
        b"\\",
        b'\\"',
        b"[",
        b"]",
        b"\xe9",
        b"\xc3\xa9",
        b"/",
        b":",
        b"%",
    ]
)
_text = st.lists(_BYTES, max_size=6).map(b"".join)


def mostly(valid: list[bytes], noise: st.SearchStrategy[bytes] = _text) -> st.SearchStrategy[bytes]:
    """Usually one of ``valid`` (so that most lines reach the kernel's joins), sometimes ``noise``."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), noise)


_host = mostly([b"203.0.113.9", b"2001:db8::1", b"[2001:db8::2]:8080", b"198.51.100.7:51234", b"example.org"])
_ident = mostly([b"-"])
_user = mostly([b"-", b"frank", b'""', b"\\x41", b"-"])
_vhost = mostly([b"www.example.com:443", b"www.example.com", b"[::1]:80", b"-"])
_stamp = mostly(
    [
        b"28/Oct/2015:14:03:07 +0000",
        b"28/Oct/2015:06:03:07 -0800",
        b"01/Jan/1000:00:00:00 +0100",  # before the year 1000 in UTC: a reason
        b"31/Dec/9999:23:59:59 -0100",  # after 9999 in UTC: a reason
        b"31/dec/2016:23:59:60 +0000",  # a leap second (the next day), the month in lower case
        b"29/Feb/2015:14:03:07 +0000",  # no such day
    ]
)
_request = mostly(
    [b"GET / HTTP/1.1", b"-", b"\\x16\\x03\\x01", b"POST /a b HTTP/2.0", b"GET /", b"get /x?q=\\xe9"]
)
_status = mostly([b"200", b"404", b"-", b"000", b"999"])
_size = mostly([b"2326", b"-", b"0", b"000", b"0123", b"99999999999999999999", b"20x"])
_quoted = mostly([b"-", b"", b"https://example.com/", b"Mozilla/5.0 (X11)", b"caf\xc3\xa9 \\x00", b'a \\" b'])
_space = st.sampled_from([b" ", b" ", b" ", b"  ", b"\t", b"\x0b"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    tokens = [draw(_host), draw(_ident), draw(_user)]
    if draw(st.booleans()):
        tokens.insert(0, draw(_vhost))
    if not draw(st.integers(0, 9)):
        tokens.insert(draw(st.integers(0, len(tokens))), draw(_text))  # a token too many
    return (
        b" ".join(tokens)
        + draw(st.sampled_from([b" [", b" [", b"["]))
        + draw(_stamp)
        + draw(st.sampled_from([b'] "', b'] "', b']"']))
        + draw(_request)
        + b'"'
        + draw(_space)
        + draw(_status)
        + draw(_space)
        + draw(_size)
        + draw(st.sampled_from([b" ", b" ", b" ", b"", b"\t"]))
        + b'"'
        + draw(_quoted)
        + b'"'
        + draw(st.sampled_from([b" ", b" ", b" ", b"", b"  "]))
        + b'"'
        + draw(_quoted)
        + b'"'
        + draw(st.sampled_from([b"", b"", b" 1234", b' "-"', b"\\", b"\n"]))
    )


@pytest.mark.parametrize("log_format", [f for f in LOG_FORMATS if f != "common"])
@settings(max_examples=400)
@given(values=st.lists(st.one_of(lines(), st.none()), min_size=1, max_size=20))
def test_generated_lines_give_what_the_python_way_gives(log_format: str, values: list[bytes | None]) -> None:
    assert_parity(AccessLogParser(log_format=log_format), values)


def test_the_corpus_and_generated_logs_give_what_the_python_way_gives() -> None:
    values: list[bytes | None] = [c.line for c in CASES] + [g.line for g in generate(3000, seed=5)]
    taken = assert_parity(AccessLogParser(), values)
    assert taken > 2000  # the kernel takes the common shape (loggen's lines with an escaped quote it leaves)


def test_a_common_format_parser_has_no_kernel_and_still_parses() -> None:
    parser = AccessLogParser(log_format="common")
    assert parser._kernel is None
    docs, rejected = parser.parse_many_json(
        [b'1.2.3.4 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5']
    )
    assert rejected == [] and json.loads(docs[0])["source"]["ip"] == "1.2.3.4"


def test_bulk_lines_are_the_action_and_the_document_of_each_taken_value() -> None:
    parser = AccessLogParser()
    values: list[bytes | None] = [g.line for g in generate(200, seed=9)] + [None, b"garbage"]
    offsets = list(range(50, 50 + len(values)))
    days: list[bytes] = []

    def index_of(day: bytes) -> bytes:
        days.append(day)
        return b"weblogs-" + day

    body, rest, indices = parser.bulk(
        values, topic="weblogs", partition=3, offsets=offsets, index_of=index_of
    )
    assert len(days) == len(set(days))  # once per day
    assert sorted(indices) == sorted(b"weblogs-" + d for d in days)
    taken = [i for i in range(len(values)) if i not in rest]
    assert {len(values) - 2, len(values) - 1} <= set(rest) and len(taken) > 150
    expected = b""
    for i in taken:
        doc = python_way(parser, values[i], offsets[i])
        assert isinstance(doc, bytes)
        index = b"weblogs-" + json.loads(doc)["@timestamp"][:10].encode()
        expected += _ACTION_AND_DOC % (index, b"weblogs", 3, offsets[i], doc)  # the search sink's own lines
    assert body == expected


# -- the event-time split --------------------------------------------------------------------------------------

_stamp_texts = st.sampled_from(
    [
        *(e for f in FORMATS.values() for e in f.examples),
        "2015-10-28T14:03:07",
        "2015-10-28 14:03:07,5-0130",
        "1446041000.",
        "99999999999",
        "2015-13-28T14:03:07Z",
        "28/Oct/2015:14:03:61 +0000",
        "x1446041000123y",
        "1446041000_",
        "2015-10-28T14:03:07+0560",
        "٣446041000",
    ]
)
_words = st.text(st.sampled_from(list('ab[]:/ -+.,09TZ"_')), max_size=12)


@st.composite
def timed_lines(draw: st.DrawFn) -> bytes | None:
    if not draw(st.integers(0, 20)):
        return None
    parts = draw(st.lists(st.one_of(_words, _stamp_texts, _stamp_texts.map(lambda t: f"[{t}]")), max_size=5))
    return " ".join(parts).encode()


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=300)
@given(values=st.lists(timed_lines(), min_size=1, max_size=30))
def test_the_kernels_split_is_the_python_split(name: str, values: list[bytes | None]) -> None:
    for template in ("dt=%Y-%m-%d/hour=%H", "m=%M"):
        kernel = EventTimePartitioner(EventTimeReader(TimeFormat.named(name)), PartitionTemplate(template))
        python = EventTimePartitioner(EventTimeReader(TimeFormat.named(name)), PartitionTemplate(template))
        assert kernel._kernel is not None
        for batch in (values, values[::-1]):  # the second from the caches
            expected = python.split_in_python(batch)
            assert kernel.split(batch) == expected
            blocks = {path: b"".join(line + b"\n" for line in lines) for path, lines in expected[0].items()}
            assert kernel.split_joined(batch) == (blocks, expected[1])


@pytest.mark.parametrize("name", ["apache", "iso8601"])
def test_a_full_cache_starts_again_between_batches_only(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """More distinct texts (and minutes) in one batch than the cache keeps: every line still in its partition."""
    import airflow_provider_logtap.core.partitions as partitions

    monkeypatch.setattr(partitions, "_CACHE_LIMIT", 3)
    stamp = "[%02d/Oct/2015:%02d:03:07 +0000]" if name == "apache" else "2015-10-%02dT%02d:03:07Z"
    batch: list[bytes | None] = [f"x {stamp % (1 + i % 9, i % 24)} y".encode() for i in range(40)]
    kernel = EventTimePartitioner(EventTimeReader(TimeFormat.named(name)), PartitionTemplate())
    python = EventTimePartitioner(EventTimeReader(TimeFormat.named(name)), PartitionTemplate())
    for _ in range(3):
        found = kernel.split(batch)
        assert found == python.split_in_python(batch)
        assert sum(map(len, found[0].values())) == 40 and len(found[0]) == len(set(found[0])) > 3


@pytest.mark.parametrize(
    "time_format", [TimeFormat.named("iso8601"), TimeFormat(date_format="%d/%b/%Y:%H:%M:%S %z")]
)
def test_a_parser_of_another_time_format_asks_its_stamps(time_format: TimeFormat) -> None:
    parser = AccessLogParser(time_format=time_format)
    assert (parser._engine.apache_bounds is None) == (time_format.date_format == "iso8601")
    values: list[bytes | None] = [
        b'1.2.3.4 - - [2015-10-28T14:03:07Z] "GET / HTTP/1.1" 200 5 "-" "-"',
        b'1.2.3.4 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5 "-" "-"',
        b'1.2.3.4 - - [2015-10-28T14:03:07+01:00] "GET / HTTP/1.1" 200 5 "-" "-"',
    ]
    assert assert_parity(parser, values) == 1 + (time_format.date_format == "iso8601")


def test_a_regex_of_the_users_own_splits_in_python() -> None:
    fmt = TimeFormat(regex=r"at=(\d{10})", date_format="epoch_s")
    partitioner = EventTimePartitioner(EventTimeReader(fmt), PartitionTemplate())
    assert partitioner._kernel is None
    buckets, bad = partitioner.split([b"at=1446041000 x", b"none"])
    assert buckets == {"dt=2015-10-28/hour=14": [b"at=1446041000 x"]} and [i for i, _ in bad] == [1]
    assert partitioner.split_joined([b"at=1446041000 x", b"none", b"at=1446041001 y"]) == (
        {"dt=2015-10-28/hour=14": b"at=1446041000 x\nat=1446041001 y\n"},
        bad,
    )


def test_a_parser_and_a_partitioner_shared_by_threads_take_turns() -> None:
    from concurrent.futures import ThreadPoolExecutor

    values: list[bytes | None] = [g.line for g in generate(2000, seed=3)]
    parser = AccessLogParser()
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
    alone = (parser.parse_many_json(values), partitioner.split(values))
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(
            pool.map(lambda _: (parser.parse_many_json(values), partitioner.split(values)), range(12))
        )
    assert together == [alone] * 12


@settings(max_examples=300)
@given(
    st.lists(
        st.binary(max_size=40)
        | st.sampled_from([b"\n", b"a\nb", b"\xff", b"\xed\xa0\x80", b"\xc3\xa9", None])
    )
)
def test_the_archive_framing_is_the_joined_block_its_embedded_newlines_and_utf8(
    lines: list[bytes | None],
) -> None:
    data, embedded, utf8 = frame(lines)
    kept = [v for v in lines if v is not None]  # a tombstone has no line
    want = b"\n".join([*kept, b""]) if kept else b""
    assert data == want
    assert embedded == want.count(b"\n") - len(kept)
    try:
        want.decode("utf-8")
    except UnicodeDecodeError:
        assert not utf8
    else:
        assert utf8


def test_the_archive_framing_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        frame([b"a", "b"])  # type: ignore[list-item]


class _Message:
    """What unpack reads of a consume() result's items: ``error()`` and ``value()`` (confluent_kafka.Message)."""

    def __init__(self, value: bytes | None, error: str | None) -> None:
        self._value, self._error = value, error

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> str | None:
        return self._error


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=30) | st.none(), st.none() | st.sampled_from(["_PARTITION_EOF", "broker"])
        )
    )
)
def test_unpack_is_the_records_values_their_bytes_tombstones_and_the_events(
    items: list[tuple[bytes | None, str | None]],
) -> None:
    messages = [_Message(v, e) for v, e in items]
    values, nbytes, tombstones, events = unpack(messages)
    records = [m for m in messages if m.error() is None]
    assert values == [m.value() for m in records]
    assert all(
        a is b.value() for a, b in zip(values, records, strict=True)
    )  # the values themselves, no copies
    assert nbytes == sum(len(v) for v in values if v is not None)
    assert tombstones == values.count(None)
    assert events == [i for i, m in enumerate(messages) if m.error() is not None]


def test_unpack_fails_on_a_value_that_is_no_bytes() -> None:
    with pytest.raises(TypeError):
        unpack([_Message("text", None)])  # type: ignore[arg-type]


# -- IP addresses: the kernel reads them as glibc's inet_pton does ----------------------------------------------


def inet_pton(text: bytes) -> bytes | None:
    """What the C library makes of ``text``: IPv4 first, then IPv6 (the way the parser asked it before)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text.decode("utf-8", "surrogateescape"))
        except (OSError, ValueError):  # ValueError: a NUL or a byte that is no UTF-8
            continue
    return None


_IP_PIECES = st.sampled_from(
    [*b"0 1 9 00 01 255 256 a F ffff 12345 g . : :: % %eth0 1.2.3.4 - [ ]".split(), b" ", b"\x00", b"\xe9"]
)


@settings(max_examples=3000)
@given(
    text=st.one_of(
        st.lists(_IP_PIECES, max_size=16).map(b"".join),
        st.ip_addresses().map(lambda a: str(a).encode()),
        st.ip_addresses(v=6).map(lambda a: a.exploded.encode()),
        st.ip_addresses(v=6).map(lambda a: str(a).upper().encode()),
        st.ip_addresses(v=4).map(lambda a: b"::ffff:" + str(a).encode()),
    )
)
@example(text=b"1:2:3:4:5:6:7::")
@example(text=b"::1.2.3.4")
@example(text=b"1::2:3:4:5:6:7")
@example(text=b"1:2:3:4:5:6:7:1.2.3.4")
@example(text=b"::ffff:01.2.3.4")
@example(text=b"1.2.3.4:")
@example(text=b":")
@example(text=b"::")
@example(text=b":::")
@example(text=b"1::2:")
@example(text=b"12345::")
@example(text=b"0001::1")
@example(text=b"1.2.3.04")
@example(text=b"1..2.3")
@example(text=b"::1:2:3:4:5:6:7:8")
def test_ip_addresses_are_what_the_c_library_reads(text: bytes) -> None:
    assert ip_address(text) == inet_pton(text)


def test_geo_blocks_are_the_v4_24_the_v6_48_and_the_v4_of_a_mapped_address() -> None:
    assert geo_block(socket.inet_pton(socket.AF_INET, "81.2.69.160")) == bytes([81, 2, 69])
    assert geo_block(socket.inet_pton(socket.AF_INET6, "::ffff:81.2.69.160")) == bytes([81, 2, 69])
    assert geo_block(socket.inet_pton(socket.AF_INET6, "2a00:1450:4009::1")) == bytes.fromhex("2a0014504009")
    with pytest.raises(ValueError, match="packed must be 4 or 16 bytes"):
        geo_block(b"\x01\x02")


def _ip_as_the_c_library_reads_it(h: str) -> str | None:
    """The parser's rule for a client's IP (``_ip``) as it was written on ``socket.inet_pton``."""
    for family, text in ((socket.AF_INET, h), (socket.AF_INET6, h.partition("%")[0] if ":" in h else None)):
        if text is None:
            continue
        try:
            socket.inet_pton(family, text)
            return text
        except (OSError, ValueError):  # ValueError: a NUL, or a text that is no UTF-8
            pass
    return None


@settings(max_examples=2000)
@given(
    h=st.one_of(
        st.lists(_IP_PIECES, max_size=12).map(lambda p: b"".join(p).decode("utf-8", "backslashreplace")),
        st.ip_addresses(v=6).map(lambda a: f"{a}%eth0"),
        st.ip_addresses(v=4).map(lambda a: f"{a}%x:y"),
        st.text(alphabet="0123456789abcdef.:%\udcff", max_size=12),
    )
)
def test_the_client_ip_rule_is_what_the_c_library_reads(h: str) -> None:
    from airflow_provider_logtap.core.accesslog import _ip

    assert _ip(h) == _ip_as_the_c_library_reads_it(h)
