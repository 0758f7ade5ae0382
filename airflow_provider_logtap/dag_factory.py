"""Taps → DAGs. Each tap gets its own incremental DAG: plan → load (one mapped task per partition) → commit."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow_provider_logtap.compat import DAG, Asset, CronDataIntervalTimetable, Variable
from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator
from airflow_provider_logtap.operators.hdfs import KafkaToHdfsEventTimeOperator, KafkaToHdfsRawOperator
from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator, KafkaPlanRangesOperator
from airflow_provider_logtap.operators.s3 import KafkaToS3ArchiveOperator
from airflow_provider_logtap.taps import TAPS_FILE_ENV, HdfsRawTarget, S3ArchiveTarget, Tap

TAPS_FILE_VARIABLE = "logtap_taps_file"

PARTITION_LABEL = (
    "partition {{ task.offset_range['partition'] }} "
    "[{{ task.offset_range['start'] }}, {{ task.offset_range['end'] }})"
)


def _load_operator(tap: Tap) -> Any:
    """The load operator of a tap's target, partially applied (``.expand(offset_range=...)`` follows)."""
    common: dict[str, Any] = {
        "task_id": "load",
        "group_id": tap.group if tap.mode == "group" else None,
        "on_data_loss": tap.on_data_loss,
        "kafka_config_id": tap.kafka_conn_id,
        "map_index_template": PARTITION_LABEL,
        "outlets": [Asset(uri=f"{tap.target.asset_uri}/{tap.topic}", name=f"logtap_{tap.name}")],
    }
    target = tap.target
    if isinstance(target, S3ArchiveTarget):
        return KafkaToS3ArchiveOperator.partial(
            **common,
            bucket=target.bucket,
            prefix=target.prefix,
            aws_conn_id=target.aws_conn_id,
            compression=target.compression,
            compression_level=target.compression_level,
            max_records_per_object=target.max_records_per_object,
            max_bytes_per_object=target.max_bytes_per_object,
        )
    if isinstance(target, HdfsRawTarget):
        return KafkaToHdfsRawOperator.partial(
            **common,
            base_path=target.base_path,
            webhdfs_conn_id=target.webhdfs_conn_id,
            compression=target.compression,
            compression_level=target.compression_level,
            max_records_per_file=target.max_records_per_file,
            max_bytes_per_file=target.max_bytes_per_file,
        )
    return KafkaToHdfsEventTimeOperator.partial(
        **common,
        base_path=target.base_path,
        webhdfs_conn_id=target.webhdfs_conn_id,
        compression=target.compression,
        timestamp_regex=target.timestamp_regex,
        date_format=target.date_format,
        assume_zone=target.assume_zone,
        partition_template=target.partition_template,
        partition_zone=target.partition_zone,
        max_bad_ratio=target.max_bad_ratio,
    )


def incremental_dag(tap: Tap) -> DAG:
    """The scheduled load of one tap, from its group's committed offsets to the high-water mark at plan time."""
    end: Any = (
        "high_watermark" if tap.max_records_per_run is None else {"max_records": tap.max_records_per_run}
    )
    with DAG(
        dag_id=tap.dag_id,
        description=f"logtap: {tap.topic} -> {tap.target.type} (group {tap.group})",
        schedule=tap.schedule,
        start_date=tap.start_date,
        catchup=False,
        max_active_runs=1,
        tags=["logtap", tap.target.type, *tap.tags],
        default_args={"retries": tap.retries, "retry_delay": timedelta(seconds=tap.retry_delay_seconds)},
        doc_md=(
            f"Incremental load of topic `{tap.topic}` into `{tap.target.type}` by consumer group "
            f"`{tap.group}`: **plan** the ranges `[committed, high watermark)`, **load** one mapped task per "
            "partition, **commit** the group's offsets only after every load succeeded."
        ),
    ) as dag:
        plan = KafkaPlanRangesOperator(
            task_id="plan",
            topic=tap.topic,
            group_id=tap.group,
            start="committed",
            end=end,
            initial=tap.initial,
            on_data_loss=tap.on_data_loss,
            kafka_config_id=tap.kafka_conn_id,
        )
        load = _load_operator(tap).expand(offset_range=plan.output)
        KafkaCommitRangesOperator(
            task_id="commit",
            ranges=plan.output,
            results=load.output,
            group_id=tap.group,
            kafka_config_id=tap.kafka_conn_id,
        )
    return dag


def interval_dag(tap: Tap) -> DAG:
    """The load of one tap by data interval: each run loads the records whose Kafka timestamps fall in its
    interval (chained to its neighbours' recorded plans); ``airflow backfill create`` loads past intervals."""
    assert tap.schedule is not None
    with DAG(
        dag_id=tap.dag_id,
        description=f"logtap: {tap.topic} -> {tap.target.type} by data interval",
        schedule=CronDataIntervalTimetable(tap.schedule, timezone="UTC"),
        start_date=tap.start_date,
        catchup=tap.catchup,
        max_active_runs=1,
        tags=["logtap", tap.target.type, "interval", *tap.tags],
        default_args={"retries": tap.retries, "retry_delay": timedelta(seconds=tap.retry_delay_seconds)},
        doc_md=(
            f"Load of topic `{tap.topic}` into `{tap.target.type}` by data interval: **plan** maps the run's "
            "`[data_interval_start, data_interval_end)` to offsets by Kafka timestamp (recorded in the plan "
            "ledger, Admin > Variables `logtap/...`), **load** one mapped task per partition. Backfill with "
            f"`airflow backfill create --dag-id {tap.dag_id} --from-date ... --to-date ...`; a re-run reuses "
            "the recorded plan."
        ),
    ) as dag:
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=tap.topic,
            on_data_loss=tap.on_data_loss,
            kafka_config_id=tap.kafka_conn_id,
        )
        _load_operator(tap).expand(offset_range=plan.output)
    return dag


def dag_for(tap: Tap) -> DAG:
    return interval_dag(tap) if tap.mode == "interval" else incremental_dag(tap)


def dags_from_taps(taps: list[Tap]) -> dict[str, DAG]:
    """``{dag_id: DAG}`` for every tap, ready to be put in a DAG file's globals."""
    return {tap.dag_id: dag_for(tap) for tap in taps}


def taps_file(default: str | Path) -> Path:
    """The taps file: ``$LOGTAP_TAPS_FILE``, else the Airflow Variable ``logtap_taps_file``, else ``default``."""
    if env := os.environ.get(TAPS_FILE_ENV):
        return Path(env)
    try:
        value = Variable.get(TAPS_FILE_VARIABLE, default=None)
    except Exception:  # no metadata database or API to ask (e.g. a plain import): the default
        value = None
    return Path(value or default)
