"""The event time inside a log line: found by a regex, read by a date format, converted to UTC epoch seconds.

The hot path never calls ``strptime`` per line. Every distinct timestamp text is converted once and cached (log
lines of the same second share it); a miss on the common formats is a few slices and integer conversions, not a
``strptime``:

- ``apache`` (default): ``[28/Oct/2015:14:03:07 +0000]`` (``%d/%b/%Y:%H:%M:%S %z``)
- ``iso8601``: ``2015-10-28T14:03:07Z``, ``2015-10-28 14:03:07.123+01:00`` (no zone: ``assume_zone``)
- ``epoch_s`` / ``epoch_ms``: ``1446041000`` / ``1446041000123``
- any other ``strptime`` format (slower on a miss, still cached per distinct text)

A line whose timestamp cannot be found or read gets a reason instead (see :meth:`EventTimeReader.read`).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_logtap.errors import ConfigurationError

APACHE_REGEX = r"\[(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]"
APACHE_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
NAMED_FORMATS = ("apache", "iso8601", "epoch_s", "epoch_ms")
_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}
_CACHE_LIMIT = 200_000


def zone_of(name: str) -> tzinfo:
    """``UTC``, an IANA zone name (``Europe/Berlin``) or a fixed offset (``+05:30``, ``-0800``)."""
    if name.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if m:
        minutes = int(m[2]) * 60 + int(m[3])
        return timezone(timedelta(minutes=minutes if m[1] == "+" else -minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"zone must be UTC, an IANA zone name like 'Europe/Berlin' or an offset like '+05:30'. Got {name!r}"
        ) from None


@dataclass(frozen=True, kw_only=True)
class TimeFormat:
    """Where a line's timestamp is and how to read it.

    :param regex: a regular expression whose first group (or whole match) is the timestamp text.
    :param date_format: ``apache``, ``iso8601``, ``epoch_s``, ``epoch_ms`` or a ``strptime`` format.
    :param assume_zone: the zone of timestamps that carry none (e.g. ``%Y-%m-%d %H:%M:%S``).
    """

    regex: str = APACHE_REGEX
    date_format: str = "apache"
    assume_zone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.regex.encode())
        except (re.error, UnicodeEncodeError) as exc:
            raise ConfigurationError(f"timestamp regex {self.regex!r} does not compile: {exc}") from None
        if compiled.groups > 1:
            raise ConfigurationError(
                f"timestamp regex {self.regex!r} has {compiled.groups} groups; use one group around the "
                "timestamp (or none, to use the whole match), and (?:...) for the others"
            )
        if self.date_format not in NAMED_FORMATS and "%" not in self.date_format:
            raise ConfigurationError(
                f"date_format must be one of {{{', '.join(repr(f) for f in NAMED_FORMATS)}}} or a strptime "
                f"format like '%Y-%m-%d %H:%M:%S'. Got {self.date_format!r}"
            )
        zone_of(self.assume_zone)

    @classmethod
    def named(cls, name: str) -> TimeFormat:
        """A ready format: ``apache``, ``iso8601``, ``epoch_s``, ``epoch_ms``."""
        regexes = {
            "apache": APACHE_REGEX,
            "iso8601": r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)",
            "epoch_s": r"\b(\d{9,10}(?:\.\d+)?)\b",
            "epoch_ms": r"\b(\d{12,13})\b",
        }
        if name not in regexes:
            raise ConfigurationError(
                f"time format must be one of {{{', '.join(map(repr, regexes))}}}. Got {name!r}"
            )
        return cls(regex=regexes[name], date_format=name)


class EventTimeReader:
    """Reads event times of lines in one :class:`TimeFormat`; keeps a cache of timestamp texts it has seen."""

    def __init__(self, fmt: TimeFormat | None = None) -> None:
        self.format = fmt or TimeFormat()
        self._search = re.compile(self.format.regex.encode()).search
        self._group = 1 if re.compile(self.format.regex).groups == 1 else 0
        self._assume = zone_of(self.format.assume_zone)
        self._cache: dict[bytes, int | str] = {}
        self._days: dict[bytes, int] = {}
        self._fast_apache = self.format.regex == APACHE_REGEX and self.format.date_format in (
            "apache",
            APACHE_FORMAT,
        )
        convert = {
            "apache": self._apache,
            APACHE_FORMAT: self._apache,
            "iso8601": self._iso,
            "epoch_s": self._epoch_s,
            "epoch_ms": self._epoch_ms,
        }
        self._convert = convert.get(self.format.date_format, self._strptime)

    def text(self, line: bytes) -> bytes | None:
        """The timestamp text of ``line`` (``None`` when there is none)."""
        if self._fast_apache:
            i = line.find(b"[")
            if i >= 0 and line[i + 27 : i + 28] == b"]":
                return line[i + 1 : i + 27]
        m = self._search(line)
        return None if m is None else m.group(self._group)

    def read(self, line: bytes) -> int | str:
        """UTC epoch seconds of ``line``'s event time, or the reason it has none (a ``str``)."""
        text = self.text(line)
        if text is None:
            return f"no timestamp matches {self.format.regex!r}"
        return self.convert(text)

    def convert(self, text: bytes) -> int | str:
        """UTC epoch seconds of a timestamp text, or the reason it cannot be read (cached either way)."""
        found = self._cache.get(text)
        if found is None:
            try:
                found = self._convert(text)
            except (ValueError, KeyError, OverflowError, IndexError) as exc:
                found = f"timestamp {text.decode('utf-8', 'backslashreplace')!r} does not match " + (
                    f"{self.format.date_format!r} ({exc})" if str(exc) else repr(self.format.date_format)
                )
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = found
        return found

    def _apache(self, t: bytes) -> int:
        # 28/Oct/2015:14:03:07 +0000 -- the day and zone part is cached, the time of day is three int()s.
        if len(t) != 26 or t[11:12] != b":" or t[14:15] != b":" or t[17:18] != b":":
            raise ValueError("not dd/Mon/yyyy:HH:MM:SS +zzzz")
        day_key = t[0:11] + t[20:26]
        base = self._days.get(day_key)
        if base is None:
            base = self._apache_day(day_key)
            self._days[day_key] = base
        hh, mm, ss = int(t[12:14]), int(t[15:17]), int(t[18:20])
        if hh > 23 or mm > 59 or ss > 60:
            raise ValueError("time of day out of range")
        return base + hh * 3600 + mm * 60 + ss

    @staticmethod
    def _apache_day(k: bytes) -> int:
        """UTC epoch of local midnight of ``dd/Mon/yyyy +zzzz`` (the key is 17 bytes: date, space, zone)."""
        if k[2:3] != b"/" or k[6:7] != b"/" or k[11:12] != b" " or k[12:13] not in (b"+", b"-"):
            raise ValueError("not dd/Mon/yyyy:HH:MM:SS +zzzz")
        month = _MONTHS.get(k[3:6])
        if month is None:
            raise ValueError(f"unknown month {k[3:6].decode('ascii', 'backslashreplace')!r}")
        day, year = int(k[0:2]), int(k[7:11])
        if not 1 <= day <= calendar.monthrange(year, month)[1]:
            raise ValueError("day out of range")
        sign = -1 if k[12:13] == b"-" else 1
        offset = sign * (int(k[13:15]) * 3600 + int(k[15:17]) * 60)
        return calendar.timegm((year, month, day, 0, 0, 0)) - offset

    def _iso(self, t: bytes) -> int:
        moment = datetime.fromisoformat(t.decode("ascii").replace(",", ".").replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._assume)
        return int(moment.timestamp())

    @staticmethod
    def _epoch_s(t: bytes) -> int:
        return int(float(t))

    @staticmethod
    def _epoch_ms(t: bytes) -> int:
        return int(t) // 1000

    def _strptime(self, t: bytes) -> int:
        moment = datetime.strptime(t.decode("utf-8"), self.format.date_format)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._assume)
        return int(moment.timestamp())
