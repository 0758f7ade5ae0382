"""HDFS sinks through WebHDFS: a raw byte-exact copy, and a copy partitioned by each line's own event time.

Both write every file under a hidden temporary name in its final directory (``.<name>.inprogress``: Hive, Spark
and Impala ignore names starting with ``.``) and rename it into place when it is complete, so readers never see
half a file. Names are deterministic (``<topic>+<partition>+<start:020d>``), so writing a range again replaces
its files instead of doubling them. The rename into place overwrites an existing file of the same name in one
NameNode operation (WebHDFS ``renameoptions=OVERWRITE``), so a reader never misses it, never sees it twice or
half written, and a task stopped at any point leaves the previous file or the new one.

The ``client`` is an ``hdfs`` library client (``WebHDFSHook(...).get_conn()``: ``InsecureClient`` or
``KerberosClient``). :func:`with_retries` gives its requests session bounded timeouts and retries with backoff
(``targets.webhdfs_client`` applies it); the sinks' operations are safe to repeat, and a rename whose answer
was lost is recognised when repeated.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import itertools
import json
import logging
import posixpath
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.batch import RecordBatch
from airflow_provider_logtap.core.deadletter import dead_letter, ratio_exceeded
from airflow_provider_logtap.core.eventtime import suggest_date_format
from airflow_provider_logtap.core.manifest import Manifest
from airflow_provider_logtap.core.partitions import PARALLEL_FILES, EventTimePartitioner
from airflow_provider_logtap.core.ranges import OffsetRange
from airflow_provider_logtap.errors import BadLineRatioError, ConfigurationError, LogtapError, check_positive
from airflow_provider_logtap.sinks.archive import ArchiveFormat, Chunk, archive_chunks, default_spool
from airflow_provider_logtap.sinks.base import WriteResult, stale_objects, track_lost

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".inprogress"
#: The extended attribute of a raw file holding its archive metadata (the S3 objects' ``logtap-*`` fields, JSON).
METADATA_XATTR = "user.logtap"
_HINT_SAMPLES = 50
MANIFESTS = "_logtap"
DEAD_LETTERS = "_dead_letter"


def temp_name(path: str) -> str:
    """``dir/.name.inprogress`` for ``dir/name``."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}{TEMP_SUFFIX}")


def check_partition_prefix(prefix: str) -> str:
    """A relative partition path or prefix (``dt=2015-10-28`` or ``dt=2015-10-28/hour=14``), safe to join, and
    never one of logtap's own directories (``_logtap``, ``_dead_letter``) or a hidden one (``.``, ``_``)."""
    if isinstance(prefix, str) and prefix.startswith("/"):
        raise ConfigurationError(
            f"a partition is a path relative to the target's topic directory. Got {prefix!r}"
        )
    clean = naming.clean_prefix(prefix, "partition")
    if not clean:
        raise ConfigurationError("a partition to overwrite must name one, like 'dt=2015-10-28'")
    hidden = [seg for seg in clean.split("/") if seg[0] in "_."]
    if hidden:
        raise ConfigurationError(
            f"partition {prefix!r} names {hidden[0]!r}: segments starting with '_' or '.' are logtap's own "
            f"directories ({MANIFESTS}, {DEAD_LETTERS}) or hidden files, never event-time partitions"
        )
    return clean


#: Statuses a WebHDFS request is retried on (an overloaded or restarting NameNode/DataNode, a gateway).
RETRY_STATUS = (429, 500, 502, 503, 504)


def with_retries(
    client: Any,
    *,
    retries: int = 5,
    backoff: float = 0.5,
    timeout: float = 120.0,
    connect_timeout: float = 10.0,
) -> Any:
    """``client`` (an ``hdfs`` library client) with bounded timeouts and retries on its requests session:
    urllib3's ``Retry`` repeats a request refused with :data:`RETRY_STATUS`, dropped or timed out, at most
    ``retries`` times with exponential backoff from ``backoff`` seconds (up to 30 s; ``Retry-After`` is
    respected) and rewinds an upload's body for each attempt. The ``hdfs`` library's own requests carry no
    timeout (a hung server would hang the task); every request gets ``(connect_timeout, timeout)``.
    Requests the sinks make are safe to repeat (writes overwrite, deletes are idempotent; renames see
    :meth:`_Files.replace`)."""
    from urllib3.util.retry import Retry

    session = getattr(client, "_session", None)  # the hook builds it; hdfs.Client has no public accessor
    if not isinstance(session, requests.Session):
        return client
    policy = Retry(
        total=retries,
        backoff_factor=backoff,
        backoff_max=30.0,
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # every verb: the sinks' requests are safe to repeat
        raise_on_status=False,  # the last answer reaches the hdfs library, which raises its error
        respect_retry_after_header=True,
    )
    adapter = _TimeoutAdapter((connect_timeout, timeout), max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return client


class _TimeoutAdapter(HTTPAdapter):
    """A requests adapter giving requests without a timeout this one."""

    def __init__(self, timeout: tuple[float, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_timeout = timeout

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:  # requests' Session passes everything by keyword
        kwargs["timeout"] = kwargs.get("timeout") or self.default_timeout
        return super().send(request, **kwargs)


class WebHdfsUnavailableError(LogtapError):
    """WebHDFS kept failing through every retry (Airflow's task retry may succeed later)."""


def _webhdfs(method: str, operation: str, client: Any, path: str, **params: str) -> requests.Response:
    """One WebHDFS operation the ``hdfs`` library has no method for (``SETXATTR``, ``GETXATTRS``), through its own
    request machinery (its URL rotation, session, retries and authentication); the answer, whatever its status."""
    from hdfs.client import _Request

    handler = _Request(method).to_method(operation)
    answer: requests.Response = handler(client, path, strict=False, **params)
    return answer


def file_metadata(client: Any, path: str) -> dict[str, str] | None:
    """The archive metadata a raw file carries (see :data:`METADATA_XATTR`), ``None`` when it has none."""
    return _Files(client).metadata(path)


class _Files:
    """The few WebHDFS operations the sinks use, on an ``hdfs`` library client. A failure the client's
    retries could not get past is a :class:`WebHdfsUnavailableError` naming the server and the fix."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @contextlib.contextmanager
    def _named(self, what: str) -> Iterator[None]:
        from hdfs.util import HdfsError

        try:
            yield
        except requests.RequestException as exc:
            raise self._unavailable(what, exc) from exc
        except HdfsError as exc:
            if getattr(exc, "exception", None) is not None or "Authentication failure" in str(exc):
                raise  # the NameNode's own answer (a missing directory, permissions): not passing
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: BaseException) -> WebHdfsUnavailableError:
        return WebHdfsUnavailableError(
            f"WebHDFS at {getattr(self.client, 'url', '?')}: {what} failed after the client's retries: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Nothing half written is visible (files are renamed into "
            "place only when complete). If the NameNode or a DataNode is only busy or restarting, the task's "
            "retry writes the range again; if it persists, check the cluster's health and the connection."
        )

    def put(self, path: str, data: IO[bytes] | bytes) -> None:
        with self._named(f"writing {path}"):
            self.client.write(path, data=data, overwrite=True)

    def replace(self, temp: str, final: str) -> None:
        """Rename ``temp`` to ``final`` atomically, replacing an older ``final``: one NameNode operation
        (WebHDFS ``RENAME`` with ``renameoptions=OVERWRITE``, HDFS's ``rename2``), so no moment exists in
        which ``final`` is missing (a task killed there would leave its range without the file, and a
        superseded retry would never write it again). A server that ignores rename options (it answers the
        plain rename's ``false``) gets delete + rename. A rename repeated after its answer was lost finds
        ``temp`` gone and ``final`` there: it is done."""
        from hdfs.util import HdfsError

        with self._named(f"renaming {temp} to {final}"):
            try:
                # The hdfs library's rename() takes no options; its request method passes them through.
                answer = self.client._rename(
                    temp, destination=self.client.resolve(final), renameoptions="OVERWRITE"
                )
                if _rename_refused(answer):
                    self.client.delete(final)
                    self.client.rename(temp, final)
            except HdfsError:
                if self.client.status(temp, strict=False) is None and self.exists(final):
                    return
                raise

    def delete(self, path: str) -> bool:
        with self._named(f"deleting {path}"):
            return bool(self.client.delete(path))

    def exists(self, path: str) -> bool:
        with self._named(f"looking up {path}"):
            return self.client.status(path, strict=False) is not None

    def names(self, directory: str) -> list[str]:
        with self._named(f"listing {directory}"):
            status = self.client.status(directory, strict=False)
            if status is None or status.get("type") != "DIRECTORY":
                return []
            return list(self.client.list(directory))

    def read(self, path: str) -> bytes:
        with self._named(f"reading {path}"), self.client.read(path) as reader:
            return bytes(reader.read())

    def tag(self, path: str, metadata: Mapping[str, str]) -> bool:
        """Record ``metadata`` on the file as its extended attribute :data:`METADATA_XATTR` (JSON; WebHDFS
        ``SETXATTR``; a rename keeps it). Returns ``False``, after a warning, where the NameNode refuses extended
        attributes (``dfs.namenode.xattrs.enabled=false``): the file is then only described by its name."""
        value = "0s" + base64.b64encode(json.dumps(dict(metadata), sort_keys=True).encode()).decode()
        with self._named(f"tagging {path}"):
            params = {"xattr.name": METADATA_XATTR, "xattr.value": value, "flag": "CREATE"}
            answer = _webhdfs("PUT", "SETXATTR", self.client, path, **params)
        if answer.ok:
            return True
        if answer.status_code >= 500:  # still failing after the session's retries: not a refusal of xattrs
            raise self._unavailable(
                f"tagging {path}", requests.HTTPError(f"{answer.status_code} {answer.text[:200]}")
            )
        if not _Files._refused_xattrs_logged:
            _Files._refused_xattrs_logged = True
            log.warning(
                "WebHDFS at %s refused the extended attribute %s on %s (%s): raw files carry their offsets in their "
                "names only (reconcile then counts their lines). Enable dfs.namenode.xattrs.enabled to record them.",
                getattr(self.client, "url", "?"),
                METADATA_XATTR,
                path,
                answer.text[:200],
            )
        return False

    _refused_xattrs_logged = False

    def metadata(self, path: str) -> dict[str, str] | None:
        """The metadata :meth:`tag` recorded on the file (``None``: none, or the NameNode has no xattrs)."""
        with self._named(f"reading the attributes of {path}"):
            params = {"xattr.name": METADATA_XATTR, "encoding": "base64"}
            answer = _webhdfs("GET", "GETXATTRS", self.client, path, **params)
        if not answer.ok:
            return None
        for attr in answer.json().get("XAttrs", ()):
            value = str(attr.get("value") or "")
            if attr.get("name") == METADATA_XATTR and value.startswith("0s"):
                try:
                    data = json.loads(base64.b64decode(value[2:]))
                except ValueError:
                    return None
                return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
        return None


def _rename_refused(answer: requests.Response) -> bool:
    """Whether a rename with options was answered as a plain rename that did nothing (``{"boolean": false}``):
    HDFS answers a rename with options with an empty body, a plain one with its boolean."""
    if not answer.content:
        return False
    try:
        return answer.json().get("boolean") is False
    except ValueError:
        return False


class HdfsRawSink:
    """The raw copy: the same byte-exact, re-run-safe files as the S3 archive, under ``<base>/<topic>/...``.

    :param client: an ``hdfs`` client (``WebHDFSHook(...).get_conn()``).
    :param base: the absolute HDFS directory of this tap's copy.
    :param archive_format: compression (default ``none`` here, as Hive reads plain text best) and file size
        limits.
    """

    name = "hdfs_raw"

    def __init__(self, *, client: Any, base: str, archive_format: ArchiveFormat | None = None) -> None:
        self.files = _Files(client)
        self.base = naming.clean_base(base)
        self.format = archive_format or ArchiveFormat(compression="none")

    def path(self, topic: str, partition: int, start: int) -> str:
        return "/" + naming.object_key(self.base, topic, partition, start, self.format.suffix)

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        began = time.monotonic()
        lost: list[OffsetRange] = []
        chunks: list[Chunk] = []
        paths: list[str] = []
        for chunk, spool in archive_chunks(rng, track_lost(batches, lost), self.format, default_spool):
            final = self.path(rng.topic, rng.partition, chunk.start)
            try:
                spool.seek(0)
                self.files.put(temp_name(final), spool)
            finally:
                spool.close()
            self.files.tag(
                temp_name(final), chunk.metadata()
            )  # the archive's metadata, as S3 objects have it
            self.files.replace(temp_name(final), final)
            chunks.append(chunk)
            paths.append(final)
        removed = self._remove_stale(rng, set(paths), lost)
        lines = sum(c.lines for c in chunks)
        tombstones = sum(c.tombstones for c in chunks)
        return WriteResult(
            sink=self.name,
            range=rng,
            records=lines + tombstones,
            written=lines,
            bytes_in=sum(c.bytes_in for c in chunks),
            bytes_out=sum(c.bytes_out for c in chunks),
            objects=tuple(paths),
            removed=tuple(removed),
            lost=tuple(lost),
            counts={
                "tombstones": tombstones,
                "invalid_utf8": sum(c.invalid_utf8 for c in chunks),
                "embedded_newlines": sum(c.embedded_newlines for c in chunks),
            },
            seconds=time.monotonic() - began,
        )

    def _remove_stale(self, rng: OffsetRange, written: set[str], lost: list[OffsetRange]) -> list[str]:
        """Files and temporary files of earlier attempts whose start lies in the range (not in lost parts)."""
        stale = stale_objects(rng, self.existing(rng), written, lost)
        for path in stale.removed:
            self.files.delete(path)
        return list(stale.removed)

    def existing(self, rng: OffsetRange) -> Iterator[tuple[str, int]]:
        """``(path, start)`` of the files (complete or ``.<name>.inprogress``) in the range's partition
        directory."""
        directory = "/" + naming.partition_dir(self.base, rng.topic, rng.partition)
        for name in self.files.names(directory):
            bare = (
                name[1 : -len(TEMP_SUFFIX)] if name.startswith(".") and name.endswith(TEMP_SUFFIX) else name
            )
            parsed = naming.parse_file_name(bare)
            if parsed is not None and parsed.topic == rng.topic and parsed.partition == rng.partition:
                yield posixpath.join(directory, name), parsed.start


class HdfsEventTimeSink:
    """Lines partitioned by their own event time: ``<base>/<topic>/dt=2015-10-28/hour=14/<topic>+<p>+<start>.log``.

    Lines without a readable event time go to ``<base>/_dead_letter/<topic>/partition=<p>/...jsonl`` with the
    reason and their topic/partition/offset. When more than ``max_bad_ratio`` of a range's lines are bad, the
    write fails *before* anything is written (a wrong regex must be loud, not a heap of dead letters).

    :param client: an ``hdfs`` client (``WebHDFSHook(...).get_conn()``).
    :param base: the absolute HDFS directory of this tap's copy.
    :param partitioner: how event times are found and which partition path they give.
    :param compression: ``none`` (default) or ``gzip``/``zstd`` for the partition files.
    :param max_bad_ratio: the largest share of lines without event time a write accepts (``None``: any).
    :param run: who writes (recorded in the manifests).
    :param only_partitions: rebuild these partitions (or partition prefixes such as ``dt=2015-10-28``) in
        place: the recorded writes of the range that touch them (before or after) are written again whole,
        the others left as they are (a replay rebuilding chosen partitions; see ``_rebuild``).
    """

    name = "hdfs_event_time"

    def __init__(
        self,
        *,
        client: Any,
        base: str,
        partitioner: EventTimePartitioner,
        compression: str = "none",
        max_bad_ratio: float | None = 0.05,
        run: str | None = None,
        only_partitions: Sequence[str] = (),
        parallel_files: int = PARALLEL_FILES,
    ) -> None:
        if max_bad_ratio is not None and not 0 <= max_bad_ratio <= 1:
            raise ConfigurationError(
                f"max_bad_ratio must be between 0 and 1 (or None). Got {max_bad_ratio!r}"
            )
        check_positive("parallel_files", parallel_files)
        self.parallel_files = parallel_files
        self.files = _Files(client)
        self.base = naming.clean_base(base)
        self.partitioner = partitioner
        self.format = ArchiveFormat(compression=compression, max_bytes=None)
        self.max_bad_ratio = max_bad_ratio
        self.run = run
        self.only = tuple(check_partition_prefix(p) for p in only_partitions)

    def _chosen(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.only)

    def _name(self, rng: OffsetRange) -> str:
        return naming.file_name(rng.topic, rng.partition, rng.start, self.format.suffix)

    def file_path(self, rng: OffsetRange, partition_path: str) -> str:
        return posixpath.join(self.base, rng.topic, partition_path, self._name(rng))

    def dead_letter_path(self, rng: OffsetRange) -> str:
        return posixpath.join(
            self.base,
            DEAD_LETTERS,
            rng.topic,
            f"partition={rng.partition}",
            naming.file_name(rng.topic, rng.partition, rng.start, ".jsonl"),
        )

    def manifest_dir(self, topic: str, partition: int) -> str:
        return posixpath.join(self.base, topic, MANIFESTS, f"partition={partition}")

    def manifest_path(self, rng: OffsetRange) -> str:
        return posixpath.join(
            self.manifest_dir(rng.topic, rng.partition),
            naming.file_name(rng.topic, rng.partition, rng.start, ".json"),
        )

    def write(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        if self.only:
            return self._rebuild(rng, batches)
        began = time.monotonic()
        lost: list[OffsetRange] = []
        with _Spools(self.format) as spools:
            tally = self._fill(spools, rng, track_lost(batches, lost), whole=rng)
            self._check_ratio(rng, tally, spools.first_reason())
            files, partitions, removed = self._publish(rng, spools)
            bytes_out = spools.bytes_out
        return WriteResult(
            sink=self.name,
            range=rng,
            records=tally.total + tally.tombstones,
            written=tally.total - tally.bad,
            bytes_in=tally.nbytes,
            bytes_out=bytes_out,
            objects=tuple(files),
            removed=tuple(removed),
            lost=tuple(lost),
            counts={"tombstones": tally.tombstones, "dead_letters": tally.bad},
            partitions=tuple(partitions),
            dead_letters=tally.bad,
            seconds=time.monotonic() - began,
        )

    def _fill(
        self,
        spools: _Spools,
        rng: OffsetRange,
        batches: Iterable[RecordBatch],
        *,
        whole: OffsetRange,
        earlier: int = 0,
    ) -> _Tally:
        """Split the batches' lines into the spools (dead letters with their reasons). Fails as soon as the bad
        lines (with the ``earlier`` ones of ``whole``) are more than ``max_bad_ratio`` of every offset of
        ``whole``: the ratio can no longer end below it, so the rest of the range need not be read."""
        tally = _Tally()
        for batch in batches:
            values = batch.values
            blocks, rejects = self.partitioner.split_joined(values)
            spools.add(blocks, batch.nbytes())
            for i, reason in rejects:
                value = values[i]
                assert value is not None
                if len(tally.samples) < _HINT_SAMPLES:
                    tally.samples.append(value)
                spools.dead(
                    reason,
                    dead_letter(
                        topic=rng.topic,
                        partition=rng.partition,
                        offset=batch.offset_at(i),
                        timestamp=batch.timestamp_at(i),
                        reason=reason,
                        value=value,
                    ),
                )
            dead = batch.tombstones()
            tally.tombstones += dead
            tally.total += len(values) - dead
            tally.bad += len(rejects)
            tally.nbytes += batch.nbytes()
            if ratio_exceeded(earlier + tally.bad, whole.size, self.max_bad_ratio):
                self._check_ratio(
                    whole,
                    replace(tally, bad=earlier + tally.bad, total=whole.size),
                    spools.first_reason(),
                    early=True,
                )
        return tally

    def _check_ratio(self, rng: OffsetRange, tally: _Tally, first_reason: str, early: bool = False) -> None:
        if ratio_exceeded(tally.bad, tally.total, self.max_bad_ratio):
            counted = (
                f"already {tally.bad} of the range's {tally.total} offsets have lines without a readable event "
                "time (stopped reading early)"
                if early
                else f"{tally.bad} of {tally.total} lines ({tally.bad / tally.total:.1%}) have no readable event time"
            )
            hint = suggest_date_format(tally.samples, self.partitioner.reader.format)
            raise BadLineRatioError(
                f"{rng}: {counted}, more than max_bad_ratio={self.max_bad_ratio:.1%}; nothing was written. The "
                f"first reason: {first_reason}. "
                + (f"Hint: {hint}. " if hint else "")
                + "Check the tap's timestamp regex and date format (a replay with corrected ones can rebuild "
                "these partitions)."
            )

    def write_starts(self, topic: str, partition: int) -> list[int]:
        """The start offsets of the writes recorded for a Kafka partition (from the manifests' names)."""
        starts = []
        for name in self.files.names(self.manifest_dir(topic, partition)):
            parsed = naming.parse_file_name(name)
            if parsed is not None and parsed.suffix == ".json" and parsed.topic == topic:
                starts.append(parsed.start)
        return sorted(starts)

    def write_containing(
        self, topic: str, partition: int, offset: int, starts: Sequence[int] | None = None
    ) -> OffsetRange | None:
        """The recorded write whose range holds ``offset`` and starts before it (a rebuild must start at its
        start, so that it replaces that write whole), or ``None``. ``starts``: :meth:`write_starts`, if known."""
        below = [s for s in (self.write_starts(topic, partition) if starts is None else starts) if s < offset]
        if not below:
            return None
        rng = OffsetRange(topic=topic, partition=partition, start=below[-1], end=below[-1])
        end = self._read_manifest(rng).end
        return replace(rng, end=end) if end > offset else None

    def _rebuild(self, rng: OffsetRange, batches: Iterable[RecordBatch]) -> WriteResult:
        """Rebuild chosen partitions: every recorded write of the range whose lines lay in a chosen partition
        before, or do now, is written again whole with this sink's (corrected) options, in place — its files in
        every partition and its dead letters replaced through its manifest, files it no longer produces
        removed. The other writes stay as they are. So the live tree holds each offset of the range once, where
        the options say, and nothing is left outside it."""
        began = time.monotonic()
        recorded = self.write_starts(rng.topic, rng.partition)
        overlapping = self.write_containing(rng.topic, rng.partition, rng.start, recorded)
        if overlapping is not None:
            raise ConfigurationError(
                f"{rng}: the recorded write {overlapping} starts before this rebuild's start and holds it; a "
                f"rebuild replaces whole writes: start at offset {overlapping.start} (the replay's plan does)."
            )
        starts = [s for s in recorded if rng.start < s < rng.end]
        bounds = [rng.start, *starts, rng.end]
        segments = [replace(rng, start=a, end=b) for a, b in itertools.pairwise(bounds)]
        lost: list[OffsetRange] = []
        with contextlib.ExitStack() as stack:
            spools = [stack.enter_context(_Spools(self.format)) for _ in segments]
            tallies: list[_Tally] = []
            bad = 0
            for spool, segment, part in zip(
                spools, segments, _by_segment(track_lost(batches, lost), bounds), strict=True
            ):
                tallies.append(self._fill(spool, segment, part, whole=rng, earlier=bad))
                bad += tallies[-1].bad
            whole = _Tally.sum(tallies)
            reasons = [sp.first_reason() for sp in spools if sp.has_dead_letters()]
            self._check_ratio(rng, whole, reasons[0] if reasons else "(none)")
            files: list[str] = []
            partitions: set[str] = set()
            removed: list[str] = []
            rewritten = untouched = written = dead = 0
            known = set(recorded)
            for segment, spool, tally in zip(segments, spools, tallies, strict=True):
                # Segments are cut at every recorded start: the one manifest a segment can have is at its start.
                old = (
                    [(self.manifest_path(segment), self._read_manifest(segment))]
                    if segment.start in known
                    else []
                )
                before = old[0][1].partitions if old else ()
                if not any(self._chosen(p) for p in (*before, *spool.paths())):
                    untouched += 1
                    continue
                published, placed, gone = self._publish(segment, spool, old)
                files += published
                partitions.update(placed)
                removed += gone
                rewritten += 1
                written += tally.total - tally.bad
                dead += tally.bad
            bytes_out = sum(sp.bytes_out for sp in spools)
        return WriteResult(
            sink=self.name,
            range=rng,
            records=whole.total + whole.tombstones,
            written=written,
            bytes_in=whole.nbytes,
            bytes_out=bytes_out,
            objects=tuple(files),
            removed=tuple(removed),
            lost=tuple(lost),
            counts={
                "tombstones": whole.tombstones,
                "dead_letters": dead,
                "writes_rebuilt": rewritten,
                "writes_untouched": untouched,
            },
            partitions=tuple(sorted(partitions)),
            dead_letters=dead,
            seconds=time.monotonic() - began,
        )

    def _read_manifest(self, rng: OffsetRange) -> Manifest:
        """The manifest of the recorded write starting at ``rng.start``."""
        path = self.manifest_path(rng)
        return Manifest.decode(self.files.read(path), path)

    def _old_manifests(self, rng: OffsetRange) -> list[tuple[str, Manifest]]:
        directory = self.manifest_dir(rng.topic, rng.partition)
        found = []
        for name in sorted(self.files.names(directory)):
            parsed = naming.parse_file_name(name)
            if parsed is None or parsed.suffix != ".json" or parsed.start not in rng:
                continue
            path = posixpath.join(directory, name)
            found.append((path, Manifest.decode(self.files.read(path), path)))
        return found

    def _put_temp(self, spools: _Spools, final: str, partition: str) -> None:
        with spools.open(partition) as data:
            self.files.put(temp_name(final), data)

    def _publish(
        self, rng: OffsetRange, spools: _Spools, old: list[tuple[str, Manifest]] | None = None
    ) -> tuple[list[str], list[str], list[str]]:
        """Temporary files, renamed into place, then what earlier writes of the range left is removed (``old``:
        their manifests, if the caller has read them already)."""
        old = self._old_manifests(rng) if old is None else old
        targets = {self.file_path(rng, p): p for p in spools.paths()}
        if spools.has_dead_letters():
            targets[self.dead_letter_path(rng)] = DEAD_LETTERS
        finals = sorted(targets)
        pending = Manifest(
            topic=rng.topic,
            partition=rng.partition,
            start=rng.start,
            end=rng.end,
            state="pending",
            files=tuple(finals),
            temps=tuple(temp_name(f) for f in finals),
            partitions=tuple(sorted(spools.paths())),
            run=self.run,
        )
        manifest = self.manifest_path(rng)
        previous = next((m for path, m in old if path == manifest), None)
        if previous is not None:
            # Keep what the earlier write of this very start listed, so that it is cleaned up below.
            pending = replace(
                pending,
                files=tuple(sorted({*finals, *previous.files})),
                temps=tuple(sorted({*pending.temps, *previous.temps})),
            )
        self.files.put(manifest, pending.encode())
        # Many partitions per range are usual (historical files span days): files go up in parallel.
        with ThreadPoolExecutor(max_workers=self.parallel_files, thread_name_prefix="logtap-hdfs") as pool:
            list(pool.map(lambda item: self._put_temp(spools, *item), targets.items()))
            list(pool.map(lambda final: self.files.replace(temp_name(final), final), finals))
        removed = []
        for _path, m in old:
            for stale in (*m.files, *m.temps):
                if stale not in targets and self.files.delete(stale):
                    removed.append(stale)
        for path, _m in old:
            if path != manifest:
                self.files.delete(path)
        complete = replace(
            pending,
            state="complete",
            files=tuple(finals),
            temps=(),
            counts={"dead_letters": spools.dead_count},
        )
        self.files.put(manifest, complete.encode())
        return finals, sorted(spools.paths()), sorted(set(removed))


class _Spools:
    """Lines per event-time partition, buffered in memory up to a budget, then appended to local spool files
    (through the tap's compression); one more file of dead letters. Filled while reading."""

    def __init__(self, fmt: ArchiveFormat, budget: int = 32 * 1024 * 1024) -> None:
        self.format = fmt
        self.budget = budget
        self._files: dict[str, _CompressedSpool] = {}
        self._pending: dict[str, list[bytes]] = {}
        self._pending_bytes = 0
        self._dead: IO[bytes] | None = None
        self._first_reason: str | None = None
        self.dead_count = 0

    def __enter__(self) -> _Spools:
        return self

    def __exit__(self, *exc: object) -> None:
        for spool in self._files.values():
            spool.close()
        if self._dead is not None:
            self._dead.close()

    def add(self, blocks: dict[str, bytes], nbytes: int) -> None:
        """Add a batch's lines per partition, a block each (every line followed by ``\\n``; ``nbytes``: their
        size, to keep memory within the budget)."""
        pending = self._pending
        for path, block in blocks.items():
            if path in pending:
                pending[path].append(block)
            else:
                pending[path] = [block]
        self._pending_bytes += nbytes
        if self._pending_bytes >= self.budget:
            self._flush()

    def _flush(self) -> None:
        for path, blocks in self._pending.items():
            spool = self._files.get(path)
            if spool is None:
                spool = self._files[path] = _CompressedSpool(self.format)
            spool.write(b"".join(blocks))
        self._pending = {}
        self._pending_bytes = 0

    def dead(self, reason: str, record: bytes) -> None:
        if self._dead is None:
            self._dead = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        if self._first_reason is None:
            self._first_reason = reason
        self._dead.write(record)
        self.dead_count += 1

    @property
    def bytes_out(self) -> int:
        """Bytes of the finished partition files."""
        return sum(spool.size for spool in self._files.values())

    def first_reason(self) -> str:
        return self._first_reason or "(none)"

    def has_dead_letters(self) -> bool:
        return self._dead is not None

    def paths(self) -> list[str]:
        self._flush()
        return list(self._files)

    @contextlib.contextmanager
    def open(self, partition: str) -> Iterator[IO[bytes]]:
        """The finished content of a partition's spool (or the dead letters), at position 0."""
        if partition == DEAD_LETTERS:
            assert self._dead is not None
            self._dead.seek(0)
            yield self._dead
            return
        yield self._files[partition].finish()


class _CompressedSpool:
    """A temporary file receiving one partition's lines through the tap's compression."""

    def __init__(self, fmt: ArchiveFormat) -> None:
        from airflow_provider_logtap.core.compression import new_compressor

        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _Spools
        self.compressor = new_compressor(fmt.compression, fmt.level)
        self.size = 0

    def write(self, data: bytes) -> None:
        out = self.compressor.compress(data)
        if out:
            self.file.write(out)

    def finish(self) -> IO[bytes]:
        out = self.compressor.flush()
        if out:
            self.file.write(out)
        self.size = self.file.tell()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()


@dataclass(kw_only=True)
class _Tally:
    total: int = 0
    bad: int = 0
    tombstones: int = 0
    nbytes: int = 0
    samples: list[bytes] = field(default_factory=list)  # the first bad lines, for a hint

    @classmethod
    def sum(cls, tallies: Iterable[_Tally]) -> _Tally:
        out = cls()
        for t in tallies:
            out.total, out.bad = out.total + t.total, out.bad + t.bad
            out.tombstones, out.nbytes = out.tombstones + t.tombstones, out.nbytes + t.nbytes
            out.samples += t.samples[: _HINT_SAMPLES - len(out.samples)]
        return out


def _by_segment(batches: Iterable[RecordBatch], bounds: Sequence[int]) -> Iterator[Iterator[RecordBatch]]:
    """The batches of ``[bounds[0], bounds[-1])`` cut at ``bounds``: one iterator per segment, consumed in
    order (each must be exhausted before the next is taken)."""
    source = iter(batches)
    carry: list[RecordBatch] = []

    def segment(end: int) -> Iterator[RecordBatch]:
        while True:
            batch = carry.pop() if carry else next(source, None)
            if batch is None:
                return
            offsets = batch.offsets
            cut = bisect.bisect_left(offsets, end)
            if cut == len(offsets):
                yield batch
                continue
            if cut:
                yield _slice(batch, 0, cut, batch.lost)
            carry.append(_slice(batch, cut, len(offsets), None if cut else batch.lost))
            return

    for end in bounds[1:]:
        yield segment(end)


def _slice(batch: RecordBatch, i: int, j: int, lost: OffsetRange | None) -> RecordBatch:
    return RecordBatch.of(
        batch.topic, batch.partition, batch.offsets[i:j], batch.values[i:j], batch.timestamps[i:j], lost
    )
