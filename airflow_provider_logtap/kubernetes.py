"""Pod overrides for running logtap's loads on Airflow's KubernetesExecutor, one pod per chunk.

:func:`pod_override` gives the ``executor_config={"pod_override": ...}`` of a load task: the worker container
(``base``, Airflow's name for the task's container) gets resources sized for one load of at most
``chunk_records`` offsets, a local spool directory of that size, the GeoIP database mounted read-only where
``$LOGTAP_GEOIP_DB`` points, and the Airflow connections from Kubernetes Secrets (``env_from``), never as
literal values. Airflow merges it into the worker pod of its ``pod_template_file`` (the provider's
``PodGenerator.reconcile_pods``). docs/kubernetes.md says how to use it.

The sizing rules are the constants below (:func:`load_resources` applies them), each with where it comes
from. ``kubernetes`` (the client the cncf-kubernetes provider installs) is imported only when a pod is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_logtap.errors import ConfigurationError, check_positive, one_of
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from kubernetes.client.models import V1Pod, V1Volume  # type: ignore[import-untyped]

MIB = 1024 * 1024

#: The container Airflow runs the task in (``spec.containers[0]`` of every worker pod): a pod override's first
#: container must carry this name, or Airflow's merge treats it as another container's settings.
BASE_CONTAINER = "base"

#: Memory of one load, requested and its limit: flat, whatever ``chunk_records`` is. Measured peak RSS of whole
#: loads, each in a fresh interpreter that first imports Airflow 3's task runner and logtap's operators, then
#: reads the range through the Kafka hook and writes it with the target's sink (2026-12-02, 2 vCPU; 50k / 200k /
#: 500k records of ~190-byte lines, 4 days of event times): HDFS raw 201 / 217 / 217 MB, HDFS by event time
#: 211 / 243 / 244 MB (its in-memory partition buffer is bounded, 32 MiB of lines: sinks/hdfs.py ``_Spools``),
#: search with the DB-IP city GeoIP database 272 / 335 / 351 MB (bulk bodies are spooled to disk and sent in
#: bounded requests), S3 archive 192 / 231 / 246 MB (uploads stream, at most two parts in flight).
#: On Kubernetes the task process runs under its supervisor (Airflow 3) or local task job (Airflow 2.11),
#: ~122 MB more (``import airflow.sdk.execution_time.supervisor``). So ~475 MB at most; 768 MiB leaves room for
#: longer lines (a consume batch is 2,000 records) and the GeoIP caches of a busier site. Request = limit:
#: memory is never throttled, only killed, so the scheduler places the pod for what it may use.
LOAD_MEMORY_MIB = 768

#: CPU requested: a load is one Python thread (reading, framing, parsing) plus librdkafka's fetch threads and
#: one compression thread, and the Python thread is what bounds it (bench/README.md: the reader alone reaches
#: 0.5-0.8x kcat on one core). No CPU limit by default: the extra threads may use idle cores instead of being
#: throttled.
LOAD_CPU = "1"

#: Average bytes per log line assumed when the caller does not say: Apache combined lines of busy sites are
#: 200-400 bytes (the bench's generated lines are ~190); pass your own (a load's log says ``N offsets`` and its
#: result ``bytes_in``).
DEFAULT_LINE_BYTES = 512

#: Local spool bytes of one record, per target type, as ``(bytes per byte of the line, bytes more per record)``
#: (sinks/*.py; measured as above, the spool files' peak size):
#:
#: - ``s3_archive`` none: objects are uploaded while they are written (streaming multipart, parts in memory);
#: - ``hdfs_raw`` the line and its newline: one object at a time is spooled to a temporary file, then put
#:   (sinks/archive.py ``default_spool``; the upload rolls it to disk), so at most ``max_bytes_per_object``;
#:   measured 1.00x the lines;
#: - ``hdfs_event_time`` the whole chunk: every line goes to a spool file of its event-time partition before the
#:   first file is written (nothing is written if the bad-line ratio is exceeded), measured 1.005x the lines;
#:   plus the dead letters, JSON records of ~2x the line and ~300 bytes, of up to ``max_bad_ratio`` (default
#:   0.05) of the lines: 1.1x and 16 bytes;
#: - ``search`` the whole chunk's bulk bodies (an action line and an ECS document holding the raw ``message``,
#:   its URL, user agent and referrer again, and GeoIP fields), spooled before the first request: measured
#:   2.0x the line + 500 bytes (880 bytes for 189-byte lines, 1,286 for 392, 2,086 for 792), plus dead letters.
SPOOL_PER_RECORD: Mapping[str, tuple[float, int]] = {
    "s3_archive": (0.0, 0),
    "hdfs_raw": (1.0, 1),
    "hdfs_event_time": (1.1, 16),
    "search": (2.1, 528),
}

#: Ephemeral storage beyond the spool: the task's log file (written in the pod, shipped by remote logging),
#: Python's caches, the container's writable layer.
EPHEMERAL_BASE_MIB = 256

#: The smallest spool directory: other libraries' temporary files go there too (``$TMPDIR``).
SPOOL_MIN_MIB = 64

#: Headroom on the spool estimate (lines longer than ``line_bytes`` on average, a chunk of retried records).
SPOOL_HEADROOM = 1.25

#: Where the spool directory (an ``emptyDir`` sized for the chunk) is mounted; ``$TMPDIR`` points there, which
#: is where the sinks' temporary files go (Python's ``tempfile``), so they never fill the image's filesystem.
SPOOL_DIR = "/tmp/logtap-spool"
SPOOL_VOLUME = "logtap-spool"

#: Where the GeoIP volume is mounted (read-only); ``$LOGTAP_GEOIP_DB`` names its files there, which is what
#: the search target reads when its ``geoip_database`` is null (targets/search.py, enrich/geoip.py).
GEOIP_DIR = "/opt/logtap/geoip"
GEOIP_ENV = "LOGTAP_GEOIP_DB"

#: The label every pod of a logtap load gets (``kubectl top pods -l app.kubernetes.io/component=logtap-load``).
LOAD_LABELS: Mapping[str, str] = {"app.kubernetes.io/component": "logtap-load"}


@dataclass(frozen=True, kw_only=True)
class LoadResources:
    """What one load of ``chunk_records`` offsets needs, in bytes and CPUs, and as Kubernetes quantities."""

    memory_bytes: int
    cpu: str
    spool_bytes: int
    ephemeral_bytes: int

    @property
    def memory(self) -> str:
        return _mebibytes(self.memory_bytes)

    @property
    def spool(self) -> str:
        return _mebibytes(self.spool_bytes)

    @property
    def ephemeral_storage(self) -> str:
        return _mebibytes(self.ephemeral_bytes)


def load_resources(
    *,
    chunk_records: int,
    target: str = "hdfs_event_time",
    line_bytes: int = DEFAULT_LINE_BYTES,
    max_bytes_per_object: int = DEFAULT_MAX_BYTES,
) -> LoadResources:
    """The resources of one load of at most ``chunk_records`` offsets into a ``target`` of that type (the rules
    are this module's constants): memory flat, one CPU, a spool of ``chunk_records`` records of
    :data:`SPOOL_PER_RECORD` (``hdfs_raw``: at most ``max_bytes_per_object``) times :data:`SPOOL_HEADROOM`,
    and ephemeral storage for the spool plus :data:`EPHEMERAL_BASE_MIB`."""
    for name, value in (
        ("chunk_records", chunk_records),
        ("line_bytes", line_bytes),
        ("max_bytes_per_object", max_bytes_per_object),
    ):
        check_positive(name, value)
    one_of("target", target, SPOOL_PER_RECORD)
    per_byte, per_record = SPOOL_PER_RECORD[target]
    spooled = chunk_records * (per_byte * line_bytes + per_record)
    if target == "hdfs_raw":
        spooled = min(spooled, max_bytes_per_object)
    spool = _round_up_mib(spooled * SPOOL_HEADROOM)
    return LoadResources(
        memory_bytes=LOAD_MEMORY_MIB * MIB,
        cpu=LOAD_CPU,
        spool_bytes=spool,
        ephemeral_bytes=spool + EPHEMERAL_BASE_MIB * MIB,
    )


def pod_override(
    *,
    chunk_records: int,
    target: str = "hdfs_event_time",
    line_bytes: int = DEFAULT_LINE_BYTES,
    max_bytes_per_object: int = DEFAULT_MAX_BYTES,
    geoip_volume: V1Volume | None = None,
    geoip_files: Sequence[str] = ("GeoLite2-City.mmdb",),
    connection_secrets: Sequence[str] = (),
    cpu_limit: str | None = None,
) -> V1Pod:
    """The ``pod_override`` of a load task on the KubernetesExecutor (``executor_config={"pod_override":
    pod_override(chunk_records=...)}``): a ``V1Pod`` whose ``base`` container gets

    - the resources of :func:`load_resources` (memory request = limit, CPU request 1, ephemeral storage for the
      spool), and ``cpu_limit`` when given;
    - an ``emptyDir`` of the spool's size at :data:`SPOOL_DIR`, with ``$TMPDIR`` pointing to it;
    - with ``geoip_volume`` (any volume holding the MaxMind DB files, e.g. a PersistentVolumeClaim), that volume
      mounted read-only at :data:`GEOIP_DIR` and ``$LOGTAP_GEOIP_DB`` naming ``geoip_files`` in it
      (``city.mmdb`` or a city and an ASN database);
    - ``env_from`` each Secret of ``connection_secrets``: Secrets whose keys are ``AIRFLOW_CONN_<ID>`` (the
      connections as JSON or URI), so the pod spec holds only the Secrets' names.

    :param chunk_records: the most offsets one load reads: the tap's ``chunk_records`` (or, without chunks,
        its ``max_records_per_run``).
    :param target: the target type: ``s3_archive``, ``hdfs_raw``, ``hdfs_event_time`` or ``search``.
    :param line_bytes: the average bytes per record of the topic.
    :param max_bytes_per_object: the target's ``max_bytes_per_object`` (``hdfs_raw`` spools one object).
    """
    try:
        from kubernetes.client import models as k8s  # type: ignore[import-untyped]
    except (
        ImportError
    ) as exc:  # pragma: no cover - the kubernetes client comes with the cncf-kubernetes provider
        raise ConfigurationError(
            "pod_override needs the kubernetes client: pip install apache-airflow-providers-cncf-kubernetes "
            "(the KubernetesExecutor's provider)"
        ) from exc

    need = load_resources(
        chunk_records=chunk_records,
        target=target,
        line_bytes=line_bytes,
        max_bytes_per_object=max_bytes_per_object,
    )
    limits = {"memory": need.memory, "ephemeral-storage": need.ephemeral_storage}
    if cpu_limit is not None:
        limits["cpu"] = cpu_limit
    volumes: list[Any] = [
        k8s.V1Volume(name=SPOOL_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=need.spool))
    ]
    mounts: list[Any] = [k8s.V1VolumeMount(name=SPOOL_VOLUME, mount_path=SPOOL_DIR)]
    env: list[Any] = [k8s.V1EnvVar(name="TMPDIR", value=SPOOL_DIR)]
    if geoip_volume is not None:
        if not isinstance(geoip_volume, k8s.V1Volume) or not geoip_volume.name:
            raise ConfigurationError(
                "geoip_volume must be a kubernetes.client.models.V1Volume with a name (e.g. one of a "
                f"PersistentVolumeClaim holding the .mmdb files). Got {geoip_volume!r}"
            )
        files = _geoip_files(geoip_files)
        volumes.append(geoip_volume)
        mounts.append(k8s.V1VolumeMount(name=geoip_volume.name, mount_path=GEOIP_DIR, read_only=True))
        env.append(k8s.V1EnvVar(name=GEOIP_ENV, value=":".join(f"{GEOIP_DIR}/{f}" for f in files)))
    container = k8s.V1Container(
        name=BASE_CONTAINER,
        resources=k8s.V1ResourceRequirements(
            requests={"memory": need.memory, "cpu": need.cpu, "ephemeral-storage": need.ephemeral_storage},
            limits=limits,
        ),
        volume_mounts=mounts,
        env=env,
        env_from=[
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=name))
            for name in _secret_names(connection_secrets)
        ]
        or None,
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(labels=dict(LOAD_LABELS)),
        spec=k8s.V1PodSpec(containers=[container], volumes=volumes),
    )


def _round_up_mib(nbytes: float) -> int:
    return max(SPOOL_MIN_MIB, math.ceil(nbytes / MIB)) * MIB


def _mebibytes(nbytes: int) -> str:
    return f"{math.ceil(nbytes / MIB)}Mi"


def _geoip_files(files: Sequence[str]) -> list[str]:
    names = [files] if isinstance(files, str) else list(files)
    if not names or any(not isinstance(f, str) or not f or "/" in f or ":" in f for f in names):
        raise ConfigurationError(
            "geoip_files must name one or more files in the GeoIP volume (no '/' or ':'), e.g. "
            f"('GeoLite2-City.mmdb', 'GeoLite2-ASN.mmdb'). Got {files!r}"
        )
    return names


def _secret_names(names: Sequence[str]) -> list[str]:
    found = [names] if isinstance(names, str) else list(names)
    for name in found:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"connection_secrets must be names of Kubernetes Secrets (holding AIRFLOW_CONN_* keys). Got {names!r}"
            )
    return found
