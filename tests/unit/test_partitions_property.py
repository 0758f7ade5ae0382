"""The Apache fast path of the event-time partitioner gives the plain regex's answer on every line.

The reference below is what the configuration says, and nothing faster: ``re.search`` of the timestamp regex,
``strptime`` of the date format (a second 60 is a leap second: the next second), the partition of that instant
in the template's zone. Lines carry ``[`` and ``]`` in every field (``httpd[812]:``, ``[vhost]``, ``user[x]``,
requests, referrers, agents) and timestamps that are valid or subtly not (month, 61 seconds, non-ASCII digits,
a missing colon, a zone of the wrong length, no closing bracket).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core.eventtime import APACHE_FORMAT, APACHE_REGEX, EventTimeReader, zone_of
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate

REGEX = re.compile(APACHE_REGEX.encode())
NO_MATCH = f"no timestamp matches {APACHE_REGEX!r}"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOW, HIGH = datetime(1000, 1, 2, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=timezone.utc)


def reference(line: bytes, template: str, zone: str) -> tuple[str, str]:
    """``("path", partition)``, ``("none", reason)``, ``("unreadable", text)`` or ``("range", text)``."""
    m = REGEX.search(line)
    if m is None:
        return "none", NO_MATCH
    text = m[1].decode("ascii")
    leap = text[18:20] == "60"
    try:
        moment = datetime.strptime(text[:18] + "59" + text[20:] if leap else text, APACHE_FORMAT)
    except ValueError:
        return "unreadable", text
    moment += timedelta(seconds=leap)
    if not LOW <= moment < HIGH:
        return "range", text
    epoch = (moment - EPOCH) // timedelta(seconds=1)
    return "path", (EPOCH + timedelta(seconds=epoch)).astimezone(zone_of(zone)).strftime(template)


def check(lines: list[bytes | None], partitioner: EventTimePartitioner, template: str, zone: str) -> None:
    """``partitioner.split(lines)`` is the reference, line by line (reasons: the same words, the same text)."""
    buckets, bad = partitioner.split(lines)
    expected: dict[str, list[bytes]] = {}
    rejected: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines):
        if line is not None:
            kind, what = reference(line, template, zone)
            if kind == "path":
                expected.setdefault(what, []).append(line)
            else:
                rejected.append((i, kind, what))
    assert buckets == expected
    assert [i for i, _ in bad] == [i for i, _, _ in rejected]
    for (i, reason), (_, kind, what) in zip(bad, rejected, strict=True):
        if kind == "none":
            assert reason == NO_MATCH, lines[i]
        elif kind == "unreadable":
            assert reason.startswith(f"timestamp {what!r} does not match 'apache'"), (lines[i], reason)
        else:
            assert reason == f"timestamp {what!r} is outside the years 1000 to 9999", (lines[i], reason)


# Each part: mostly valid values, then the subtly wrong ones.
DAYS = ["28", "01", "31", "29", "30", "00", "32", " 7", "7 ", "٣1", "2"]
MONTHS = ["Oct", "Feb", "Dec", "Jan", "oct", "FEB", "Okt", "Oc", "Octo", "O-t"]
YEARS = ["2015", "2016", "2024", "1999", "0000", "0001", "0999", "1000", "9999", "201٣", "20x5"]
HOURS = ["14", "23", "00", "09", "24", "2", " 9", "+1", "1٣"]
MINUTES = ["03", "59", "00", "30", "60", " 3", "5"]
SECONDS = ["07", "59", "00", "60", "61", "٣", "٣7", " 7", "+7", "7", "99"]
COLONS = [":", ":", ":", ":", "", "-", "::", " "]
ZONES = [
    "+0000",
    "-0800",
    "+0530",
    "+0545",
    "-0000",
    "+2359",
    "-2400",
    "+0060",
    "+000",
    "+00000",
    "0000",
    "+01٣0",
]
CLOSES = ["]", "]", "]", "", " ]", "]]"]


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    day, month, year = (
        draw(st.sampled_from(DAYS)),
        draw(st.sampled_from(MONTHS)),
        draw(st.sampled_from(YEARS)),
    )
    hh, mm, ss = draw(st.sampled_from(HOURS)), draw(st.sampled_from(MINUTES)), draw(st.sampled_from(SECONDS))
    c1, c2, c3 = draw(st.sampled_from(COLONS)), draw(st.sampled_from(COLONS)), draw(st.sampled_from(COLONS))
    zone, close = draw(st.sampled_from(ZONES)), draw(st.sampled_from(CLOSES))
    return f"[{day}/{month}/{year}{c1}{hh}{c2}{mm}{c3}{ss} {zone}{close}"


valid = st.builds(
    lambda d, mo, h, m, s, z: f"[{d}/{mo}/2015:{h}:{m}:{s} {z}]",
    st.sampled_from(DAYS[:4]),
    st.sampled_from(MONTHS[:4]),
    st.sampled_from(HOURS[:4]),
    st.sampled_from(MINUTES[:4]),
    st.sampled_from(SECONDS[:4]),
    st.sampled_from(ZONES[:4]),
)
TRICKY = [
    "httpd[812]:",
    "user[x]",
    "[vhost]",
    "[",
    "]",
    "[]",
    "[[",
    "[28/Oct/2015:14:03]",
    "[28/Oct/2015:14:03:07 +0000",
    "[28/Oct/2015:14:03:07 +00000]",
    "a[b]c[d]",
    "[" + "x" * 26 + "]",
    "[28/Oct/2015:14:03:07+0000] ",
]
alphabet = st.sampled_from(list('ab[]:/ -+09Oct"٣\\x'))
fields = st.one_of(st.sampled_from(TRICKY), st.text(alphabet, max_size=30), timestamps(), valid, st.just("-"))
prefixes = st.one_of(
    st.just(""),
    st.sampled_from(["[vhost] ", "httpd[812]: ", "<13>Oct 28 14:03:07 web httpd[812]: ", "[a][b] "]),
    fields.map(lambda s: s + " "),
)


@st.composite
def lines(draw: st.DrawFn) -> bytes | None:
    if draw(st.integers(0, 30)) == 0:
        return None  # a tombstone
    prefix, host, ident, user = draw(prefixes), draw(fields), draw(fields), draw(fields)
    stamp = draw(st.one_of(valid, timestamps(), fields))
    request, referrer, agent = draw(fields), draw(fields), draw(fields)
    return (
        f'{prefix}{host} {ident} {user} {stamp} "GET /{request} HTTP/1.1" 200 5 "{referrer}" "{agent}"'
    ).encode()


TEMPLATES = [
    ("dt=%Y-%m-%d/hour=%H", "UTC"),
    ("dt=%Y-%m-%d/hour=%H/minute=%M", "+05:30"),
    ("dt=%Y-%m-%d", "Europe/Berlin"),  # with the local mean time of the years before 1893
    ("y=%Y/d=%j/h=%H", "America/St_Johns"),
    ("m=%M", "Asia/Kathmandu"),
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=40), st.sampled_from(TEMPLATES))
def test_the_fast_path_is_the_regex(values: list[bytes | None], template_zone: tuple[str, str]) -> None:
    template, zone = template_zone
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate(template, zone))
    check(values, partitioner, template, zone)
    check(values[::-1], partitioner, template, zone)  # again, now from the caches the first split filled
    fresh = EventTimeReader()
    for line in values:
        if line is not None:
            m = REGEX.search(line)
            assert fresh.text(line) == (None if m is None else m[1])


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from(COLONS), st.sampled_from(SECONDS), st.sampled_from(CLOSES), timestamps()),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(TEMPLATES),
)
def test_known_minutes_with_other_seconds(
    parts: list[tuple[str, str, str, str]], template_zone: tuple[str, str]
) -> None:
    """Lines of a few minutes, their seconds right or not: what the minute cache is asked."""
    template, zone = template_zone
    base = ["[28/Oct/2015:14:03:07 +0000]", "[28/Oct/2015:14:59:07 +0000]", "[31/Dec/2015:23:59:07 -0800]"]
    values: list[bytes | None] = []
    for i, (colon, seconds, close, stamp) in enumerate(parts):
        b = base[i % len(base)]
        values.append(f"h - - {b} x".encode())
        values.append(f"httpd[{i}]: h - - {b[:18]}{colon}{seconds}{b[20:27]}{close} x".encode())
        values.append(f"[vhost] h - u[x] {stamp} {b} x".encode())
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate(template, zone))
    check(values, partitioner, template, zone)


def test_the_reference_itself() -> None:
    assert reference(b"httpd[812]: [28/Oct/2015:14:03:07 +0000]", "dt=%Y-%m-%d/hour=%H", "UTC") == (
        "path",
        "dt=2015-10-28/hour=14",
    )
    assert reference(b"[28/Oct/2015:14:59:60 +0000]", "h=%H", "UTC") == ("path", "h=15")
    assert reference(b"[28/Oct/2015:14:03:61 +0000]", "h=%H", "UTC") == (
        "unreadable",
        "28/Oct/2015:14:03:61 +0000",
    )
    assert reference("[28/Oct/2015:14:03:٣ +0000]".encode(), "h=%H", "UTC") == ("none", NO_MATCH)
