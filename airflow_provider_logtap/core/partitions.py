"""Event-time partition paths: ``dt=2015-10-28/hour=14`` from an epoch second, with a strftime-like template.

The template's fields are ``%Y %m %d %H %M %j`` (and ``%%``); the rest is literal path text. Paths are made
in one zone (UTC by default), so a line logged at 23:30 -0800 lands in the next UTC day. Paths are cached per
quarter hour, or per minute when the template has ``%M`` (where the zone's offset is a whole multiple of that:
every zone's today, not the local mean times of the 19th century, which are computed exactly).
"""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timezone

from airflow_provider_logtap._kernel import Splitter
from airflow_provider_logtap.core.eventtime import (
    BUILTIN_REGEXES,
    END_EPOCH,
    FIRST_EPOCH,
    EventTimeReader,
    zone_of,
)
from airflow_provider_logtap.errors import ConfigurationError

DEFAULT_TEMPLATE = "dt=%Y-%m-%d/hour=%H"
#: What a partition path (or prefix) a user names looks like: relative segments of safe characters.
PARTITION_PATH = r"^[A-Za-z0-9_=.+-]+(/[A-Za-z0-9_=.+-]+)*$"
_FIELDS = set("YmdHMj%")
# What each field writes (strftime with a four-digit year), for checking paths a template could have made.
_FIELD_REGEX = {
    "Y": r"(\d{4})",
    "m": r"(0[1-9]|1[0-2])",
    "d": r"(0[1-9]|[12]\d|3[01])",
    "H": r"([01]\d|2[0-3])",
    "M": r"([0-5]\d)",
    "j": r"(00[1-9]|0[1-9]\d|[12]\d\d|3[0-5]\d|36[0-6])",
}
_SAFE = re.compile(r"^[A-Za-z0-9._=+-]+$")
_CACHE_LIMIT = 250_000
# Event times outside these years are no partition (strftime writes year 999 as "999", and 10000 does not exist):
# a day inside the reader's own bounds, so that no partition zone shifts a time out of them.
_DAY = 86_400
_MIN_EPOCH = FIRST_EPOCH + _DAY  # 1000-01-02
_MAX_EPOCH = END_EPOCH - _DAY  # 9999-12-31
#: How many partition files of a range go up at once by default (the HDFS event-time target's parallel_files).
PARALLEL_FILES = 8


def check_template(template: str) -> str:
    if not isinstance(template, str) or not template.strip("/"):
        raise ConfigurationError(
            f"partition template must be a path like {DEFAULT_TEMPLATE!r}. Got {template!r}"
        )
    fields = re.findall(r"%(.)", template)
    unknown = sorted({f for f in fields if f not in _FIELDS})
    if unknown:
        raise ConfigurationError(
            f"partition template {template!r} uses {', '.join('%' + f for f in unknown)}; the fields are "
            "%Y %m %d %H %M %j (and %% for a percent sign)"
        )
    for segment in template.strip("/").split("/"):
        literal = re.sub(r"%.", "0", segment)
        if segment in (".", "..") or not literal or not _SAFE.fullmatch(literal):
            raise ConfigurationError(
                f"partition template {template!r} has an unsafe segment {segment!r}: use letters, digits, "
                "._=+- and the date fields, separated by single '/'"
            )
        if segment[0] in "_.":
            raise ConfigurationError(
                f"partition template {template!r} has a segment {segment!r} that starts with {segment[0]!r}: "
                "directories starting with '_' are logtap's own (_logtap, _dead_letter, _trash, _replays) and "
                "those starting with '.' are hidden; start the segment with a letter or a field, like 'dt=%Y'"
            )
    return template.strip("/")


class PartitionTemplate:
    """Maps UTC epoch seconds to a partition path in a zone."""

    def __init__(self, template: str = DEFAULT_TEMPLATE, zone: str = "UTC") -> None:
        self.template = check_template(template)
        self.zone_name = zone
        self.zone = zone_of(zone)
        self.step = 60 if "%M" in self.template else 900
        self._cache: dict[int, str] = {}
        # Per segment: a regex of what it writes, and the field of each of its groups.
        self._segments = [
            (
                re.compile(
                    "".join(
                        _FIELD_REGEX[m[1]] if m[1] in _FIELD_REGEX else re.escape(m[2] or "%")
                        for m in re.finditer(r"%(.)|([^%]+)", segment)
                    ),
                    re.ASCII,
                ),
                [f for f in re.findall(r"%(.)", segment) if f in _FIELD_REGEX],
            )
            for segment in self.template.split("/")
        ]

    def _local(self, epoch: int) -> datetime:
        return datetime.fromtimestamp(epoch, tz=timezone.utc).astimezone(self.zone)

    def path(self, epoch: int) -> str:
        key = epoch // self.step
        found = self._cache.get(key)
        if found is None:
            start = self._local(key * self.step)
            found = start.strftime(self.template)
            offset = start.utcoffset()
            if (
                offset is None
                or offset.total_seconds() % self.step
                or self._local(key * self.step + self.step - 1).utcoffset() != offset
            ):
                return self._local(epoch).strftime(self.template)  # a local mean time: not on the step's grid
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def uniform(self, minute: int, path: str) -> bool:
        """Whether the minute that starts at epoch ``minute`` is all in the partition ``path``."""
        if minute // self.step in self._cache:  # on the zone's grid (a step is whole minutes)
            return True
        return self.path(minute) == path == self.path(minute + 59)

    def check_partition(self, path: str) -> str:
        """``path`` if it is a partition this template makes, or a prefix of whole segments of one.

        With ``dt=%Y-%m-%d/hour=%H``: ``dt=2015-10-28/hour=14`` and ``dt=2015-10-28`` pass; ``_logtap``,
        ``dt=2015-10-28/hour=24``, ``dt=2015-02-30``, ``/dt=2015-10-28``, ``dt=2015-10-28/`` and
        ``dt=2015-10-28/hour=14/x`` raise :class:`ConfigurationError` (with an example and the template).
        """
        segments = path.split("/") if isinstance(path, str) else []
        fields: dict[str, str] = {}
        ok = 0 < len(segments) <= len(self._segments)
        for segment, (regex, names) in zip(segments, self._segments, strict=False):
            m = regex.fullmatch(segment) if ok else None
            if m is None:
                ok = False
                break
            for name, value in zip(names, m.groups(), strict=True):
                ok = ok and fields.setdefault(name, value) == value
        if ok and "Y" in fields:
            year = int(fields["Y"])
            if "m" in fields and "d" in fields:
                ok = int(fields["d"]) <= calendar.monthrange(year, int(fields["m"]))[1]
            if "j" in fields:
                ok = ok and int(fields["j"]) <= 365 + calendar.isleap(year)
        elif ok and "m" in fields and "d" in fields:
            ok = int(fields["d"]) <= calendar.monthrange(2000, int(fields["m"]))[1]
        if not ok:
            example = self._local(1446041000).strftime(self.template)
            raise ConfigurationError(
                f"{path!r} is not a partition of the template {self.template!r}: name one like {example!r} "
                f"(or a prefix of whole segments, like {example.split('/')[0]!r})"
            )
        return path


def _place(reader: EventTimeReader, template: PartitionTemplate, text: bytes) -> tuple[str, str]:
    """``(partition, "")`` of a timestamp text the regex found, or ``("", reason)``."""
    epoch = reader.convert(text)
    if isinstance(epoch, str):
        return "", epoch
    if not _MIN_EPOCH <= epoch < _MAX_EPOCH:
        return "", f"timestamp {text.decode('ascii', 'backslashreplace')!r} is outside the years 1000 to 9999"
    return template.path(epoch), ""


def _minute_place(template: PartitionTemplate, minute: int) -> str | None:
    """The partition of every second of the UTC minute that starts at epoch ``minute``, or None where they have
    not all one (a minute outside the partitions' years, or cut by a zone's odd offset)."""
    if not _MIN_EPOCH <= minute < _MAX_EPOCH:  # both bounds are whole days: the minute is all in or all out
        return None
    path = template.path(minute)
    return path if template.uniform(minute, path) else None


class EventTimePartitioner:
    """Splits lines by the partition of their own event time; lines without one get a reason instead.

    The per-line work runs in logtap's kernel for the built-in formats' regexes (in Python for a regex of the
    user's own: a ``find``, a slice and a dict lookup); the partition of each distinct timestamp text (of each
    UTC minute, for Apache's: the kernel reads those texts itself) is decided here once. Every line gets exactly
    the answer of the format's regex and date format (the caches only make it faster).
    """

    def __init__(self, reader: EventTimeReader, template: PartitionTemplate) -> None:
        self.reader = reader
        self.template = template
        self._paths: dict[bytes, str] = {}
        self._no_match = f"no timestamp matches {reader.format.regex!r}"
        self._turn = threading.Lock()

        # The kernel's questions (no reference to the partitioner: the kernel holds them).
        def place(text: bytes) -> tuple[str | None, str | None]:
            path, reason = _place(reader, template, text)
            return (path, None) if path else (None, reason)

        def minute_place(minute: int) -> str | None:
            return _minute_place(template, minute)

        # The built-in formats' regexes (the same text in Python's and the kernel's syntax) split in the kernel;
        # a regex of the user's own, in Python (its meaning there is Python's re's). Apache texts are read by the
        # kernel itself and placed per UTC minute (partitions are at least a minute wide).
        self._kernel = (
            Splitter(
                regex=reader.format.regex,
                group=reader.group,
                place=place,
                minute_place=minute_place if reader.finds_apache and reader.apache else None,
                no_match=self._no_match,
                limit=_CACHE_LIMIT,
            )
            if reader.format.regex in BUILTIN_REGEXES
            else None
        )

    def split(self, values: Sequence[bytes | None]) -> tuple[dict[str, list[bytes]], list[tuple[int, str]]]:
        """``({path: lines in order}, [(index, reason), ...])`` for ``values`` (tombstones are skipped)."""
        if self._kernel is not None:
            with self._turn:  # the kernel's caches are one thread's at a time
                return self._kernel.split(values if isinstance(values, list) else list(values))
        return self.split_in_python(values)

    def split_joined(self, values: Sequence[bytes | None]) -> tuple[dict[str, bytes], list[tuple[int, str]]]:
        """:meth:`split` with each partition's lines as one block, every line followed by ``\\n`` (what a
        partition file holds). The kernel finds the lines' partitions without the GIL (other threads run
        meanwhile)."""
        if self._kernel is not None:
            with self._turn:
                return self._kernel.split_joined(values if isinstance(values, list) else list(values))
        buckets, bad = self.split_in_python(values)
        return {path: b"\n".join([*lines, b""]) for path, lines in buckets.items()}, bad

    def split_in_python(
        self, values: Sequence[bytes | None]
    ) -> tuple[dict[str, list[bytes]], list[tuple[int, str]]]:
        """:meth:`split` by the format's regex in Python's ``re`` (for a regex of the user's own)."""
        buckets: dict[str, list[bytes]] = {}
        bad: list[tuple[int, str]] = []
        paths, text_of = self._paths, self.reader.text
        for i, v in enumerate(values):
            if v is None:
                continue
            t = text_of(v)
            if t is None:
                bad.append((i, self._no_match))
                continue
            path = paths.get(t) or ""
            if not path:
                path, reason = _place(self.reader, self.template, t)
                if not path:
                    bad.append((i, reason))
                    continue
                if len(paths) >= _CACHE_LIMIT:
                    paths.clear()
                paths[t] = path
            bucket = buckets.get(path)
            if bucket is None:
                buckets[path] = [v]
            else:
                bucket.append(v)
        return buckets, bad
