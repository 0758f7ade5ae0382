"""The only module that knows Airflow versions apart.

Everything Airflow-facing in logtap imports Airflow names from here. The common.compat provider already maps
most names between Airflow 2.x and 3.x (``airflow.sdk`` first); what it does not cover is decided here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    Context,
    Param,
    TriggerRule,
    Variable,
)
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
from airflow.triggers.base import BaseTrigger, TriggerEvent  # the same place in Airflow 2.x and 3.x

from airflow_provider_logtap.errors import ConfigurationError, NotRetryable

try:  # Airflow 3: the Task SDK's timetables
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2.x
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment]

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "CronDataIntervalTimetable",
    "Param",
    "TriggerEvent",
    "TriggerRule",
    "Variable",
    "airflow_setting",
    "asset",
    "check_schedule",
    "emit_asset_events",
    "fail_without_retry",
    "import_string",
    "in_task_test",
    "kafka_client_config",
    "run_identity",
    "variable_get",
]


def asset(uri: str, name: str) -> Asset:
    """The asset (Airflow 3) or dataset (Airflow 2.x, which has no asset names) a load task updates."""
    if AIRFLOW_V_3_0_PLUS:
        return Asset(uri=uri, name=name)
    return Asset(uri=uri)


def variable_get(key: str, default: Any = None) -> Any:
    """An Airflow Variable's value, or ``default`` when it does not exist: ``Variable.get(key, default=...)`` on
    Airflow 3's Task SDK, ``default_var=`` on Airflow 2.x."""
    if AIRFLOW_V_3_0_PLUS:
        return Variable.get(key, default=default)
    return Variable.get(key, default_var=default)  # type: ignore[call-arg]


def kafka_client_config(hook: Any) -> dict[str, Any]:
    """The librdkafka configuration of a Kafka provider hook's connection.

    Newer apache-kafka providers build it with ``_build_config`` (resolving allow-listed callbacks and managed
    OAuth); older ones read the connection extra directly.
    """
    build = getattr(hook, "_build_config", None)
    if callable(build):
        return dict(build())
    config = dict(hook.get_connection(hook.kafka_config_id).extra_dejson)
    if not config.get("bootstrap.servers"):
        raise ValueError("config['bootstrap.servers'] must be provided.")
    return config


def run_identity(context: Context) -> str:
    """``<dag_id>/<run_id>`` of the running task: who claims, writes and commits a range."""
    ti = context["ti"]
    return f"{ti.dag_id}/{context['run_id']}"


def in_task_test(context: Context) -> bool:
    """Whether the task runs under ``airflow tasks test`` (a debugging run that must not move what production
    relies on), not as a DAG run of the scheduler, a backfill or ``airflow dags test``.

    Airflow 3 runs ``tasks test`` in the CLI's own process after setting ``AIRFLOW_TEST_MODE=True`` in its
    environment (3.3; some earlier 3.x set it only with ``--env-vars``); its context has no ``test_mode``.
    Airflow 2 runs it with ``ti.run(test_mode=True)``: ``ti.test_mode`` and the context's ``test_mode``. Both
    make a temporary run (``__airflow_temporary_run_...``) when no run has the given date. ``dags test`` sets
    none of these: it is a whole DAG run, recorded like any other.
    """
    values: Mapping[str, Any] = cast("Mapping[str, Any]", context)
    if str(values.get("run_id") or "").startswith("__airflow_temporary_run_"):
        return True
    if AIRFLOW_V_3_0_PLUS:
        return os.environ.get("AIRFLOW_TEST_MODE", "").strip().lower() == "true"
    return bool(values.get("test_mode") or getattr(values.get("ti"), "test_mode", False))


def emit_asset_events(context: Context, outlets: Any, extra: dict[str, Any], partitions: list[str]) -> None:
    """Attach ``extra`` and the event-time partition keys to the asset events of the task's outlets.

    Partition keys on asset events exist from Airflow 3.2 (``add_partitions``); before that they go into the
    event's extra as ``partitions``.
    """
    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in outlets or ():
        if not isinstance(outlet, Asset):
            continue
        event: Any = events[outlet]
        event.extra.update(extra)
        if partitions:
            if hasattr(event, "add_partitions"):
                event.add_partitions(partitions)
            else:
                event.extra["partitions"] = partitions


F = TypeVar("F", bound=Callable[..., Any])


def fail_without_retry(method: F) -> F:
    """Decorate an operator's ``execute`` (or a sensor's ``poke`` / ``execute_complete``): a
    :class:`~airflow_provider_logtap.errors.NotRetryable` failure becomes Airflow's ``AirflowFailException``,
    which fails the task at once instead of spending its retries on what a retry cannot fix."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except NotRetryable as exc:
            raise AirflowFailException(
                f"{exc} [{type(exc).__name__}: not retried, a retry cannot fix this]"
            ) from exc

    return wrapper  # type: ignore[return-value]


def check_schedule(schedule: str) -> str:
    """Airflow's own verdict on a cron expression or preset (what its timetable's ``validate`` says when the
    DAG is serialized), at tap validation instead of at DAG-file processing, where one bad schedule hides
    every DAG of the file."""
    if schedule in ("@once", "@continuous"):
        return schedule
    try:
        CronDataIntervalTimetable(schedule, timezone="UTC").validate()
    except Exception as exc:
        raise ConfigurationError(f"is not a schedule Airflow accepts: {exc}") from None
    return schedule


def airflow_setting(section: str, key: str) -> str | None:
    """A value of Airflow's configuration (``airflow.cfg`` / ``AIRFLOW__SECTION__KEY``), or ``None``; never the
    metadata database."""
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return str(value) if value else None


def import_string(dotted_path: str) -> Any:
    """The object a dotted path names (``package.module.Name``)."""
    import importlib

    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)
