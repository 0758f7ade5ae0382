from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.core.eventtime import (
    APACHE_FORMAT,
    APACHE_REGEX,
    FORMATS,
    EventTimeReader,
    TimeFormat,
    regex_of_date_format,
    suggest_date_format,
    zone_of,
)
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate, check_template
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.taps import TapConfigError, parse_tap

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def apache(moment: datetime, offset_minutes: int) -> bytes:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    stamp = f"{local.day:02d}/{MONTHS[local.month - 1]}/{local.year}:{local:%H:%M:%S} {sign}{hh:02d}{mm:02d}"
    return f'9.9.9.9 - - [{stamp}] "GET / HTTP/1.1" 200 1 "-" "-"'.encode()


moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=timezone.utc)
)
offsets = st.sampled_from([0, -480, -300, 60, 330, 345, 540, -570, 840, -720])


@given(moments, offsets)
def test_apache_timestamps_read_as_utc(moment: datetime, offset: int) -> None:
    assert EventTimeReader().read(apache(moment, offset)) == int(moment.timestamp())


@given(st.lists(st.tuples(moments, offsets), min_size=1, max_size=30))
def test_partitions_are_the_utc_hour_of_each_line(items: list[tuple[datetime, int]]) -> None:
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
    lines = [apache(m, o) for m, o in items]
    buckets, bad = partitioner.split(lines)
    assert not bad
    expected: dict[str, list[bytes]] = {}
    for (m, _), line in zip(items, lines, strict=True):
        expected.setdefault(m.strftime("dt=%Y-%m-%d/hour=%H"), []).append(line)
    assert buckets == expected


def test_late_evening_in_california_is_the_next_utc_day() -> None:
    line = b'1.2.3.4 - - [28/Oct/2015:23:30:00 -0800] "GET / HTTP/1.1" 200 5'
    assert EventTimePartitioner(EventTimeReader(), PartitionTemplate()).split([line])[0] == {
        "dt=2015-10-29/hour=07": [line]
    }
    # ...unless the tap partitions in the server's own zone.
    local = PartitionTemplate("dt=%Y-%m-%d", zone="-08:00")
    assert EventTimePartitioner(EventTimeReader(), local).split([line])[0] == {"dt=2015-10-28": [line]}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"no brackets at all", "no timestamp matches"),
        (b"[28/Oct/2015:24:00:00 +0000]", "time of day out of range"),
        (b"[29/Feb/2015:10:00:00 +0000]", "day out of range"),
        (b"[28/Okt/2015:10:00:00 +0000]", "unknown month 'Okt'"),
        (b"[28/Oct/2015:10:00:61 +0000]", "time of day out of range"),
    ],
)
def test_unreadable_lines_get_a_reason(line: bytes, reason: str) -> None:
    assert reason in str(EventTimeReader().read(line))
    buckets, bad = EventTimePartitioner(EventTimeReader(), PartitionTemplate()).split([line])
    assert buckets == {} and len(bad) == 1 and reason in bad[0][1]


@pytest.mark.parametrize(
    ("fmt", "line", "expected"),
    [
        (TimeFormat.named("iso8601"), b"ts=2015-10-28T14:03:07Z x", "2015-10-28T14:03:07+00:00"),
        (TimeFormat.named("iso8601"), b"2015-10-28 14:03:07.250+01:00 x", "2015-10-28T13:03:07+00:00"),
        (TimeFormat.named("epoch_s"), b"t=1446041000 y", "2015-10-28T14:03:20+00:00"),
        (TimeFormat.named("epoch_ms"), b"t=1446041000123 y", "2015-10-28T14:03:20+00:00"),
        (
            TimeFormat(regex=r"^(\S+ \S+)", date_format="%Y/%m/%d %H:%M:%S", assume_zone="+02:00"),
            b"2015/10/28 16:03:07 GET /",
            "2015-10-28T14:03:07+00:00",
        ),
    ],
)
def test_other_formats(fmt: TimeFormat, line: bytes, expected: str) -> None:
    epoch = EventTimeReader(fmt).read(line)
    assert isinstance(epoch, int)
    assert datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat() == expected


def test_a_changed_date_format_is_a_reason_not_a_crash() -> None:
    reader = EventTimeReader(TimeFormat(regex=r"\[([^\]]+)\]", date_format="%Y-%m-%d %H:%M:%S"))
    assert "does not match '%Y-%m-%d %H:%M:%S'" in str(reader.read(b"[28/Oct/2015:14:03:07 +0000]"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"regex": "(unclosed"}, "does not compile"),
        ({"regex": "(a)(b)"}, "has 2 groups"),
        ({"date_format": "whenever"}, "date_format must be one of"),
        ({"assume_zone": "Mars/Olympus"}, "zone must be UTC"),
    ],
)
def test_time_format_validation(kw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TimeFormat(**kw)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("dt=%Y/../x", "unsafe segment"),
        ("dt=%Y-%m-%d/%S", "uses %S"),
        ("", "must be a path"),
        ("a//b", "unsafe"),
    ],
)
def test_template_validation(template: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_template(template)


def test_zones() -> None:
    assert zone_of("+05:30").utcoffset(None) == timedelta(hours=5, minutes=30)
    assert zone_of("-0800").utcoffset(None) == timedelta(hours=-8)
    assert PartitionTemplate("y=%Y/m=%m/d=%d/h=%H/m=%M").path(1446041000) == "y=2015/m=10/d=28/h=14/m=03"


# --- The fast path finds what the regex finds (issue 10, item 4) ---------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        b"<13>Oct 28 14:03:07 web httpd[812]: ",
        b"[vhost] ",
        b"[www.example.com:443] ",
        b"[a][b][c] ",
        b"[28/Oct/2015:99:03] ",
    ],
)
@pytest.mark.parametrize("user", [b"-", b"user[x]", b"[x]", b"u[28/Oct/2015:14:03:07 +000]"])
def test_brackets_before_the_timestamp(prefix: bytes, user: bytes) -> None:
    line = prefix + b"1.2.3.4 - " + user + b' [28/Oct/2015:23:30:00 -0800] "GET /a[1] HTTP/1.1" 200 5'
    assert EventTimeReader().text(line) == b"28/Oct/2015:23:30:00 -0800"
    assert EventTimeReader().read(line) == 1446103800
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
    for _ in range(2):  # the second time from the minute cache
        assert partitioner.split([line]) == ({"dt=2015-10-29/hour=07": [line]}, [])


@pytest.mark.parametrize(
    ("known", "line", "reason"),
    [
        # The minute is known; the seconds are not two ASCII digits after a ':', so the regex does not match.
        (
            b"[28/Oct/2015:14:03:07 +0000]",
            "[28/Oct/2015:14:03:\u0663 +0000]".encode(),
            "no timestamp matches",
        ),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14:03: 7 +0000]", "no timestamp matches"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14:03x07 +0000]", "no timestamp matches"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14:03:61 +0000]", "time of day out of range"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14: 3:07 +0000]", "no timestamp matches"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14:03:07 +2400]", "zone offset out of range"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/2015:14:03:07 +0060]", "zone offset out of range"),
        (b"[28/Oct/2015:14:03:07 +0000]", b"[28/Oct/0000:14:03:07 +0000]", "day out of range"),
    ],
)
def test_a_known_minute_does_not_excuse_the_seconds(known: bytes, line: bytes, reason: str) -> None:
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
    assert partitioner.split([known])[1] == []
    buckets, bad = partitioner.split([line])
    assert buckets == {} and len(bad) == 1 and reason in bad[0][1]
    assert reason in str(EventTimeReader().read(line))


def test_a_leap_second_is_the_next_second_even_from_the_minute_cache() -> None:
    partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
    first, leap = b"[31/Dec/2016:23:59:07 +0000]", b"[31/Dec/2016:23:59:60 +0000]"
    assert partitioner.split([first, leap]) == (
        {"dt=2016-12-31/hour=23": [first], "dt=2017-01-01/hour=00": [leap]},
        [],
    )


def test_months_in_any_case_as_strptime_reads_them() -> None:
    assert EventTimeReader().read(b"[28/OCT/2015:14:03:07 +0000]") == 1446041000 - 13
    assert EventTimeReader().read(b"[28/oct/2015:14:03:07 +0000]") == 1446041000 - 13


# --- The default regex comes from date_format; mismatched pairs are refused (issue 10, item 5) ----------------


def test_one_definition_of_each_format() -> None:
    for name, named in FORMATS.items():
        fmt = TimeFormat(date_format=name)
        assert fmt.regex == named.regex and TimeFormat.named(name) == fmt
        assert TimeFormat(regex=named.regex).date_format == name
        reader = EventTimeReader(fmt)
        for example in named.examples:
            assert re.fullmatch(named.regex, example) or re.fullmatch(named.regex, f"[{example}]")
            line = f"x [{example}] y" if name == "apache" else f"x {example} y"
            assert reader.text(line.encode()) == example.encode()
            assert isinstance(reader.read(line.encode()), int)
    assert TimeFormat().regex == APACHE_REGEX and TimeFormat().date_format == "apache"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"regex": APACHE_REGEX, "date_format": "iso8601"},
            r"timestamp_regex is logtap's apache regex .* remove timestamp_regex .* or set date_format: apache",
        ),
        (
            {"regex": FORMATS["iso8601"].regex, "date_format": "apache"},
            r"logtap's iso8601 regex .* set date_format: iso8601",
        ),
        (
            {"regex": APACHE_REGEX, "date_format": "%Y-%m-%d %H:%M:%S"},
            r"date_format '%Y-%m-%d %H:%M:%S' cannot read what timestamp_regex .* finds, e.g. "
            r"'28/Oct/2015:14:03:07 \+0000': set date_format: apache, or remove timestamp_regex",
        ),
        ({"date_format": "%c"}, "uses %c, which logtap cannot find in a line by itself: set timestamp_regex"),
        ({"date_format": "%Y-%m-%d %H:%M:%S %Q"}, "uses %Q"),
    ],
)
def test_mismatched_pairs_are_refused_before_reading(kw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TimeFormat(**kw)


def test_pairs_that_read_each_other() -> None:
    assert EventTimeReader(TimeFormat(regex=APACHE_REGEX, date_format=APACHE_FORMAT)).read(
        b"[28/Oct/2015:14:03:20 +0000]"
    ) == (1446041000)
    iso = TimeFormat(regex=FORMATS["iso8601"].regex, date_format="%Y-%m-%dT%H:%M:%S%z")
    assert EventTimeReader(iso).read(b"at 2015-10-28T14:03:20Z") == 1446041000
    TimeFormat(regex=r"\[([^\]]+)\]", date_format="iso8601")  # a custom regex is the user's word


@pytest.mark.parametrize(
    ("date_format", "line"),
    [
        ("%Y-%m-%d %H:%M:%S", b"2015-10-28 14:03:20 GET /"),
        ("%Y/%m/%d %H:%M:%S", b"host 2015/10/28 14:03:20 GET /"),
        ("%d/%b/%Y:%H:%M:%S %z", b"[28/Oct/2015:14:03:20 +0000]"),
        ("%a, %d %b %Y %H:%M:%S %Z", b'date="Wed, 28 Oct 2015 14:03:20 GMT"'),
        ("%Y%m%dT%H%M%S", b"id=7 at=20151028T140320 ok"),
        ("%I:%M:%S %p %m/%d/%y", b"02:03:20 PM 10/28/15 x"),
        ("%B %d, %Y %H:%M:%S.%f", b"October 28, 2015 14:03:20.250 x"),
        ("%Y-%m-%d  %H:%M:%S", b"2015-10-28 14:03:20 x"),  # strptime: any whitespace for whitespace
    ],
)
def test_a_strptime_format_brings_its_own_regex(date_format: str, line: bytes) -> None:
    fmt = TimeFormat(date_format=date_format)
    assert fmt.regex == regex_of_date_format(date_format)
    assert EventTimeReader(fmt).read(line) == 1446041000


def test_the_tap_checks_the_pair() -> None:
    def target(**kw: str) -> dict[str, object]:
        return {"name": "t", "topic": "w", "target": {"type": "hdfs_event_time", "base_path": "/d", **kw}}

    assert parse_tap(target(date_format="iso8601")).target.time_format.regex == FORMATS["iso8601"].regex
    assert parse_tap(target()).target.time_format.regex == APACHE_REGEX
    with pytest.raises(TapConfigError, match=r"target.date_format.*remove timestamp_regex"):
        parse_tap(target(timestamp_regex=APACHE_REGEX, date_format="iso8601"))
    with pytest.raises(TapConfigError, match=r"target.date_format.*set date_format: epoch_ms"):
        parse_tap(target(timestamp_regex=FORMATS["epoch_ms"].regex))


APACHE_LINES = [b'1.2.3.4 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5'] * 9 + [b"junk"]
ISO_LINES = [b'{"time":"2015-10-28T14:03:07Z","path":"/"}'] * 10
EPOCH_MS_LINES = [b"1446041000123 GET / 200"] * 10


@pytest.mark.parametrize(
    ("lines", "fmt", "hint"),
    [
        (
            ISO_LINES,
            TimeFormat(),
            "these lines have ISO 8601 timestamps (e.g. '2015-10-28T14:03:07Z'): set date_format: iso8601",
        ),
        (
            APACHE_LINES,
            TimeFormat.named("iso8601"),
            "have Apache [dd/Mon/yyyy:HH:MM:SS +zzzz] timestamps (e.g. "
            "'28/Oct/2015:14:03:07 +0000'): set date_format: apache",
        ),
        (
            EPOCH_MS_LINES,
            TimeFormat(),
            "epoch milliseconds timestamps (e.g. '1446041000123'): set date_format: epoch_ms",
        ),
        (ISO_LINES, TimeFormat(regex=r"\[([^\]]+)\]"), "set date_format: iso8601 and remove timestamp_regex"),
    ],
)
def test_a_hint_for_lines_that_all_fail(lines: list[bytes], fmt: TimeFormat, hint: str) -> None:
    got = suggest_date_format(lines, fmt)
    assert got is not None and hint in got
    if "remove" not in hint:
        assert "remove" not in got


def test_no_hint_when_nothing_reads_them_or_they_read_fine() -> None:
    assert suggest_date_format([b"no time", b"here 12", None], TimeFormat()) is None
    assert suggest_date_format([], TimeFormat()) is None
    assert suggest_date_format(APACHE_LINES, TimeFormat()) is None


# --- Partitions of the template, and only those (issue 10, item 7) --------------------------------------------


@pytest.mark.parametrize(
    "template", ["_logtap/%Y", "dt=%Y/_dead_letter", ".hidden/%Y", "dt=%Y/.x=%H", "_x=%Y"]
)
def test_templates_cannot_make_logtaps_own_or_hidden_directories(template: str) -> None:
    with pytest.raises(
        ConfigurationError, match=r"starts with '[_.]': directories starting with '_' are logtap"
    ):
        check_template(template)
    assert check_template("x_=%Y/%H.h") == "x_=%Y/%H.h"


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28/hour=14"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2016-02-29/hour=00"),
        ("y=%Y/d=%j/h=%H", "y=2016/d=366/h=23"),
        ("y=%Y/m=%m/d=%d/h=%H/m=%M", "y=2015/m=10/d=28/h=14/m=59"),
        ("p%%=%Y", "p%=2015"),
        ("m=%m/d=%d", "m=02/d=29"),
        ("%Y-%Y/h=%H%%", "2015-2015/h=14%"),
    ],
)
def test_partitions_of_the_template_are_accepted(template: str, path: str) -> None:
    assert PartitionTemplate(template).check_partition(path) == path


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("dt=%Y-%m-%d/hour=%H", "_logtap"),
        ("dt=%Y-%m-%d/hour=%H", "_dead_letter/weblogs"),
        ("dt=%Y-%m-%d/hour=%H", "_trash"),
        ("dt=%Y-%m-%d/hour=%H", ".dt=2015-10-28"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28/hour=24"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-02-29"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-13-01"),
        ("dt=%Y-%m-%d/hour=%H", "dt=15-10-28"),
        ("dt=%Y-%m-%d/hour=%H", "/dt=2015-10-28"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28/"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28//hour=14"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28/hour=14/x"),
        ("dt=%Y-%m-%d/hour=%H", "dt=2015-10-28/../x"),
        ("dt=%Y-%m-%d/hour=%H", "hour=14"),
        ("dt=%Y-%m-%d/hour=%H", "dt=٢015-10-28"),
        ("dt=%Y-%m-%d/hour=%H", ""),
        ("y=%Y/d=%j", "y=2015/d=366"),
        ("y=%Y/d=%j", "y=2015/d=000"),
        ("a=%Y/b=%Y", "a=2015/b=2016"),
        ("%Y-%Y", "2015-2016"),
    ],
)
def test_other_paths_are_refused(template: str, path: str) -> None:
    with pytest.raises(ConfigurationError, match=r"is not a partition of the template .*: name one like '"):
        PartitionTemplate(template).check_partition(path)


@given(moments, st.sampled_from(["dt=%Y-%m-%d/hour=%H", "y=%Y/d=%j/h=%H/m=%M", "m=%m/d=%d"]))
def test_every_path_a_template_makes_is_a_partition_of_it(moment: datetime, template: str) -> None:
    tpl = PartitionTemplate(template, "Europe/Berlin")
    path = tpl.path(int(moment.timestamp()))
    segments = path.split("/")
    for n in range(1, len(segments) + 1):
        assert tpl.check_partition("/".join(segments[:n])) == "/".join(segments[:n])


# --- Apache time and UTC text in the kernel (issue 16): the one implementation, against strptime ---------------


def _mostly(valid: st.SearchStrategy[str], *noise: str) -> st.SearchStrategy[str]:
    """``valid`` seven times in eight, else one of ``noise``: most texts are times, each part is sometimes not."""
    return st.tuples(st.integers(0, 7), valid, st.sampled_from(noise)).map(
        lambda t: t[2] if t[0] == 7 else t[1]
    )


def _number(low: int, high: int, width: int = 2) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:0{width}d}")


_day = _mostly(_number(1, 31), "00", "32", "٣1", " 7", "7x")
_month = _mostly(st.sampled_from([*MONTHS, "oct", "FEB", "dEc"]), "Okt", "O-t", "\xe9ct", "a'b", 'a"b')
_year = _mostly(_number(1, 9999, 4), "0000", "201٣", "20x5", "10000")
_hour = _mostly(_number(0, 23), "24", "٣1", "+1")
_minute = _mostly(_number(0, 59), "60", " 3")
_second = _mostly(_number(0, 60), "61", "99", "٣7")
_zone = _mostly(
    st.builds(
        lambda s, h, m: f"{s}{h:02d}{m:02d}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)
    ),
    "+2400",
    "-0060",
    "0000",
    "+000",
    "+00:00",
    "Z0000",
)
_colon = _mostly(st.just(":"), "-", " ", "::")


@st.composite
def apache_texts(draw: st.DrawFn) -> bytes:
    day, month, year = draw(_day), draw(_month), draw(_year)
    hh, mm, ss = draw(_hour), draw(_minute), draw(_second)
    c1, c2, c3 = draw(_colon), draw(_colon), draw(_colon)
    slash = draw(_mostly(st.just("/"), "-", ""))
    space = draw(_mostly(st.just(" "), "\t", ""))
    text = f"{day}{slash}{month}/{year}{c1}{hh}{c2}{mm}{c3}{ss}{space}{draw(_zone)}"
    return text.encode("utf-8", "surrogateescape")


_DIGIT_PLACES = (0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25)


def strptime_epoch(text: bytes) -> int | None:
    """strptime's %d/%b/%Y:%H:%M:%S %z of a text of 26 bytes, one space and ASCII digits in every digit's place
    (as Apache's %t writes it: strptime would also take a day " 7"), or None; a second 60 is the next minute's
    first."""
    t = text.decode("latin-1")
    if len(text) != 26 or t[20] != " " or not all(t[i] in "0123456789" for i in _DIGIT_PLACES):
        return None
    leap = t[18:20] == "60"
    try:
        moment = datetime.strptime(t[:18] + "59" + t[20:] if leap else t, APACHE_FORMAT)
    except ValueError:
        return None
    return int(moment.timestamp()) + leap


@settings(max_examples=2000)
@given(apache_texts())
def test_the_kernels_apache_time_is_strptimes(text: bytes) -> None:
    from airflow_provider_logtap._kernel import apache_epoch

    expected = strptime_epoch(text)
    try:
        found: int | None = apache_epoch(text)
    except ValueError as exc:
        found = None
        reason = str(exc)
        assert (
            reason
            in (
                "not dd/Mon/yyyy:HH:MM:SS +zzzz",
                "day out of range",
                "zone offset out of range",
                "time of day out of range",
            )
            or reason == f"unknown month {text[3:6].decode('ascii', 'backslashreplace')!r}"
        ), reason
    assert found == expected, text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"28/Okt/2015:14:03:07 +0000", "unknown month 'Okt'"),
        (b"28/\xe9ct/2015:14:03:07 +0000", "unknown month '\\\\xe9ct'"),  # as Python's repr writes it
        (b"28/a'b/2015:14:03:07 +0000", 'unknown month "a\'b"'),
        (b"29/Feb/2015:14:03:07 +0000", "day out of range"),
        (b"28/Oct/2015:24:03:07 +0000", "time of day out of range"),
        (b"28/Oct/2015:14:03:07 +2400", "zone offset out of range"),
        (b"28/Oct/2015:14:03:07 +000", "not dd/Mon/yyyy:HH:MM:SS +zzzz"),
    ],
)
def test_the_reasons_name_what_is_wrong(text: bytes, reason: str) -> None:
    found = EventTimeReader().convert(text)
    assert (
        found == f"timestamp {text.decode('utf-8', 'backslashreplace')!r} does not match 'apache' ({reason})"
    )


def test_leap_years_and_second_sixty() -> None:
    read = EventTimeReader().convert
    assert read(b"29/Feb/2016:00:00:00 +0000") == 1456704000
    assert read(b"29/Feb/2000:00:00:00 +0000") == 951782400
    assert "day out of range" in str(read(b"29/Feb/1900:00:00:00 +0000"))
    assert read(b"31/Dec/2016:23:59:60 +0000") == read(b"01/Jan/2017:00:00:00 +0000")


@settings(max_examples=2000)
@given(st.integers(-62135596800, 253402300799))  # 0001-01-01 to 9999-12-31 23:59:59
def test_iso_utc_is_what_datetime_writes(epoch: int) -> None:
    from airflow_provider_logtap.core.accesslog import iso_utc

    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=epoch)
    assert iso_utc(epoch) == f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


@pytest.mark.parametrize("epoch", [-62135596801, 253402300800, -(2**62)])
def test_iso_utc_refuses_years_outside_1_to_9999(epoch: int) -> None:
    from airflow_provider_logtap.core.accesslog import iso_utc

    with pytest.raises(ValueError, match=r"year -?\d+ is not in 1-9999"):
        iso_utc(epoch)
