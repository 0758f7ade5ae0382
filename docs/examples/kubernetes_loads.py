"""logtap's loads on the KubernetesExecutor, everything else on the default executor (docs/kubernetes.md).

Needs ``[core] executor = CeleryExecutor,KubernetesExecutor`` (Airflow 2.10+ and 3) on every Airflow component,
the cncf-kubernetes provider, and in the worker pods' namespace:

- a Secret ``logtap-connections`` whose keys are ``AIRFLOW_CONN_KAFKA_DEFAULT``, ``AIRFLOW_CONN_WEBHDFS_DEFAULT``
  and ``AIRFLOW_CONN_OPENSEARCH_DEFAULT`` (each connection as JSON);
- a PersistentVolumeClaim ``logtap-geoip`` holding ``GeoLite2-City.mmdb`` (for the search DAG).

Two DAGs: a topic into HDFS by event time, and into OpenSearch with GeoIP. Each plans chunks of at most
``CHUNK_RECORDS`` offsets; each chunk is loaded by its own pod, sized for one chunk by ``pod_override``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG  # Airflow 2.11: from airflow import DAG
from kubernetes.client import models as k8s  # type: ignore[import-untyped]

from airflow_provider_logtap.dag_factory import PARTITION_LABEL
from airflow_provider_logtap.kubernetes import pod_override
from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator
from airflow_provider_logtap.operators.hdfs import KafkaToHdfsEventTimeOperator
from airflow_provider_logtap.operators.plan import KafkaPlanRangesOperator
from airflow_provider_logtap.operators.search import KafkaToSearchOperator

TOPIC = "weblogs"
#: At most this many offsets per load task (and per pod).
CHUNK_RECORDS = 1_000_000
#: The topic's average record size (the loads' logs give records and bytes).
LINE_BYTES = 400
#: The Secret with the AIRFLOW_CONN_* keys: the pods get the connections from it, the DAG file holds no secret.
CONNECTIONS = ["logtap-connections"]
#: At most this many load pods of one run at once (the broker's and the sink's throughput are shared).
MAX_PODS_PER_RUN = 8


def load_settings(target: str, **pod: object) -> dict[str, object]:
    """The settings of a load that runs on the KubernetesExecutor in a pod sized for one chunk."""
    return {
        "executor": "KubernetesExecutor",  # Airflow 2.11 with CeleryKubernetesExecutor: queue="kubernetes"
        "executor_config": {
            "pod_override": pod_override(
                chunk_records=CHUNK_RECORDS,
                target=target,
                line_bytes=LINE_BYTES,
                connection_secrets=CONNECTIONS,
                **pod,  # type: ignore[arg-type]
            )
        },
        "max_active_tis_per_dagrun": MAX_PODS_PER_RUN,
        "map_index_template": PARTITION_LABEL,  # "partition 3 chunk 2/8 [1200000, 1350000)"
    }


with DAG(
    dag_id="weblogs_hdfs_by_event_time_on_kubernetes",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["logtap", "kubernetes"],
):
    group = "logtap-weblogs-by-event-time"
    plan = KafkaPlanRangesOperator(task_id="plan", topic=TOPIC, group_id=group, chunk_records=CHUNK_RECORDS)
    load = KafkaToHdfsEventTimeOperator.partial(
        task_id="load",
        group_id=group,
        base_path="/data/weblogs/by_event_time",
        **load_settings("hdfs_event_time"),
    ).expand(offset_range=plan.output)
    KafkaCommitRangesOperator(task_id="commit", ranges=plan.output, results=load.output, group_id=group)


with DAG(
    dag_id="weblogs_search_on_kubernetes",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["logtap", "kubernetes"],
):
    group = "logtap-weblogs-search"
    plan = KafkaPlanRangesOperator(task_id="plan", topic=TOPIC, group_id=group, chunk_records=CHUNK_RECORDS)
    geoip = k8s.V1Volume(
        name="geoip",
        persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name="logtap-geoip", read_only=True
        ),
    )
    load = KafkaToSearchOperator.partial(
        task_id="load",
        group_id=group,
        index_prefix="weblogs",
        # geoip_database stays null: the load reads $LOGTAP_GEOIP_DB, which the pod override sets
        **load_settings("search", geoip_volume=geoip, geoip_files=["GeoLite2-City.mmdb"]),
    ).expand(offset_range=plan.output)
    KafkaCommitRangesOperator(task_id="commit", ranges=plan.output, results=load.output, group_id=group)
