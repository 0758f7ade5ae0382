from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.eventtime import EventTimeReader, TimeFormat, zone_of
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate, check_template
from airflow_provider_logtap.errors import ConfigurationError

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
