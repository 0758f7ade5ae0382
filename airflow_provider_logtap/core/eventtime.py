"""The event time inside a log line: found by a regex, read by a date format, converted to UTC epoch seconds.

The hot path never calls ``strptime`` per line. Every distinct timestamp text is converted once and cached (log
lines of the same second share it); a miss on the common formats is a few slices and integer conversions, not a
``strptime``:

- ``apache`` (default): ``[28/Oct/2015:14:03:07 +0000]`` (``%d/%b/%Y:%H:%M:%S %z``)
- ``iso8601``: ``2015-10-28T14:03:07Z``, ``2015-10-28 14:03:07.123+01:00`` (no zone: ``assume_zone``)
- ``epoch_s`` / ``epoch_ms``: ``1446041000`` / ``1446041000123``
- any other ``strptime`` format (slower on a miss, still cached per distinct text)

The regex defaults to the date format's own (:data:`FORMATS`; one made from a strptime format's directives), and
a built-in regex with a date format that cannot read what it finds is refused before anything is read (see
:func:`check_pair`). A line whose timestamp cannot be found or read gets a reason instead (see
:meth:`EventTimeReader.read`); :func:`suggest_date_format` names the format of lines that all fail.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_logtap._kernel import apache_epoch
from airflow_provider_logtap.errors import ConfigurationError

#: The event times a line may have: the years 1000 to 9999 in UTC (what a four-digit year names; a daily index
#: or partition of year 999 or 10000 would not sort or parse as one). UTC epoch seconds, the end exclusive.
FIRST_EPOCH = calendar.timegm((1000, 1, 1, 0, 0, 0))
END_EPOCH = calendar.timegm((9999, 12, 31, 0, 0, 0)) + 86400


# One definition of each named format: the regex that finds it in a line, an example of what it finds, what it is.
# Everything else (the default regex of a date_format, the pair checks, the hints) is read from this table.
@dataclass(frozen=True)
class NamedFormat:
    """A named ``date_format``: ``regex`` finds its timestamp in a line (group 1), ``examples`` are such texts."""

    name: str
    title: str
    regex: str
    examples: tuple[str, ...]


FORMATS: dict[str, NamedFormat] = {
    f.name: f
    for f in (
        NamedFormat(
            name="apache",
            title="Apache [dd/Mon/yyyy:HH:MM:SS +zzzz]",
            regex=r"\[(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]",
            examples=("28/Oct/2015:14:03:07 +0000", "28/Oct/2015:06:03:07 -0800"),
        ),
        NamedFormat(
            name="iso8601",
            title="ISO 8601",
            regex=r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)",
            examples=("2015-10-28T14:03:07Z", "2015-10-28 15:03:07.250+01:00", "2015-10-28T14:03:07"),
        ),
        NamedFormat(
            name="epoch_s",
            title="epoch seconds",
            regex=r"\b(\d{9,10}(?:\.\d+)?)\b",
            examples=("1446041000", "1446041000.250"),
        ),
        NamedFormat(
            name="epoch_ms",
            title="epoch milliseconds",
            regex=r"\b(\d{12,13})\b",
            examples=("1446041000123",),
        ),
    )
}
NAMED_FORMATS = tuple(FORMATS)
APACHE_REGEX = FORMATS["apache"].regex
#: The regexes of the named formats (a regex of the user's own is any other).
BUILTIN_REGEXES = frozenset(f.regex for f in FORMATS.values())
APACHE_FORMAT = "%d/%b/%Y:%H:%M:%S %z"  # what strptime calls apache (slower; reads the same texts)
_CACHE_LIMIT = 200_000
# strptime directive -> a regex for the text it reads (what a custom date_format's default timestamp regex is
# made of). Locale-dependent %c %x %X are not here: such a date_format needs an explicit timestamp_regex.
_DIRECTIVES = {
    "Y": r"\d{4}",
    "G": r"\d{4}",
    "y": r"\d{2}",
    "m": r"[01]?\d",
    "d": r"(?:[0-3]?\d| [1-9])",
    "H": r"[0-2]?\d",
    "I": r"[01]?\d",
    "M": r"[0-5]?\d",
    "S": r"[0-6]?\d",
    "f": r"\d{1,6}",
    "j": r"[0-3]?\d{1,2}",
    "U": r"[0-5]?\d",
    "W": r"[0-5]?\d",
    "V": r"[0-5]?\d",
    "w": r"[0-6]",
    "u": r"[1-7]",
    "z": r"(?:Z|[+-]\d{2}:?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)",
    "b": r"[A-Za-z]{3}",
    "h": r"[A-Za-z]{3}",
    "a": r"[A-Za-z]{3}",
    "B": r"[A-Za-z]{3,9}",
    "A": r"[A-Za-z]{6,9}",
    "p": r"[AaPp][Mm]",
    "Z": r"[A-Za-z]{3}",
    "%": "%",
}
_SAMPLE = datetime(2015, 10, 28, 14, 3, 7, 250000, tzinfo=timezone.utc)


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


def regex_of_date_format(date_format: str) -> str:
    r"""The default ``timestamp_regex`` of a ``date_format``: the named format's own, or one made from the
    strptime directives of a custom format (``%Y-%m-%d %H:%M:%S`` -> ``(\d{4}-[01]?\d-...)``)."""
    if date_format in FORMATS:
        return FORMATS[date_format].regex
    if "%" not in date_format:
        raise ConfigurationError(
            f"date_format must be one of {{{', '.join(repr(f) for f in NAMED_FORMATS)}}} or a strptime "
            f"format like '%Y-%m-%d %H:%M:%S'. Got {date_format!r}"
        )
    parts: list[str] = []
    for literal, directive in re.findall(r"([^%]*)(?:%(.)|%?$)", date_format, flags=re.S):
        parts.extend(
            r"\s+" if chunk.isspace() else re.escape(chunk) for chunk in re.findall(r"\s+|\S+", literal)
        )
        if directive:
            if directive not in _DIRECTIVES:
                raise ConfigurationError(
                    f"date_format {date_format!r} uses %{directive}, which logtap cannot find in a line by "
                    "itself: set timestamp_regex too (a regex whose group is the timestamp)"
                )
            parts.append(_DIRECTIVES[directive])
    body = "".join(parts)
    head = r"(?<![\d.])" if re.match(r"%[YGymdHIMSfjUWVwu]", date_format) else ""
    tail = r"(?![\d])" if re.search(r"%[YGymdHIMSfjUWVwu]$", date_format) else ""
    regex = f"{head}({body}){tail}"
    sample = _check_strptime(date_format)
    found = re.search(regex, sample)
    if found is None or found[1] != sample:  # a format this table does not cover
        raise ConfigurationError(
            f"logtap cannot make a timestamp regex from date_format {date_format!r}: set timestamp_regex too "
            "(a regex whose group is the timestamp)"
        )
    return regex


def _check_strptime(date_format: str) -> str:
    """A time written in a strptime ``date_format`` (which must read it back)."""
    sample = _SAMPLE.strftime(date_format)
    try:
        datetime.strptime(sample, date_format)
    except ValueError as exc:
        raise ConfigurationError(
            f"date_format {date_format!r} cannot read the times it writes ({sample!r}: {exc}); use strptime's "
            "directives, like '%Y-%m-%d %H:%M:%S'"
        ) from None
    return sample


def _default_regex(date_format: str) -> str | None:
    try:
        return regex_of_date_format(date_format)
    except ConfigurationError:
        return None


def _builtin(regex: str) -> NamedFormat | None:
    return next((f for f in FORMATS.values() if f.regex == regex), None)


def check_pair(regex: str, date_format: str) -> None:
    """Refuse a built-in ``timestamp_regex`` with a ``date_format`` that cannot read what it finds.

    A built-in regex is one of :data:`FORMATS` (the default of its own ``date_format``); a custom regex is the
    user's word (its texts are only known at run time, see :func:`suggest_date_format`).
    """
    found = _builtin(regex)
    if found is None or found.name == date_format:
        return
    if date_format in FORMATS:
        raise ConfigurationError(
            f"timestamp_regex is logtap's {found.name} regex ({found.title}) but date_format is "
            f"{date_format!r}, which cannot read it: remove timestamp_regex (date_format: {date_format} brings "
            f"its own), or set date_format: {found.name}"
        )
    for example in found.examples:
        try:
            datetime.strptime(example, date_format)
        except ValueError:
            continue
        return
    raise ConfigurationError(
        f"date_format {date_format!r} cannot read what timestamp_regex (logtap's {found.name} regex) finds, "
        f"e.g. {found.examples[0]!r}: set date_format: {found.name}, or remove timestamp_regex (logtap then "
        f"makes one from date_format {date_format!r})"
    )


@dataclass(frozen=True, kw_only=True)
class TimeFormat:
    """Where a line's timestamp is and how to read it.

    :param regex: a regular expression whose first group (or whole match) is the timestamp text; by default
        the ``date_format``'s own (see :data:`FORMATS`; made from the directives of a strptime format).
    :param date_format: ``apache``, ``iso8601``, ``epoch_s``, ``epoch_ms`` or a ``strptime`` format; by default
        the format of a built-in ``regex``, else ``apache``.
    :param assume_zone: the zone of timestamps that carry none (e.g. ``%Y-%m-%d %H:%M:%S``).

    A built-in regex with a date format that cannot read its texts is refused (see :func:`check_pair`).
    """

    regex: str = ""
    date_format: str = ""
    assume_zone: str = "UTC"

    def __post_init__(self) -> None:
        if not self.date_format:
            found = _builtin(self.regex)
            object.__setattr__(self, "date_format", found.name if found else "apache")
        if self.date_format not in NAMED_FORMATS and "%" not in self.date_format:
            raise ConfigurationError(
                f"date_format must be one of {{{', '.join(repr(f) for f in NAMED_FORMATS)}}} or a strptime "
                f"format like '%Y-%m-%d %H:%M:%S'. Got {self.date_format!r}"
            )
        if not self.regex:
            object.__setattr__(self, "regex", regex_of_date_format(self.date_format))
        elif self.date_format not in FORMATS:
            _check_strptime(self.date_format)
        try:
            compiled = re.compile(self.regex.encode())
        except (re.error, UnicodeEncodeError) as exc:
            raise ConfigurationError(f"timestamp regex {self.regex!r} does not compile: {exc}") from None
        if compiled.groups > 1:
            raise ConfigurationError(
                f"timestamp regex {self.regex!r} has {compiled.groups} groups; use one group around the "
                "timestamp (or none, to use the whole match), and (?:...) for the others"
            )
        check_pair(self.regex, self.date_format)
        zone_of(self.assume_zone)

    @classmethod
    def named(cls, name: str) -> TimeFormat:
        """A ready format: ``apache``, ``iso8601``, ``epoch_s``, ``epoch_ms``."""
        if name not in FORMATS:
            raise ConfigurationError(
                f"time format must be one of {{{', '.join(map(repr, FORMATS))}}}. Got {name!r}"
            )
        return cls(date_format=name)


class EventTimeReader:
    """Reads event times of lines in one :class:`TimeFormat`; keeps a cache of timestamp texts it has seen."""

    def __init__(self, fmt: TimeFormat | None = None) -> None:
        self.format = fmt or TimeFormat()
        self._search = re.compile(self.format.regex.encode()).search
        #: The regex's group that is the timestamp text: its only group, else the whole match (0).
        self.group = 1 if re.compile(self.format.regex).groups == 1 else 0
        self._assume = zone_of(self.format.assume_zone)
        self._cache: dict[bytes, int | str] = {}
        #: ``match(line, pos)``: the regex matched at ``pos`` exactly.
        self.match = re.compile(self.format.regex.encode()).match
        #: Whether the regex is Apache's ``\[dd/Mon/yyyy:HH:MM:SS +zzzz\]`` (a fixed 28 bytes from a ``[``).
        self.finds_apache = self.format.regex == APACHE_REGEX
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
        if self.finds_apache:
            # The regex's own answer: the first '[' that opens an exact [dd/Mon/yyyy:HH:MM:SS +zzzz] (a '[' of
            # "httpd[812]:", "[vhost]" or a user name before it is skipped, as the regex skips it).
            match = self.match
            i = line.find(b"[")
            while i >= 0:
                if line[i + 27 : i + 28] == b"]" and match(line, i):
                    return line[i + 1 : i + 27]
                i = line.find(b"[", i + 1)
            return None
        m = self._search(line)
        return None if m is None else m.group(self.group)

    def read(self, line: bytes) -> int | str:
        """UTC epoch seconds of ``line``'s event time, or the reason it has none (a ``str``)."""
        text = self.text(line)
        if text is None:
            return f"no timestamp matches {self.format.regex!r}"
        return self.convert(text)

    def convert(self, text: bytes) -> int | str:
        """UTC epoch seconds of a timestamp text, or the reason it cannot be read (cached either way); times
        outside the years 1000 to 9999 (UTC) are such a reason, for every target alike."""
        found = self._cache.get(text)
        if found is None:
            try:
                found = self._convert(text)
            except (ValueError, KeyError, OverflowError, IndexError) as exc:
                found = f"timestamp {text.decode('utf-8', 'backslashreplace')!r} does not match " + (
                    f"{self.format.date_format!r} ({exc})" if str(exc) else repr(self.format.date_format)
                )
            else:
                if not FIRST_EPOCH <= found < END_EPOCH:
                    found = f"timestamp {text.decode('utf-8', 'backslashreplace')!r} is outside the years 1000 to 9999"
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = found
        return found

    @property
    def apache(self) -> bool:
        """Whether texts are read as Apache's ``dd/Mon/yyyy:HH:MM:SS +zzzz`` (by :meth:`_apache`)."""
        return self._convert == self._apache

    @staticmethod
    def _apache(t: bytes) -> int:
        # 28/Oct/2015:14:03:07 +0000, read by the kernel (the one implementation, also used by the kernel's
        # document and split paths): exactly what strptime's %d/%b/%Y:%H:%M:%S %z reads (ASCII digits only), and
        # second 60 (a leap second).
        return apache_epoch(t)

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


def suggest_date_format(lines: Sequence[bytes | None], current: TimeFormat | None = None) -> str | None:
    """A hint for lines that ``current`` cannot date: which named ``date_format`` reads them, and what to set.

    ``lines`` are the first lines of a range (tombstones may be ``None``). Returns ``None`` when no named
    format reads at least 90% of them as times between 1990 and 2100, or when ``current`` reads them already;
    else e.g. ``"these lines have ISO 8601 timestamps (e.g. '2015-10-28T14:03:07Z'): set date_format: iso8601"``
    (and ``..., and remove timestamp_regex`` when the tap's regex does not find them).
    """
    fmt = current or TimeFormat()
    sample = [line for line in lines if line]
    if not sample:
        return None
    low, high = calendar.timegm((1990, 1, 1, 0, 0, 0)), calendar.timegm((2100, 1, 1, 0, 0, 0))

    def share(reader: EventTimeReader) -> float:
        times = [reader.read(line) for line in sample]
        return sum(1 for t in times if isinstance(t, int) and low <= t < high) / len(sample)

    if share(EventTimeReader(fmt)) >= 0.9:
        return None
    for name, named in FORMATS.items():
        if name == fmt.date_format:
            continue
        reader = EventTimeReader(TimeFormat(date_format=name, assume_zone=fmt.assume_zone))
        if share(reader) < 0.9:
            continue
        example = next((t for line in sample if (t := reader.text(line)) is not None), b"")
        hint = (
            f"these lines have {named.title} timestamps (e.g. {example.decode('ascii', 'replace')!r}): "
            f"set date_format: {name}"
        )
        if fmt.regex != _default_regex(fmt.date_format):
            try:
                keep = EventTimeReader(
                    TimeFormat(regex=fmt.regex, date_format=name, assume_zone=fmt.assume_zone)
                )
                keeps = share(keep) >= 0.9
            except ConfigurationError:
                keeps = False
            if not keeps:
                hint += " and remove timestamp_regex (that date_format brings its own)"
        return hint
    return None
