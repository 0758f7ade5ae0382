"""Deterministic names: one place decides how an object or file is named from a range.

A name carries topic, partition and the first offset the object covers, zero-padded to 20 digits so that
lexicographic order is offset order (as Kafka names its segment files). Re-writing the same range gives the
same names, so a re-run overwrites instead of duplicating. The parse functions read a name back so a sink can
find what an earlier, unfinished attempt left behind.
"""

from __future__ import annotations

import posixpath
import re
from typing import NamedTuple

from airflow_provider_logtap.core.ranges import check_topic
from airflow_provider_logtap.errors import ConfigurationError

OFFSET_DIGITS = 20
_NAME_RE = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<start>\d{20})(?P<suffix>\..*)?$")
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._=@+-]+")
#: Elasticsearch's and OpenSearch's longest index name, in bytes.
INDEX_NAME_MAX_BYTES = 255
_INDEX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class ParsedName(NamedTuple):
    topic: str
    partition: int
    start: int
    suffix: str


def file_name(topic: str, partition: int, start: int, suffix: str) -> str:
    """``<topic>+<partition>+<start:020d><suffix>``, e.g. ``weblogs+3+00000000000000001200.log.gz``."""
    check_topic(topic)
    return f"{topic}+{partition}+{start:0{OFFSET_DIGITS}d}{suffix}"


def parse_file_name(name: str) -> ParsedName | None:
    """The parts of a name made by :func:`file_name`, or ``None`` for any other name."""
    m = _NAME_RE.match(posixpath.basename(name))
    if not m:
        return None
    return ParsedName(m["topic"], int(m["partition"]), int(m["start"]), m["suffix"] or "")


def clean_prefix(prefix: str, name: str = "prefix") -> str:
    """A relative, normalised key prefix without ``..``, wildcards or empty segments ("" is allowed).

    User input (a replay's target, a tap's configuration) must not escape its base.
    """
    if not isinstance(prefix, str):
        raise ConfigurationError(f"{name} must be a string. Got {prefix!r}")
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    segments = stripped.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _SAFE_SEGMENT.fullmatch(segment):
            raise ConfigurationError(
                f"{name} must be letters, digits and ._=@+- separated by single '/', with no '.' or '..' "
                f"segments and no wildcards: {segment!r} is an unsafe segment. Got {prefix!r}"
            )
    return "/".join(segments)


def clean_relative(prefix: str, name: str = "prefix") -> str:
    """:func:`clean_prefix` of a prefix that must be relative (an S3 key prefix: keys never start with '/')."""
    if isinstance(prefix, str) and prefix.startswith("/"):
        raise ConfigurationError(
            f"{name} must be relative, like {prefix.strip('/') or 'archive/raw'!r} (keys do not start with '/'). "
            f"Got {prefix!r}"
        )
    return clean_prefix(prefix, name)


def clean_base(base: str) -> str:
    """An absolute HDFS base path (``/data/weblogs``) without ``..``, wildcards or odd characters."""
    if not isinstance(base, str) or not base.startswith("/") or base.startswith("//"):
        raise ConfigurationError(
            f"HDFS base path must be absolute, like '/data/logs' (one leading '/': '//x' names a host). "
            f"Got {base!r}"
        )
    rest = clean_prefix(base, "HDFS base path")
    if not rest:
        raise ConfigurationError("HDFS base path must not be '/' itself: give logtap a directory of its own")
    return "/" + rest


#: What any S3 store has allowed in a bucket name (AWS's rule is narrower: 3-63 of [a-z0-9.-]; us-east-1's
#: legacy names had upper case and '_', up to 255): no '/', spaces, wildcards or control characters.
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def check_bucket(name: str) -> str:
    """``name`` if it is a bare S3 bucket name (the one rule of the archive's bucket)."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name):
        raise ConfigurationError(
            "bucket must be the bare bucket name: 1-255 letters, digits, '.', '_' or '-' (no 's3://', '/', spaces or "
            f"wildcards; a key prefix goes in prefix). Got {name!r}"
        )
    return name


def check_index_name(name: str, what: str = "index name") -> str:
    """``name`` if Elasticsearch and OpenSearch accept it as an index (or alias, or prefix of one) that logtap
    makes: lower-case letters, digits, '-', '_' and '.', not starting with '-', '_', '.' or '+', at most
    :data:`INDEX_NAME_MAX_BYTES` bytes. Stricter than the servers (no ':', '#', non-ASCII), so that every name
    also stays a plain path segment and pattern literal; the one rule of the search target's names."""
    if not isinstance(name, str) or not name or not set(name) <= _INDEX_CHARS or name[0] in "-_.+":
        raise ConfigurationError(
            f"{what} must be lower-case letters, digits, '-', '_' or '.', not starting with '-', '_' or '.'. "
            f"Got {name!r}"
        )
    if len(name.encode()) > INDEX_NAME_MAX_BYTES:
        raise ConfigurationError(
            f"{what} must be at most {INDEX_NAME_MAX_BYTES} bytes (Elasticsearch's and OpenSearch's limit); "
            f"shorten it by {len(name.encode()) - INDEX_NAME_MAX_BYTES}. Got {name!r}"
        )
    return name


def partition_dir(prefix: str, topic: str, partition: int) -> str:
    """``<prefix>/<topic>/partition=<p>`` (no leading or trailing slash)."""
    check_topic(topic)
    parts = [p for p in (clean_prefix(prefix), topic, f"partition={partition}") if p]
    return "/".join(parts)


def object_key(prefix: str, topic: str, partition: int, start: int, suffix: str) -> str:
    """``<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d><suffix>``."""
    return f"{partition_dir(prefix, topic, partition)}/{file_name(topic, partition, start, suffix)}"
