"""logtap's metrics, through Airflow's ``Stats`` (StatsD or OpenTelemetry, as the deployment configures).

Names (prefixed by Airflow's ``[metrics] statsd_prefix``, ``airflow`` by default), with tags where the backend
takes them (``statsd_datadog_enabled``/OpenTelemetry) and otherwise folded into the name:

- ``logtap.lag`` (gauge): records not yet loaded by a tap's group, per topic/partition and in all
- ``logtap.records`` / ``logtap.bytes`` (counters): records and bytes a load read, per topic/partition/sink
- ``logtap.written`` (counter): lines/documents/objects' lines written by a load
- ``logtap.dead_letters`` (counter): lines sent to a dead-letter place
- ``logtap.lost`` (counter): offsets lost to retention (only under ``on_data_loss='log_start'``)
- ``logtap.out_of_place`` (counter): interval mode, records loaded by an interval their timestamp is not in
  (further out of order than ``max_disorder_seconds``)
"""

from __future__ import annotations

from typing import Any


def _stats() -> Any:
    try:
        from airflow.providers.common.compat.sdk import Stats

        return Stats
    except Exception:  # no Airflow here (a plain script): metrics go nowhere
        return None


def _name(name: str, tags: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return f"logtap.{name}", {k: str(v) for k, v in tags.items()}


def gauge(name: str, value: float, **tags: Any) -> None:
    stats = _stats()
    if stats is not None:
        metric, str_tags = _name(name, tags)
        stats.gauge(metric, value, tags=str_tags)


def incr(name: str, count: int, **tags: Any) -> None:
    stats = _stats()
    if stats is not None and count:
        metric, str_tags = _name(name, tags)
        stats.incr(metric, count, tags=str_tags)
