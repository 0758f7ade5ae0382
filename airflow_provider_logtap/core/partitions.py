"""Event-time partition paths: ``dt=2015-10-28/hour=14`` from an epoch second, with a strftime-like template.

The template's fields are ``%Y %m %d %H %M %j`` (and ``%%``); the rest is literal path text. Paths are made
in one zone (UTC by default), so a line logged at 23:30 -0800 lands in the next UTC day. Paths are cached per
quarter hour (every zone's offset is a multiple of 15 minutes), or per minute when the template has ``%M``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone

from airflow_provider_logtap.core.eventtime import APACHE_REGEX, EventTimeReader, zone_of
from airflow_provider_logtap.errors import ConfigurationError

DEFAULT_TEMPLATE = "dt=%Y-%m-%d/hour=%H"
_FIELDS = set("YmdHMj%")
_SAFE = re.compile(r"^[A-Za-z0-9._=+-]+$")
_CACHE_LIMIT = 250_000


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
        if segment in (".", "..") or not literal or not _SAFE.match(literal):
            raise ConfigurationError(
                f"partition template {template!r} has an unsafe segment {segment!r}: use letters, digits, "
                "._=+- and the date fields, separated by single '/'"
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

    def path(self, epoch: int) -> str:
        key = epoch // self.step
        found = self._cache.get(key)
        if found is None:
            moment = datetime.fromtimestamp(key * self.step, tz=timezone.utc).astimezone(self.zone)
            found = moment.strftime(self.template)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found


class EventTimePartitioner:
    """Splits lines by the partition of their own event time; lines without one get a reason instead.

    The per-line work is a ``find``, a slice and a dict lookup from the timestamp text straight to the
    partition path; conversions happen once per distinct timestamp text.
    """

    def __init__(self, reader: EventTimeReader, template: PartitionTemplate) -> None:
        self.reader = reader
        self.template = template
        self._paths: dict[bytes, str] = {}
        self._minutes: dict[bytes, str] = {}
        self._apache = reader.format.regex == APACHE_REGEX and reader.format.date_format == "apache"

    def _path_of(self, text: bytes) -> str | None:
        """The partition of a timestamp text (``None`` when it cannot be read); caches what it computes."""
        epoch = self.reader.convert(text)
        if isinstance(epoch, str):
            return None
        path = self.template.path(epoch)
        cache, key = (self._minutes, text[:17] + text[20:]) if self._apache else (self._paths, text)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = path
        return path

    def split(self, values: Sequence[bytes | None]) -> tuple[dict[str, list[bytes]], list[tuple[int, str]]]:
        """``({path: lines in order}, [(index, reason), ...])`` for ``values`` (tombstones are skipped)."""
        buckets: dict[str, list[bytes]] = {}
        bad: list[tuple[int, str]] = []
        text_of = self.reader.text
        if self._apache:
            # Apache's [dd/Mon/yyyy:HH:MM:SS +zzzz]: partitions are at least a minute wide, so the text without
            # its seconds finds the path (sparse historical logs have few lines per second, many per minute).
            minutes = self._minutes
            for i, v in enumerate(values):
                if v is None:
                    continue
                j = v.find(b"[")
                if j < 0 or v[j + 27 : j + 28] != b"]":
                    bad.append((i, f"no timestamp matches {self.reader.format.regex!r}"))
                    continue
                seconds = v[j + 19 : j + 21]
                path = minutes.get(v[j + 1 : j + 18] + v[j + 21 : j + 27])
                if path is None or not seconds.isdigit() or seconds > b"60":
                    text = v[j + 1 : j + 27]
                    path = self._path_of(text)
                    if path is None:
                        bad.append((i, str(self.reader.convert(text))))
                        continue
                bucket = buckets.get(path)
                if bucket is None:
                    buckets[path] = [v]
                else:
                    bucket.append(v)
            return buckets, bad
        paths = self._paths
        for i, v in enumerate(values):
            if v is None:
                continue
            t = text_of(v)
            if t is None:
                bad.append((i, f"no timestamp matches {self.reader.format.regex!r}"))
                continue
            path = paths.get(t) or self._path_of(t)
            if path is None:
                bad.append((i, str(self.reader.convert(t))))
                continue
            bucket = buckets.get(path)
            if bucket is None:
                buckets[path] = [v]
            else:
                bucket.append(v)
        return buckets, bad
