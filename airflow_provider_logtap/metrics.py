"""logtap's metrics, through Airflow's ``Stats`` (StatsD or OpenTelemetry, as the deployment configures).

Every name starts with ``logtap.`` (after Airflow's ``[metrics] statsd_prefix``, ``airflow`` by default).
Each metric has tags; where the backend takes tags they are sent as tags, and where it has none they are
folded into the name, so that series differing by a tag (two partitions, a partition and the total, two
sinks, two taps' groups) never write the same StatsD name.

Backends with tags (the tags are sent as they are; the name is the bare metric name):

- Datadog StatsD (``[metrics] statsd_datadog_enabled``): DogStatsD tags ``topic:weblogs,partition:0``;
- StatsD with ``[metrics] statsd_influxdb_enabled``: Airflow appends ``,topic=weblogs,partition=0``;
- OpenTelemetry (``[metrics] otel_on``): attributes.

Plain StatsD (``[metrics] statsd_on`` alone) has no tags: Airflow would drop them. There the tag values are
appended to the name, in the fixed order below (not the callers' order), each made StatsD-safe: every
character outside ``A-Z a-z 0-9 _ -`` becomes ``_`` (a topic ``web.logs`` gives ``web_logs``, a group
``logtap:x`` gives ``logtap_x``; Kafka itself refuses topics whose names differ only in ``.`` against
``_``). A tag a metric has no value for is ``all`` (the total lag over a topic's partitions). The metrics
and their names on plain StatsD:

- ``logtap.lag.<group>.<topic>.<partition>`` (gauge): records not yet loaded by a tap's consumer group, per
  partition; ``logtap.lag.<group>.<topic>.all``: the same summed over the topic's partitions (tags:
  ``group``, ``topic``, ``partition``; the total has no ``partition`` tag). Sent by the backlog
  sensor/trigger.
- ``logtap.headroom.<topic>.<partition>`` (gauge): offsets between the log start and the group's position
  (how far the oldest unloaded record is from being deleted by retention), from the retention-risk check.
- ``logtap.records.<topic>.<partition>.<sink>`` / ``logtap.bytes...`` (counters): records and bytes a load
  read; ``<sink>`` is ``s3``, ``hdfs_raw``, ``hdfs_event_time`` or ``search``.
- ``logtap.written.<topic>.<partition>.<sink>`` (counter): lines/documents a load wrote.
- ``logtap.dead_letters.<topic>.<partition>.<sink>`` (counter): lines sent to a dead-letter place.
- ``logtap.lost.<topic>.<partition>.<sink>`` (counter): offsets lost to retention (only under
  ``on_data_loss='log_start'``).
- ``logtap.out_of_place.<topic>.<partition>.<sink>`` (counter): interval mode, records loaded by an interval
  their timestamp is not in (further out of order than ``max_disorder_seconds``).

Counters are sent only when non-zero. A tag a caller adds beyond these is appended after them, in the order
of the tag names. StatsD names longer than 250 characters are refused by Airflow (logged, not sent). The load
counters carry no tap or group tag: two taps loading the same topic into the same kind of sink add up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The tags of each metric, in the order they are folded into the name on plain StatsD.
NAME_TAGS: dict[str, tuple[str, ...]] = {
    "lag": ("group", "topic", "partition"),
    "headroom": ("topic", "partition"),
    "records": ("topic", "partition", "sink"),
    "bytes": ("topic", "partition", "sink"),
    "written": ("topic", "partition", "sink"),
    "dead_letters": ("topic", "partition", "sink"),
    "lost": ("topic", "partition", "sink"),
    "out_of_place": ("topic", "partition", "sink"),
}
MISSING = "all"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def segment(value: Any) -> str:
    """A tag value as one StatsD name segment: characters other than ``A-Za-z0-9_-`` become ``_``."""
    return _UNSAFE.sub("_", str(value)) or "_"


def folded_name(name: str, tags: Mapping[str, Any]) -> str:
    """``logtap.<name>.<tag values...>``: the name a metric has on a backend without tags."""
    order = NAME_TAGS.get(name, ())
    values = [tags.get(key, MISSING) for key in order]
    values += [tags[key] for key in sorted(tags) if key not in order]
    return ".".join(["logtap", name, *(segment(v) for v in values)])


def backend_takes_tags(conf: Any) -> bool:
    """Whether the metrics backend Airflow builds from ``conf`` sends tags (decided in Airflow's order:
    Datadog StatsD, then StatsD, then OpenTelemetry). Plain StatsD, without InfluxDB tags, is the one that
    drops them."""
    if conf.getboolean("metrics", "statsd_datadog_enabled", fallback=False):
        return True
    if conf.getboolean("metrics", "statsd_on", fallback=False):
        return bool(conf.getboolean("metrics", "statsd_influxdb_enabled", fallback=False))
    return True


def name_and_tags(name: str, tags: Mapping[str, Any], takes_tags: bool) -> tuple[str, dict[str, str]]:
    """The metric name and tags to hand to ``Stats``."""
    if takes_tags:
        return f"logtap.{name}", {k: str(v) for k, v in tags.items()}
    return folded_name(name, tags), {}


def _stats() -> tuple[Any, bool] | None:
    try:
        from airflow.providers.common.compat.sdk import Stats, conf
    except Exception:  # no Airflow here (a plain script): metrics go nowhere
        return None
    return Stats, backend_takes_tags(conf)


def gauge(name: str, value: float, **tags: Any) -> None:
    found = _stats()
    if found is not None:
        stats, takes_tags = found
        metric, str_tags = name_and_tags(name, tags, takes_tags)
        stats.gauge(metric, value, tags=str_tags)


def incr(name: str, count: int, **tags: Any) -> None:
    found = _stats()
    if found is not None and count:
        stats, takes_tags = found
        metric, str_tags = name_and_tags(name, tags, takes_tags)
        stats.incr(metric, count, tags=str_tags)
