"""The load's pod override, checked against the Kubernetes client's and the cncf-kubernetes provider's own code:
serialized and read back by the client, merged into a worker pod by the provider as the KubernetesExecutor does,
sized by the rules of airflow_provider_logtap/kubernetes.py, and the documented example DAG (docs/examples/
kubernetes_loads.py) parsed by Airflow's DagBag and serialized as the scheduler reads it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from airflow.providers.cncf.kubernetes import pod_generator
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient  # type: ignore[import-untyped]
from kubernetes.client import models as k8s
from kubernetes.utils import parse_quantity  # type: ignore[import-untyped]

from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.kubernetes import (
    BASE_CONTAINER,
    EPHEMERAL_BASE_MIB,
    GEOIP_DIR,
    LOAD_MEMORY_MIB,
    MIB,
    SPOOL_DIR,
    SPOOL_HEADROOM,
    SPOOL_MIN_MIB,
    SPOOL_PER_RECORD,
    load_resources,
    pod_override,
)
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "kubernetes_loads.py"
#: The provider's own example worker pod template (a ``base`` container, DAGs in the image).
TEMPLATE = Path(pod_generator.__file__).parent / "pod_template_file_examples" / "dags_in_image_template.yaml"

GEOIP = k8s.V1Volume(
    name="geoip",
    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
        claim_name="logtap-geoip", read_only=True
    ),
)


def full_pod() -> k8s.V1Pod:
    return pod_override(
        chunk_records=1_000_000,
        target="search",
        line_bytes=400,
        geoip_volume=GEOIP,
        geoip_files=["GeoLite2-City.mmdb", "GeoLite2-ASN.mmdb"],
        connection_secrets=["logtap-connections"],
    )


def base_worker_pod() -> k8s.V1Pod:
    pod = PodGenerator.deserialize_model_file(str(TEMPLATE))
    assert pod.spec.containers[0].name == "base" and pod.spec.containers[0].image
    return pod


def _env(container: k8s.V1Container) -> dict[str, str]:
    return {e.name: e.value for e in container.env or []}


def test_the_pod_round_trips_through_the_kubernetes_clients_serialization() -> None:
    pod = full_pod()
    data = ApiClient().sanitize_for_serialization(pod)
    json.dumps(data)  # what the API server would be sent
    container = data["spec"]["containers"][0]
    assert container["name"] == BASE_CONTAINER
    # 1,000,000 records x (2.1 x 400 + 528 bytes) x 1.25 = 1631 MiB of spool, + 256 MiB
    assert container["resources"]["requests"] == {
        "cpu": "1",
        "memory": "768Mi",
        "ephemeral-storage": "1887Mi",
    }
    assert container["resources"]["limits"] == {"memory": "768Mi", "ephemeral-storage": "1887Mi"}
    assert container["envFrom"] == [{"secretRef": {"name": "logtap-connections"}}]
    assert {"name": "geoip", "mountPath": GEOIP_DIR, "readOnly": True} in container["volumeMounts"]
    assert data["spec"]["volumes"][0] == {"name": "logtap-spool", "emptyDir": {"sizeLimit": "1631Mi"}}
    back = PodGenerator.deserialize_model_dict(data)
    assert isinstance(back, k8s.V1Pod)
    assert back == pod
    assert PodGenerator.serialize_pod(back) == PodGenerator.serialize_pod(pod) == data


def test_the_pod_holds_no_secret_value_only_the_secrets_name() -> None:
    text = json.dumps(PodGenerator.serialize_pod(full_pod()))
    assert "AIRFLOW_CONN" not in text and "password" not in text.lower()
    assert [e.secret_ref.name for e in full_pod().spec.containers[0].env_from] == ["logtap-connections"]


def test_the_provider_merges_it_into_a_worker_pod_keeping_resources_mounts_and_env() -> None:
    base = base_worker_pod()
    pod = full_pod()
    merged = PodGenerator.reconcile_pods(base, pod)
    container = merged.spec.containers[0]
    base_container = base.spec.containers[0]
    assert container.name == "base"
    assert container.image == base_container.image  # the template's image: the override sets none
    assert container.resources == pod.spec.containers[0].resources
    # volumes, mounts and env are extended, not replaced: the template's stay
    assert [m.name for m in container.volume_mounts] == [
        *(m.name for m in base_container.volume_mounts or []),
        "logtap-spool",
        "geoip",
    ]
    assert [v.name for v in merged.spec.volumes] == [
        *(v.name for v in base.spec.volumes or []),
        "logtap-spool",
        "geoip",
    ]
    assert set(_env(base_container)) < set(_env(container))
    assert _env(container)["TMPDIR"] == SPOOL_DIR
    assert (
        _env(container)["LOGTAP_GEOIP_DB"] == f"{GEOIP_DIR}/GeoLite2-City.mmdb:{GEOIP_DIR}/GeoLite2-ASN.mmdb"
    )
    assert container.env_from == pod.spec.containers[0].env_from
    assert merged.metadata.labels["app.kubernetes.io/component"] == "logtap-load"


def test_the_executor_builds_the_task_pod_from_template_executor_and_override() -> None:
    """``construct_pod`` is what the KubernetesExecutor calls for each task instance."""
    assert PodGenerator.from_obj({"pod_override": full_pod()}) == full_pod()
    pod = PodGenerator.construct_pod(
        dag_id="weblogs_search_on_kubernetes",
        task_id="load",
        pod_id="weblogs-search-load-3",
        try_number=1,
        kube_image="registry.example/airflow-logtap:1",
        date=None,
        args=["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"],
        pod_override_object=PodGenerator.from_obj({"pod_override": full_pod()}),
        base_worker_pod=base_worker_pod(),
        namespace="airflow",
        scheduler_job_id="1",
        run_id="scheduled__2026-12-02T12:00:00+00:00",
        map_index=3,
    )
    container = pod.spec.containers[0]
    assert container.name == "base" and container.args[:3] == [
        "python",
        "-m",
        "airflow.sdk.execution_time.execute_workload",
    ]
    assert container.resources.requests["memory"] == "768Mi"
    assert _env(container)["AIRFLOW_IS_K8S_EXECUTOR_POD"] == "True"
    assert _env(container)["TMPDIR"] == SPOOL_DIR
    assert {v.name for v in pod.spec.volumes} >= {"logtap-spool", "geoip"}
    assert pod.metadata.annotations["map_index"] == "3"
    ApiClient().sanitize_for_serialization(pod)


@settings(max_examples=300)
@given(
    chunk_records=st.integers(min_value=1, max_value=2_000_000_000),
    more=st.integers(min_value=0, max_value=10_000_000),
    line_bytes=st.integers(min_value=1, max_value=1 << 20),
    target=st.sampled_from(sorted(SPOOL_PER_RECORD)),
)
def test_resources_follow_the_rule_and_are_valid_quantities(
    chunk_records: int, more: int, line_bytes: int, target: str
) -> None:
    need = load_resources(chunk_records=chunk_records, target=target, line_bytes=line_bytes)
    per_byte, per_record = SPOOL_PER_RECORD[target]
    spooled = chunk_records * (per_byte * line_bytes + per_record)
    if target == "hdfs_raw":
        spooled = min(spooled, DEFAULT_MAX_BYTES)
    expected = max(SPOOL_MIN_MIB, math.ceil(spooled * SPOOL_HEADROOM / MIB)) * MIB
    assert need.spool_bytes == expected
    assert need.spool_bytes >= spooled * SPOOL_HEADROOM
    assert need.ephemeral_bytes == need.spool_bytes + EPHEMERAL_BASE_MIB * MIB
    assert need.memory_bytes == LOAD_MEMORY_MIB * MIB  # flat whatever the chunk
    bigger = load_resources(chunk_records=chunk_records + more, target=target, line_bytes=line_bytes)
    assert bigger.spool_bytes >= need.spool_bytes and bigger.memory_bytes == need.memory_bytes
    for quantity, nbytes in (
        (need.memory, need.memory_bytes),
        (need.spool, need.spool_bytes),
        (need.ephemeral_storage, need.ephemeral_bytes),
    ):
        assert parse_quantity(quantity) == nbytes
    assert parse_quantity(need.cpu) == 1

    pod = pod_override(chunk_records=chunk_records, target=target, line_bytes=line_bytes)
    resources = pod.spec.containers[0].resources
    assert resources.requests == {
        "memory": need.memory,
        "cpu": "1",
        "ephemeral-storage": need.ephemeral_storage,
    }
    assert resources.limits == {"memory": need.memory, "ephemeral-storage": need.ephemeral_storage}
    assert parse_quantity(pod.spec.volumes[0].empty_dir.size_limit) == need.spool_bytes


def test_the_s3_archive_spools_nothing_and_hdfs_raw_at_most_one_object() -> None:
    assert load_resources(chunk_records=10**9, target="s3_archive").spool_bytes == SPOOL_MIN_MIB * MIB
    raw = load_resources(chunk_records=10**9, target="hdfs_raw", max_bytes_per_object=256 * MIB)
    assert raw.spool_bytes == 320 * MIB  # one 256 MiB object and the headroom
    assert (
        pod_override(chunk_records=10, target="s3_archive", cpu_limit="2")
        .spec.containers[0]
        .resources.limits["cpu"]
        == "2"
    )


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"chunk_records": 0}, "chunk_records"),
        ({"chunk_records": True}, "chunk_records"),
        ({"chunk_records": 10, "line_bytes": 0}, "line_bytes"),
        ({"chunk_records": 10, "target": "kafka"}, "target"),
        ({"chunk_records": 10, "geoip_volume": "geoip"}, "geoip_volume"),
        ({"chunk_records": 10, "geoip_volume": GEOIP, "geoip_files": ["db/city.mmdb"]}, "geoip_files"),
        ({"chunk_records": 10, "geoip_volume": GEOIP, "geoip_files": []}, "geoip_files"),
        ({"chunk_records": 10, "connection_secrets": [""]}, "connection_secrets"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        pod_override(**kwargs)  # type: ignore[arg-type]


def test_geoip_env_is_read_as_the_search_target_reads_it() -> None:
    value = _env(full_pod().spec.containers[0])["LOGTAP_GEOIP_DB"]
    paths = [Path(p) for p in value.split(os.pathsep)]  # enrich/geoip.py default_database_path splits so
    assert [p.name for p in paths] == ["GeoLite2-City.mmdb", "GeoLite2-ASN.mmdb"]
    assert {str(p.parent) for p in paths} == {GEOIP_DIR}


_PARSE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from kubernetes.client import models as k8s  # type: ignore[import-untyped]
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    again = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag))))
    found = {}
    for where, d in (("parsed", dag), ("serialized", again)):
        load = d.get_task("load")
        pod = load.executor_config["pod_override"]
        found[where] = {
            "mapped": type(load).__name__,
            "executor": load.executor,
            "is_v1pod": isinstance(pod, k8s.V1Pod),
            "resources": pod.spec.containers[0].resources.to_dict(),
            "mounts": [m.mount_path for m in pod.spec.containers[0].volume_mounts],
            "max_active_tis_per_dagrun": load.max_active_tis_per_dagrun,
            "plan_executor": d.get_task("plan").executor,
        }
    out["dags"][dag_id] = found
print("RESULT " + json.dumps(out))
"""


def _parse_example(executors: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="logtap-k8s-home-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__EXECUTOR": executors,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        done = subprocess.run(
            [sys.executable, "-c", _PARSE, str(EXAMPLE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]


def test_the_documented_example_dag_parses_and_its_loads_carry_the_pod_to_the_scheduler() -> None:
    """DagBag as the DAG processor reads the file, then the DAG serialized and read back as the scheduler reads
    it: each load is mapped, runs on the KubernetesExecutor with a V1Pod sized by the rule; the plan runs on the
    default executor."""
    result = _parse_example("CeleryExecutor,KubernetesExecutor")
    assert result["errors"] == {}
    dags = result["dags"]
    assert isinstance(dags, dict)
    assert set(dags) == {"weblogs_hdfs_by_event_time_on_kubernetes", "weblogs_search_on_kubernetes"}
    expected = {
        "weblogs_hdfs_by_event_time_on_kubernetes": load_resources(
            chunk_records=1_000_000, target="hdfs_event_time", line_bytes=400
        ),
        "weblogs_search_on_kubernetes": load_resources(
            chunk_records=1_000_000, target="search", line_bytes=400
        ),
    }
    for dag_id, found in dags.items():
        need = expected[dag_id]
        for where in ("parsed", "serialized"):
            task = found[where]
            assert task["mapped"] in {"MappedOperator", "SerializedMappedOperator"}, (dag_id, where, task)
            assert task["executor"] == "KubernetesExecutor"
            assert task["plan_executor"] is None
            assert task["is_v1pod"] is True
            assert task["max_active_tis_per_dagrun"] == 8
            assert task["resources"]["requests"] == {
                "memory": need.memory,
                "cpu": "1",
                "ephemeral-storage": need.ephemeral_storage,
            }
        mounts = found["serialized"]["mounts"]
        assert SPOOL_DIR in mounts
        assert (GEOIP_DIR in mounts) == (dag_id == "weblogs_search_on_kubernetes")


def test_the_example_dag_is_refused_where_the_kubernetes_executor_is_not_configured() -> None:
    result = _parse_example("LocalExecutor")
    assert result["dags"] == {}
    assert "KubernetesExecutor" in next(iter(result["errors"].values()))  # type: ignore[attr-defined]


DOC = ROOT / "docs" / "kubernetes.md"


def test_the_doc_includes_the_example_file_as_it_is() -> None:
    text = DOC.read_text()
    marker = "<!-- include: docs/examples/kubernetes_loads.py -->\n```python\n"
    assert marker in text
    included = text.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"
    assert included == EXAMPLE.read_text()


def test_the_docs_table_of_resources_is_the_rules() -> None:
    text = DOC.read_text()
    for n in (250_000, 1_000_000, 5_000_000):
        cells = []
        for i, target in enumerate(("s3_archive", "hdfs_raw", "hdfs_event_time", "search")):
            need = load_resources(chunk_records=n, target=target, line_bytes=400)
            spool, eph = need.spool.replace("Mi", " Mi"), need.ephemeral_storage.replace("Mi", " Mi")
            cells.append(
                f"{spool} spool / {eph} ephemeral storage" if n == 250_000 and i == 0 else f"{spool} / {eph}"
            )
        assert f"| {n:,} | {' | '.join(cells)} |" in text, n
    assert f"request = limit = {LOAD_MEMORY_MIB} MiB" in text
    assert f"spool + {EPHEMERAL_BASE_MIB} MiB" in text and f"at least {SPOOL_MIN_MIB} MiB" in text
    for target, (per_byte, per_record) in SPOOL_PER_RECORD.items():
        if per_record > 1:
            assert f"| `{target}` |" in text and f"{per_byte} \u00d7 the line + {per_record} bytes" in text
