"""Taps → DAGs. Each tap gets its own incremental DAG: plan → load (one mapped task per partition) → commit."""

from __future__ import annotations

import os
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow_provider_logtap.compat import DAG, Asset, CronDataIntervalTimetable, Param, Variable
from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator
from airflow_provider_logtap.operators.hdfs import KafkaToHdfsEventTimeOperator, KafkaToHdfsRawOperator
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator, KafkaPlanRangesOperator
from airflow_provider_logtap.operators.replay import KafkaReplayFinishOperator, KafkaReplayPlanOperator
from airflow_provider_logtap.operators.s3 import KafkaToS3ArchiveOperator
from airflow_provider_logtap.operators.search import KafkaToSearchOperator
from airflow_provider_logtap.operators.target import KafkaToTargetOperator
from airflow_provider_logtap.replay import DEFAULTS as REPLAY_DEFAULTS
from airflow_provider_logtap.replay import FROM_KINDS, TO_KINDS
from airflow_provider_logtap.sensors.kafka import (
    KafkaBacklogSensor,
    KafkaIntervalCompleteSensor,
    KafkaRetentionRiskCheckOperator,
)
from airflow_provider_logtap.taps import (
    DEFAULT_START,
    TAPS_FILE_ENV,
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    Tap,
)
from airflow_provider_logtap.targets import REPLAY_NAME

TAPS_FILE_VARIABLE = "logtap_taps_file"

PARTITION_LABEL = (
    "partition {{ task.offset_range['partition'] }} "
    "[{{ task.offset_range['start'] }}, {{ task.offset_range['end'] }})"
)


LOAD_OPERATORS: dict[type, type[KafkaRangeLoadOperator]] = {
    S3ArchiveTarget: KafkaToS3ArchiveOperator,
    HdfsRawTarget: KafkaToHdfsRawOperator,
    HdfsEventTimeTarget: KafkaToHdfsEventTimeOperator,
    SearchTarget: KafkaToSearchOperator,
}


def _load_operator(tap: Tap, **extra: Any) -> Any:
    """The load operator of a tap's target, partially applied (``.expand(offset_range=...)`` follows): its
    parameters are the target's settings, by name (and ``extra``)."""
    target = tap.target
    return LOAD_OPERATORS[type(target)].partial(
        task_id="load",
        group_id=tap.group if tap.mode == "group" else None,
        on_data_loss=tap.on_data_loss,
        kafka_config_id=tap.kafka_conn_id,
        map_index_template=PARTITION_LABEL,
        outlets=[Asset(uri=f"{target.asset_uri}/{tap.topic}", name=f"logtap_{tap.name}")],
        **{f.name: getattr(target, f.name) for f in fields(target)},
        **extra,
    )


def _sensor_mode(tap: Tap) -> dict[str, Any]:
    if tap.sensor_mode == "deferrable":
        return {"deferrable": True}
    return {"deferrable": False, "mode": tap.sensor_mode}


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
        wait = KafkaBacklogSensor(
            task_id="wait_for_backlog",
            topic=tap.topic,
            group_id=tap.group,
            min_records=tap.min_backlog,
            max_age=tap.max_backlog_age_seconds,
            kafka_config_id=tap.kafka_conn_id,
            **_sensor_mode(tap),
            timeout=tap.wait_timeout_seconds,
            soft_fail=True,  # nothing new to load within the timeout: this run is skipped, not failed
        )
        KafkaRetentionRiskCheckOperator(
            task_id="retention_risk",
            topic=tap.topic,
            group_id=tap.group,
            min_headroom=tap.retention_headroom,
            max_retention_share=tap.retention_max_share,
            fail=tap.retention_fail,
            kafka_config_id=tap.kafka_conn_id,
        )
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
        wait >> plan
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
    """The load of one tap by data interval: each run loads the records its interval owns (those stamped inside
    it, up to ``max_disorder_seconds`` out of order; see :mod:`airflow_provider_logtap.core.intervals`), and
    reports the out-of-place ones; ``airflow backfill create`` loads past intervals."""
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
            "`[data_interval_start, data_interval_end)` to offsets by a robust clock of the Kafka timestamps "
            f"(records up to {tap.max_disorder_seconds}s out of order land in the interval of their own time; "
            "recorded in the plan ledger, Admin > Variables `logtap/...`), **load** one mapped task per unit "
            "(zone, core, zone per partition), counting records stamped outside the interval. Backfill with "
            f"`airflow backfill create --dag-id {tap.dag_id} --from-date ... --to-date ...`; a re-run reuses "
            "the recorded plan."
        ),
    ) as dag:
        wait = KafkaIntervalCompleteSensor(
            task_id="wait_for_completeness",
            topic=tap.topic,
            lateness=max(tap.lateness_seconds, tap.max_disorder_seconds),  # the zone after the end exists
            idle_grace=tap.idle_grace_seconds,
            kafka_config_id=tap.kafka_conn_id,
            **_sensor_mode(tap),
            timeout=tap.completeness_timeout_seconds,
        )
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=tap.topic,
            on_data_loss=tap.on_data_loss,
            max_disorder=tap.max_disorder_seconds,
            kafka_config_id=tap.kafka_conn_id,
        )
        wait >> plan
        _load_operator(tap, max_out_of_place_ratio=tap.max_out_of_place_ratio).expand(
            offset_range=plan.output
        )
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


REPLAY_DAG_ID = "logtap_replay"


def replay_params(taps: list[Tap]) -> dict[str, Param]:
    """The replay form: a typed JSON schema per field, with enums, formats, descriptions and examples."""
    names = [t.name for t in taps] or ["(no taps)"]
    offsets_help = 'Offsets per partition, e.g. {"0": 1200, "1": 980}; only these partitions are replayed.'
    return {
        "tap": Param(
            names[0],
            type="string",
            enum=names,
            title="Tap",
            description="The tap whose topic and kind of target to replay.",
        ),
        "from": Param(
            REPLAY_DEFAULTS["from"],
            type="string",
            enum=list(FROM_KINDS),
            title="From",
            description="Where each partition's range starts.",
        ),
        "from_offsets": Param(None, type=["null", "object"], title="From offsets", description=offsets_help),
        "from_timestamp": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="From time",
            description="The first record at or after this Kafka timestamp (UTC).",
            examples=["2026-11-01T00:00:00Z"],
        ),
        "to": Param(
            REPLAY_DEFAULTS["to"],
            type="string",
            enum=list(TO_KINDS),
            title="To",
            description="Where ranges end (exclusive): the high watermark now, offsets, a time, or the "
            "live tap's committed offsets (required to overwrite partitions).",
        ),
        "to_offsets": Param(None, type=["null", "object"], title="To offsets", description=offsets_help),
        "to_timestamp": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="To time",
            description="Before the first record at or after this Kafka timestamp (UTC).",
            examples=["2026-11-02T00:00:00Z"],
        ),
        "target_name": Param(
            REPLAY_DEFAULTS["target_name"],
            type=["null", "string"],
            pattern=REPLAY_NAME.pattern,
            title="New target name",
            description="The replay writes beside the live target: S3 <prefix>/replays/<name>, "
            "HDFS <base_path>/_replays/<name>, indices <index_prefix>.replay-<name>-*. Letters, digits, '_' "
            "and '-'; empty: named after the run id. A name already holding another range is refused.",
            examples=["regex-fix-2026-11-25"],
        ),
        "overwrite_partitions": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[A-Za-z0-9_=.+-]+(/[A-Za-z0-9_=.+-]+)*$"},
            title="Overwrite event-time partitions",
            description="Instead of a new target: rebuild these partitions of an "
            "event-time target in place and swap them in atomically, e.g. "
            "dt=2015-10-28 or dt=2015-10-28/hour=14. Needs to='committed'.",
            examples=[["dt=2015-10-28"]],
        ),
        "timestamp_regex": Param(
            None,
            type=["null", "string"],
            title="Timestamp regex",
            description="Event-time targets: a corrected regex (one group: the timestamp).",
        ),
        "date_format": Param(
            None,
            type=["null", "string"],
            title="Date format",
            description="Event-time targets: apache, iso8601, epoch_s, epoch_ms or a strptime format.",
            examples=["iso8601", "%Y-%m-%d %H:%M:%S"],
        ),
        "topic": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9._-]{1,249}$",
            title="Topic",
            description="Another topic to replay into the tap's kind of target (default: the tap's).",
        ),
        "dry_run": Param(
            REPLAY_DEFAULTS["dry_run"],
            type="boolean",
            title="Dry run",
            description="Only plan and count records and bytes per partition; write nothing. Untick to write.",
        ),
    }


def replay_dag(taps: list[Tap]) -> DAG:
    """One DAG to replay any tap's past range from the Airflow UI form (Trigger DAG w/ config)."""
    with DAG(
        dag_id=REPLAY_DAG_ID,
        description="logtap: replay a past offset range into a new target, or rebuild event-time partitions",
        schedule=None,
        start_date=DEFAULT_START,
        catchup=False,
        params=replay_params(taps),
        render_template_as_native_obj=True,
        tags=["logtap", "replay"],
        doc_md=(
            "Re-read an old range of a tap's topic (by offsets or by time) into a **new target** beside the live "
            "one, or **rebuild chosen event-time partitions** in place (e.g. after fixing the timestamp regex). "
            "The live group's offsets are never moved, and nothing outside the tap's base is touched. Use "
            "*dry run* to see the records and bytes first."
        ),
    ) as dag:
        plan = KafkaReplayPlanOperator(task_id="plan", taps=taps)
        replay = "{{ ti.xcom_pull(task_ids='plan', key='replay') }}"
        load = KafkaToTargetOperator.partial(
            task_id="load", replay=replay, map_index_template=PARTITION_LABEL
        ).expand(offset_range=plan.output)
        KafkaReplayFinishOperator(task_id="finish", replay=replay, results=load.output)
    return dag
