"""Taps → DAGs. Each tap gets its own incremental DAG: plan → load (one mapped task per partition, or per chunk of
a partition's range) → commit."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow_provider_logtap.compat import (
    DAG,
    CronDataIntervalTimetable,
    Param,
    airflow_setting,
    asset,
    import_string,
)
from airflow_provider_logtap.models import param_schema
from airflow_provider_logtap.operators.commit import KafkaCommitRangesOperator
from airflow_provider_logtap.operators.load import KafkaRangeLoadOperator
from airflow_provider_logtap.operators.plan import KafkaPlanIntervalOperator, KafkaPlanRangesOperator
from airflow_provider_logtap.operators.reconcile import KafkaReconcileOperator
from airflow_provider_logtap.operators.replay import KafkaReplayFinishOperator, KafkaReplayPlanOperator
from airflow_provider_logtap.operators.target import KafkaToTargetOperator
from airflow_provider_logtap.replay import ReplayForm
from airflow_provider_logtap.sensors.kafka import (
    KafkaBacklogSensor,
    KafkaRetentionRiskCheckOperator,
)
from airflow_provider_logtap.taps import DEFAULT_START, TAPS_FILE_ENV, Tap
from airflow_provider_logtap.targets import target_to_dict

#: A load task instance's label in the UI: ``partition 3 [1200, 1350)``, or ``partition 3 chunk 2/8 [1200, 1350)``
#: for a chunk; the same text as :func:`airflow_provider_logtap.core.chunks.label` (a test holds them equal).
PARTITION_LABEL = (
    "partition {{ task.offset_range['partition'] }}"
    "{% if task.offset_range.get('chunk') %} chunk {{ task.offset_range['chunk']['index'] }}/"
    "{{ task.offset_range['chunk']['count'] }}{% endif %} "
    "[{{ task.offset_range['start'] }}, {{ task.offset_range['end'] }})"
)

#: The priority of the replay DAG's loads: below the taps' (``priority_weight``, 10 by default),
#: so that a replay waits for free slots rather than starving the scheduled loads.
REPLAY_PRIORITY_WEIGHT = 1


def _scheduling(tap: Tap) -> dict[str, Any]:
    """How Airflow schedules a tap's load tasks: its pool, priority and the most at once (``max_active_chunks``,
    over all the DAG's runs, so a long backfill cannot take every worker slot)."""
    out: dict[str, Any] = {"priority_weight": tap.priority_weight, "weight_rule": "absolute"}
    if tap.pool is not None:
        out["pool"] = tap.pool
    if tap.max_active_chunks is not None:
        out["max_active_tis_per_dag"] = tap.max_active_chunks
    return out


def _load_operator(tap: Tap, **extra: Any) -> Any:
    """The load operator of a tap's target, partially applied (``.expand(offset_range=...)`` follows): its
    parameters are the target's settings, by name (and ``extra``); a target type without an operator of its own
    is loaded by :class:`KafkaToTargetOperator`, given the target as data."""
    target = tap.target
    operator: type[KafkaRangeLoadOperator] = import_string(target.operator)
    settings: dict[str, Any] = (
        target.settings()
        if operator.target_model is type(target)
        else {"replay": {"target": target_to_dict(target), "kafka_conn_id": tap.kafka_conn_id}}
    )
    return operator.partial(
        task_id="load",
        group_id=tap.group if tap.mode == "group" else None,
        on_data_loss=tap.on_data_loss,
        kafka_config_id=tap.kafka_conn_id,
        map_index_template=PARTITION_LABEL,
        progress_seconds=tap.progress_seconds,
        outlets=[asset(f"{target.asset_uri}/{tap.topic}", f"logtap_{tap.name}")],
        **_scheduling(tap),
        **settings,
        **extra,
    )


def _sensor_mode(tap: Tap) -> dict[str, Any]:
    if tap.sensor_mode == "deferrable":
        return {"deferrable": True}
    return {"deferrable": False, "mode": tap.sensor_mode}


def _tap_dag(
    tap: Tap, *, description: str, schedule: Any, catchup: bool, tags: list[str], doc_md: str
) -> DAG:
    """The DAG of a tap, whatever its mode: the settings every tap DAG shares, in one place."""
    return DAG(
        dag_id=tap.dag_id,
        description=f"logtap: {tap.topic} -> {tap.target.type} {description}",
        schedule=schedule,
        start_date=tap.start_date,
        catchup=catchup,
        max_active_runs=1,
        tags=["logtap", tap.target.type, *tags, *tap.tags],
        default_args={"retries": tap.retries, "retry_delay": timedelta(seconds=tap.retry_delay_seconds)},
        doc_md=doc_md,
    )


def incremental_dag(tap: Tap) -> DAG:
    """The scheduled load of one tap, from its group's committed offsets to the high-water mark at plan time.

    ``wait_for_backlog`` >> [``retention_risk``, ``plan`` >> ``load`` >> ``commit``]: the retention check runs
    beside the load, never gating it (loading is what lowers the risk), only when there is a backlog, and
    warns (or, with ``retention_fail``, fails the run for alerting) while the load goes on."""
    end: Any = (
        "high_watermark" if tap.max_records_per_run is None else {"max_records": tap.max_records_per_run}
    )
    with _tap_dag(
        tap,
        description=f"(group {tap.group})",
        schedule=tap.schedule,
        catchup=False,
        tags=[],
        doc_md=(
            f"Incremental load of topic `{tap.topic}` into `{tap.target.type}` by consumer group "
            f"`{tap.group}`: **wait** for a backlog, **plan** the ranges `[committed, high watermark)`, **load** "
            "one mapped task per partition (or per chunk of `chunk_records` offsets), **commit** the group's "
            "offsets only after every load succeeded. "
            "**retention_risk** runs beside the load once there is a backlog: it warns when the oldest unloaded "
            "record nears deletion by retention (failing the run for alerting with `retention_fail`), and never "
            "holds the load back, since loading is what lowers the risk."
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
        retention = KafkaRetentionRiskCheckOperator(
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
            chunk_records=tap.chunk_records,
            kafka_config_id=tap.kafka_conn_id,
        )
        wait >> [retention, plan]
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
    with _tap_dag(
        tap,
        description="by data interval",
        schedule=CronDataIntervalTimetable(tap.schedule, timezone="UTC"),
        catchup=tap.catchup,
        tags=["interval"],
        doc_md=(
            f"Load of topic `{tap.topic}` into `{tap.target.type}` by data interval: **plan** maps the run's "
            "`[data_interval_start, data_interval_end)` to offsets by a robust clock of the Kafka timestamps "
            f"(records up to {tap.max_disorder_seconds}s out of order land in the interval of their own time; "
            "recorded in the plan ledger, Admin > Variables `logtap/...`), **load** one mapped task per unit "
            "(zone, core, zone per partition), counting records stamped outside the interval. **plan** first waits "
            "until the interval can be complete. Backfill with "
            f"`airflow backfill create --dag-id {tap.dag_id} --from-date ... --to-date ...` (Airflow 3) or "
            f"`airflow dags backfill -s ... -e ... {tap.dag_id}` (Airflow 2); a re-run reuses the recorded plan."
        ),
    ) as dag:
        # The plan waits for the interval's completeness itself (no sensor task before it): Airflow 2's
        # `airflow dags backfill` expands the mapped load only when the plan has no upstream task.
        plan = KafkaPlanIntervalOperator(
            task_id="plan",
            topic=tap.topic,
            on_data_loss=tap.on_data_loss,
            max_disorder=tap.max_disorder_seconds,
            ledger_horizon_days=tap.ledger_horizon_days,
            kafka_config_id=tap.kafka_conn_id,
            chunk_records=tap.chunk_records,
            wait_for_completeness=True,
            lateness=max(tap.lateness_seconds, tap.max_disorder_seconds),  # the zone after the end exists
            idle_grace=tap.idle_grace_seconds,
            **_sensor_mode(tap),
            timeout=tap.completeness_timeout_seconds,
        )
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
    """The taps file: ``$LOGTAP_TAPS_FILE``, else Airflow's configuration ``[logtap] taps_file``
    (``AIRFLOW__LOGTAP__TAPS_FILE``), else ``default``. Read at every DAG-file parse, so it never asks the
    metadata database."""
    if env := os.environ.get(TAPS_FILE_ENV):
        return Path(env)
    return Path(airflow_setting("logtap", "taps_file") or default)


REPLAY_DAG_ID = "logtap_replay"


def replay_params(taps: list[Tap]) -> dict[str, Param]:
    """The replay form: one ``Param`` per field of :class:`~airflow_provider_logtap.replay.ReplayForm`, its
    JSON schema (types, enums, patterns, titles, descriptions, examples) and default derived from the model;
    the taps' names are the ``tap`` field's choices."""
    names = [t.name for t in taps] or ["(no taps)"]
    params: dict[str, Param] = {}
    for name, info in ReplayForm.model_fields.items():
        key = info.alias or name
        schema = param_schema(ReplayForm, key)
        default = ReplayForm.default_of(name)
        if name == "tap":
            schema["enum"], default = names, names[0]
        params[key] = Param(default, **schema)
    return params


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
            task_id="load",
            replay=replay,
            map_index_template=PARTITION_LABEL,
            priority_weight=REPLAY_PRIORITY_WEIGHT,
            weight_rule="absolute",
        ).expand(offset_range=plan.output)
        KafkaReplayFinishOperator(task_id="finish", replay=replay, results=load.output)
    return dag


#: The daily reconcile DAG of a topic: ``logtap_reconcile_<topic>``.
RECONCILE_DAG_PREFIX = "logtap_reconcile_"
RECONCILE_SCHEDULE = "@daily"


def reconcile_dag(topic: str, taps: list[Tap]) -> DAG:
    """The daily check that every tap of ``topic`` holds exactly what its group committed (missing, doubled and
    held-beyond offsets per target and partition; see :class:`KafkaReconcileOperator`). It fails, not retried,
    when anything is missing or doubled; triggered with ``repair`` it replays what is missing first. ``taps``:
    every tap of the file (the topic's ``s3_archive`` tap is the repair's archive)."""
    of_topic = [t for t in taps if t.topic == topic]
    with DAG(
        dag_id=f"{RECONCILE_DAG_PREFIX}{topic}",
        description=f"logtap: reconcile {', '.join(t.name for t in of_topic)} against Kafka ({topic})",
        schedule=RECONCILE_SCHEDULE,
        start_date=min(t.start_date for t in of_topic),
        catchup=False,
        max_active_runs=1,
        # A check that starts paused wherever new DAGs start unpaused: it reads every target of the topic and
        # runs when its owner turns it on, never on its own while the taps are still being set up.
        is_paused_upon_creation=True,
        params={
            "repair": Param(
                False,
                type="boolean",
                title="Repair",
                description="Replay the missing ranges into the targets that lack them, then check again.",
            )
        },
        render_template_as_native_obj=True,
        tags=["logtap", "reconcile"],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
        doc_md=(
            f"Checks that every tap of topic `{topic}` ({', '.join(f'`{t.name}`' for t in of_topic)}) holds each "
            "offset of `[log start, committed)` once: per target and partition, the ranges **missing** (and "
            "missing below Kafka's log start), **doubled**, and held **beyond** the committed offset, one log "
            "line each; the report is the task's XCom (JSON). The run fails (not retried) when anything is "
            "missing or doubled. Trigger it with `repair` ticked to replay exactly the missing ranges (from the "
            "S3 archive below the log start, from Kafka above it), or run `logtap reconcile --repair`."
        ),
    ) as dag:
        KafkaReconcileOperator(
            task_id="reconcile",
            taps=taps,
            topic=topic,
            fail_on_gap=True,
            repair="{{ params.repair }}",
        )
    return dag


def reconcile_dags(taps: list[Tap]) -> dict[str, DAG]:
    """``{dag_id: DAG}``: one daily reconcile DAG per topic of ``taps``."""
    return {
        f"{RECONCILE_DAG_PREFIX}{topic}": reconcile_dag(topic, taps)
        for topic in sorted({t.topic for t in taps})
    }
