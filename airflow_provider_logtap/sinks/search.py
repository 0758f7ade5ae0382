"""The search sink: access-log lines parsed into ECS documents, GeoIP-enriched, bulk-indexed into daily
indices of Elasticsearch or OpenSearch, exactly once.

- ``_id`` is ``<topic>-<partition>-<offset>``: any re-run or replay into the same index overwrites, never
  doubles.
- Daily indices from the line's own event time: ``<prefix>-YYYY.MM.DD`` (configurable), under an index
  template this sink puts (``@timestamp`` a date, ``source.geo.location`` a geo_point, strings keyword with
  ``message`` and ``user_agent.original`` also as text) that also gives every one of them the alias
  ``<prefix>``: the data view of a tap's live documents is ``<prefix>`` (or ``<prefix>-*``), and it holds
  nothing else — dead letters are in ``<prefix>.dead-letter`` and replays in ``<prefix>.replay-<name>-*``,
  outside it (see :func:`index_names`).
- Templates of overlapping patterns (nested prefixes ``logs`` / ``logs-eu``, a replay next to its live tap)
  never tie: a template's priority grows with the length of its pattern's literal part, so the most specific
  pattern wins and Elasticsearch/OpenSearch accept them all, in any order.
- A whole range is parsed first, its bulk bodies spooled to a local file: when more than ``max_bad_ratio`` of
  its lines do not parse (the wrong-format case), the write fails *before indexing anything*.
- Bulk requests are bounded (documents and bytes); items refused with 429 or 5xx are retried alone with
  backoff, and so is a whole request refused with 429/502/503/504, cut off or timed out (as the official bulk
  helpers retry: exponential backoff, a bounded number of attempts; ``_id`` s make a re-sent document overwrite
  itself); documents the server rejects (mapping errors) and lines that do not parse go to the dead-letter index
  ``<prefix>.dead-letter`` with the reason, the raw line and topic/partition/offset — never silently dropped.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import IO, Any, Protocol

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.deadletter import dead_letter, ratio_exceeded
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import BadLineRatioError, LogtapError, check_positive
from airflow_provider_logtap.sinks.base import WriteResult, track_lost

_RETRY_STATUS = {429, 500, 502, 503, 504}

#: Bulk requests a search sink has in flight at once, unless a target says otherwise.
BULK_CONCURRENCY = 2

#: A bulk action line: index ``%s``, ``_id`` ``<topic>-<partition>-<offset>`` (the one definition of the id).
_ACTION = b'{"index":{"_index":"%s","_id":"%s-%d-%d"}}\n'
#: An action line and its document line.
_ACTION_AND_DOC = _ACTION + b"%s\n"


class TransientBulkError(Exception):
    """A whole bulk request failed for a passing reason: the cluster answered 429/502/503/504, or the
    connection dropped or timed out. The :class:`SearchClient` raises it; the sink retries with backoff."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"{server}: {reason}")
        self.server, self.reason = server, reason


class SearchUnavailableError(LogtapError):
    """The search cluster kept refusing or dropping bulk requests through every retry (Airflow's task retry
    may succeed later)."""


class SearchClient(Protocol):
    """What the sink needs of an Elasticsearch or OpenSearch client (see ``targets.search_client``); ``bulk``
    raises :class:`TransientBulkError` for a failure worth retrying."""

    def bulk(self, body: bytes) -> dict[str, Any]: ...

    def put_index_template(self, name: str, body: dict[str, Any]) -> None: ...


def check_index_prefix(prefix: str) -> str:
    """A lower-case index name prefix without wildcards, commas or other characters indices may not have."""
    return naming.check_index_name(prefix, "index_prefix")


#: Above the built-in templates of Elasticsearch (``logs-*-*`` etc. at 100-ish), which would otherwise turn a
#: tap's daily indices into data streams.
BASE_PRIORITY = 200
DEAD_LETTER_SUFFIX = ".dead-letter"
REPLAY_INFIX = ".replay-"


def index_names(prefix: str) -> dict[str, str]:
    """The names a search tap with ``index_prefix`` uses, one place for all of them (the README's table):

    - ``alias``: ``<prefix>``, on every live daily index — the data view of the live documents;
    - ``live``: ``<prefix>-*``, the pattern of the live daily indices ``<prefix>-<date>``;
    - ``dead_letter``: ``<prefix>.dead-letter``, outside ``<prefix>-*``;
    - ``replays``: ``<prefix>.replay-*``, where replays go (``<prefix>.replay-<name>`` is a replay's own
      prefix, with its own alias, daily indices and dead letters), outside ``<prefix>-*``.
    """
    check_index_prefix(prefix)
    return {
        "alias": prefix,
        "live": f"{prefix}-*",
        "dead_letter": f"{prefix}{DEAD_LETTER_SUFFIX}",
        "replays": f"{prefix}{REPLAY_INFIX}*",
    }


def replay_prefix(prefix: str, name: str) -> str:
    """The index prefix of replay ``name`` of the tap with ``prefix``: ``<prefix>.replay-<name>``."""
    return check_index_prefix(f"{prefix}{REPLAY_INFIX}{name.lower()}")


def template_priority(pattern: str) -> int:
    """A priority that grows with a pattern's specificity: where two of our patterns overlap, one's literal
    part extends the other's (``logs-eu-*`` ⊂ ``logs-*``; ``logs.dead-letter`` is exact), so they never tie."""
    literal = pattern.rstrip("*")
    return BASE_PRIORITY + 2 * len(literal) + (0 if pattern.endswith("*") else 1)


def index_template(prefix: str) -> dict[str, Any]:
    """The composable index template of the live indices ``<prefix>-*`` (alias ``<prefix>``): ECS types a
    Kibana/OpenSearch Dashboards user needs."""
    names = index_names(prefix)
    return _template(names["live"], _DOCUMENT, aliases={names["alias"]: {}})


def dead_letter_template(prefix: str) -> dict[str, Any]:
    """The composable index template of the dead-letter index ``<prefix>.dead-letter``: the fields of
    :func:`~airflow_provider_logtap.core.deadletter.dead_letter` (and ``@timestamp`` of refused documents)."""
    return _template(index_names(prefix)["dead_letter"], _DEAD_LETTER)


def _template(
    pattern: str, properties: dict[str, Any], aliases: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "index_patterns": [pattern],
        "priority": template_priority(pattern),
        "template": {
            **({"aliases": aliases} if aliases else {}),
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": _KEYWORD}}],
                "properties": properties,
            },
        },
    }


_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_DOCUMENT: dict[str, Any] = {
    "@timestamp": {"type": "date"},
    "message": {"type": "text"},
    "source": {
        "properties": {
            "ip": {"type": "ip"},
            "address": _KEYWORD,
            "domain": _KEYWORD,
            "port": {"type": "integer"},
            "geo": {
                "properties": {
                    "location": {"type": "geo_point"},
                    "country_iso_code": _KEYWORD,
                    "country_name": _KEYWORD,
                    "city_name": _KEYWORD,
                    "region_name": _KEYWORD,
                }
            },
            "as": {
                "properties": {
                    "number": {"type": "long"},
                    "organization": {"properties": {"name": _KEYWORD}},
                }
            },
        }
    },
    "url": {"properties": {"original": {**_KEYWORD, "fields": {"text": {"type": "text"}}}}},
    "user_agent": {"properties": {"original": {**_KEYWORD, "fields": {"text": {"type": "text"}}}}},
    "http": {
        "properties": {
            "version": _KEYWORD,
            "request": {"properties": {"method": _KEYWORD, "referrer": _KEYWORD}},
            "response": {
                "properties": {
                    "status_code": {"type": "short"},
                    "body": {"properties": {"bytes": {"type": "long"}}},
                }
            },
        }
    },
    "kafka": {
        "properties": {
            "topic": _KEYWORD,
            "partition": {"type": "integer"},
            "offset": {"type": "long"},
        }
    },
    "reason": {"type": "text"},
}
_DEAD_LETTER: dict[str, Any] = {
    "@timestamp": {"type": "date"},
    "topic": _KEYWORD,
    "partition": {"type": "integer"},
    "offset": {"type": "long"},
    "timestamp": {"type": "date", "format": "epoch_millis"},
    "reason": {"type": "text"},
    "line": {"type": "text"},
    "line_base64": {"type": "binary"},
}


class SearchSink:
    """Index a range's access-log lines as ECS documents.

    :param client: a :class:`SearchClient` (Elasticsearch or OpenSearch).
    :param index_prefix: indices are ``<prefix>-<event date>`` (alias ``<prefix>``) and
        ``<prefix>.dead-letter``.
    :param parser: the access-log parser (log format, time format, GeoIP lookup).
    :param index_date_format: strftime format of the daily suffix (``%Y.%m.%d``).
    :param max_bad_ratio: the largest share of lines that may fail to parse (``None``: any).
    :param bulk_docs: documents per bulk request.
    :param bulk_bytes: bytes per bulk request.
    :param bulk_concurrency: bulk requests in flight at once (each on its own thread; a server indexes each
        request of one shard on one write thread, so one at a time leaves its other cores idle).
    :param max_retries: retries of items refused with 429/5xx, and of whole requests refused with
        429/502/503/504, dropped or timed out.
    :param backoff: seconds before the first retry, doubled each time (up to ``max_backoff``).
    :param max_backoff: the longest wait between two attempts.
    """

    name = "search"

    def __init__(
        self,
        *,
        client: SearchClient,
        index_prefix: str,
        parser: AccessLogParser,
        index_date_format: str = "%Y.%m.%d",
        max_bad_ratio: float | None = 0.05,
        bulk_docs: int = 5000,
        bulk_bytes: int = 8 * 1024 * 1024,
        bulk_concurrency: int = BULK_CONCURRENCY,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.client = client
        self.prefix = check_index_prefix(index_prefix)
        self.parser = parser
        self.date_format = index_date_format
        self.max_bad_ratio = max_bad_ratio
        self.bulk_docs, self.bulk_bytes = bulk_docs, bulk_bytes
        check_positive("bulk_concurrency", bulk_concurrency)
        self.bulk_concurrency = bulk_concurrency
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._days: dict[bytes, bytes] = {}
        self.dead_letter_index = index_names(self.prefix)["dead_letter"]

    def ensure_template(self) -> None:
        self.client.put_index_template(f"logtap.{self.prefix}", index_template(self.prefix))
        self.client.put_index_template(f"logtap.{self.dead_letter_index}", dead_letter_template(self.prefix))

    def _index_of(self, doc: bytes) -> bytes:
        day = doc[15:25] if doc.startswith(b'{"@timestamp":"') else None
        if day is None:
            day = json.loads(doc)["@timestamp"][:10].encode()
        return self._index_of_day(day)

    def _index_of_day(self, day: bytes) -> bytes:
        """The daily index of ``b"2015-10-28"``."""
        found = self._days.get(day)
        if found is None:
            moment = datetime.strptime(day.decode(), "%Y-%m-%d").replace(tzinfo=timezone.utc)
            found = f"{self.prefix}-{moment.strftime(self.date_format)}".lower().encode()
            self._days[day] = found
        return found

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        began = time.monotonic()
        lost: list[OffsetRange] = []
        self.ensure_template()
        topic, partition = rng.topic, rng.partition
        indexed = total = bad = tombstones = nbytes = 0
        indices: set[bytes] = set()
        with tempfile.TemporaryFile() as spool, tempfile.TemporaryFile() as dead:
            for batch in track_lost(batches, lost):
                values = batch.values
                offsets = batch.offsets
                # The kernel's bulk lines; the values it leaves (tombstones, unusual lines, reasons) are parsed
                # the Python way below.
                body, rest, used = self.parser.bulk(
                    values, topic=topic, partition=partition, offsets=offsets, index_of=self._index_of_day
                )
                indices.update(used)
                spool.write(body)
                nbytes += batch.nbytes()
                total += len(values) - batch.tombstones()
                if not rest:
                    continue
                left = [values[i] for i in rest]
                left_offsets = [offsets[i] for i in rest]
                docs, rejected = self.parser.parse_many_json(
                    left, topic=topic, partition=partition, offsets=left_offsets, kernel=False
                )
                skip = set()
                for k, reason in rejected:
                    skip.add(k)
                    value = left[k]
                    if value is None:
                        tombstones += 1
                        continue
                    bad += 1
                    dead.write(
                        self._dead_action(topic, partition, left_offsets[k])
                        + dead_letter(
                            topic=topic,
                            partition=partition,
                            offset=left_offsets[k],
                            timestamp=batch.timestamp_at(rest[k]),
                            reason=reason,
                            value=value,
                        )
                    )
                if ratio_exceeded(bad, rng.size, self.max_bad_ratio):
                    # The ratio can no longer end below the limit: stop reading the rest of the range.
                    self._too_many_bad(
                        rng, bad, f"already {bad} of the range's {rng.size} offsets (stopped early)"
                    )
                documents = iter(docs)
                lines = []
                for k, offset in enumerate(left_offsets):
                    if k in skip:
                        continue
                    doc = next(documents)
                    index = self._index_of(doc)
                    indices.add(index)
                    lines.append(_ACTION_AND_DOC % (index, topic.encode(), partition, offset, doc))
                spool.write(b"".join(lines))
            if ratio_exceeded(bad, total, self.max_bad_ratio):
                self._too_many_bad(rng, bad, f"{bad} of {total} lines ({bad / total:.1%})")
            spool.seek(0)
            indexed, refused = self._send(_actions(spool))
            dead_count = bad + len(refused)
            for action, reason in refused:
                dead.write(self._dead_from_refused(action, reason))
            dead.seek(0)
            dead_indexed, dead_refused = self._send(_actions(dead))
            if dead_refused:
                raise LogtapError(
                    f"{rng}: the dead-letter index {self.dead_letter_index} refused {len(dead_refused)} records "
                    f"(first: {dead_refused[0][1]}); they are in no index. Check its mapping."
                )
        return WriteResult(
            sink=self.name,
            range=rng,
            records=total + tombstones,
            written=indexed,
            bytes_in=nbytes,
            objects=tuple(sorted(i.decode() for i in indices)),
            lost=tuple(lost),
            counts={
                "tombstones": tombstones,
                "unparsed": bad,
                "refused": len(refused),
                "dead_letters": dead_indexed,
            },
            dead_letters=dead_count,
            seconds=time.monotonic() - began,
        )

    def _too_many_bad(self, rng: OffsetRange, bad: int, counted: str) -> None:
        assert self.max_bad_ratio is not None
        raise BadLineRatioError(
            f"{rng}: {counted} do not parse as Apache access logs, more than max_bad_ratio="
            f"{self.max_bad_ratio:.1%}; nothing was indexed. Check the tap's log_format and date format (a replay "
            "with corrected ones can index the range again)."
        )

    def _dead_action(self, topic: str, partition: int, offset: int) -> bytes:
        return _ACTION % (
            self.dead_letter_index.encode(),
            topic.encode(),
            partition,
            offset,
        )

    def _dead_from_refused(self, action: bytes, reason: str) -> bytes:
        """A dead letter for a document the server refused (its line, provenance and the server's reason)."""
        _head, doc = action.split(b"\n", 1)
        source = json.loads(doc)
        kafka = source.get("kafka", {})
        record = {
            "topic": kafka.get("topic"),
            "partition": kafka.get("partition"),
            "offset": kafka.get("offset"),
            "reason": f"refused by the index: {reason}",
            "line": source.get("message"),
            "@timestamp": source.get("@timestamp"),
        }
        return self._dead_action(
            str(record["topic"]), int(record["partition"] or 0), int(record["offset"] or 0)
        ) + (json.dumps(record).encode() + b"\n")

    def _send(self, actions: Iterator[bytes]) -> tuple[int, list[tuple[bytes, str]]]:
        """Bulk-index ``actions`` (action + source line pairs) in bounded requests, up to ``bulk_concurrency`` at
        once; returns the number indexed and the actions the server refused for good, with its reason. A request
        that fails for good fails the write once the others in flight have ended (ids are fixed: the task's retry
        indexes the range again, nothing doubles)."""
        indexed = 0
        refused: list[tuple[bytes, str]] = []
        in_flight: deque[Future[tuple[int, list[tuple[bytes, str]]]]] = deque()

        def collect(limit: int) -> None:
            nonlocal indexed
            while len(in_flight) > limit:
                done, failed = in_flight.popleft().result()
                indexed += done
                refused.extend(failed)

        with ThreadPoolExecutor(self.bulk_concurrency, thread_name_prefix="logtap-bulk") as pool:

            def send(chunk: list[bytes]) -> None:
                collect(self.bulk_concurrency - 1)  # wait for a free slot
                in_flight.append(pool.submit(self._bulk, chunk))

            try:
                chunk: list[bytes] = []
                size = 0
                for action in actions:
                    chunk.append(action)
                    size += len(action)
                    if len(chunk) >= self.bulk_docs or size >= self.bulk_bytes:
                        send(chunk)
                        chunk, size = [], 0
                if chunk:
                    send(chunk)
                collect(0)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return indexed, refused

    def _bulk(self, chunk: list[bytes]) -> tuple[int, list[tuple[bytes, str]]]:
        """One bulk request, with the items refused for a passing reason (429, 5xx) retried alone."""
        pending = chunk
        indexed = 0
        refused: list[tuple[bytes, str]] = []
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.bulk(b"".join(pending))
            except TransientBulkError as exc:
                if attempt == self.max_retries:
                    raise SearchUnavailableError(
                        f"bulk indexing into {exc.server} failed {attempt + 1} times ({exc.reason}); "
                        f"{indexed} documents of this request were indexed, {len(pending)} were not. The "
                        "cluster is overloaded or unreachable: the task's retry indexes the range again "
                        "(documents have fixed ids, nothing doubles). If it persists, check the cluster's "
                        "health and the connection, or send smaller bulk requests (bulk_docs)."
                    ) from exc
                self._sleep(attempt)
                continue
            retry = []
            for action, item in zip(pending, response.get("items", ()), strict=True):
                result = next(iter(item.values()))
                status = int(result.get("status", 500))
                if status < 300:
                    indexed += 1
                elif status in _RETRY_STATUS and attempt < self.max_retries:
                    retry.append(action)
                else:
                    error = result.get("error")
                    reason = json.dumps(error) if not isinstance(error, str) else error
                    refused.append((action, f"{status} {reason}"))
            if not retry:
                break
            pending = retry
            self._sleep(attempt)
        return indexed, refused

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.max_backoff, self.backoff * 2**attempt))


def _actions(spool: IO[bytes]) -> Iterator[bytes]:
    """Action + source line pairs from a spool of bulk lines."""
    while True:
        action = spool.readline()
        if not action:
            return
        yield action + spool.readline()
