"""Metric names: tags folded into the name on plain StatsD, kept as tags where the backend takes them."""

from __future__ import annotations

import pytest

from airflow_provider_logtap import metrics


def test_partition_and_total_lag_have_their_own_names_per_group() -> None:
    # As the backlog check sends them (sensors/checks.py): per partition, then the total without a partition.
    per_partition = metrics.folded_name("lag", {"topic": "weblogs", "partition": 3, "group": "logtap-a"})
    total = metrics.folded_name("lag", {"topic": "weblogs", "group": "logtap-a"})
    other_tap = metrics.folded_name("lag", {"topic": "weblogs", "partition": 3, "group": "logtap-b"})
    assert per_partition == "logtap.lag.logtap-a.weblogs.3"
    assert total == "logtap.lag.logtap-a.weblogs.all"
    assert other_tap == "logtap.lag.logtap-b.weblogs.3"


def test_load_counters_fold_topic_partition_and_sink_in_a_fixed_order() -> None:
    # operators/load.py passes topic, partition, sink; the order of the keywords does not matter.
    tags = {"sink": "hdfs_raw", "partition": 0, "topic": "weblogs"}
    for name in ("records", "bytes", "written", "dead_letters", "lost", "out_of_place"):
        assert metrics.folded_name(name, tags) == f"logtap.{name}.weblogs.0.hdfs_raw"
    assert (
        metrics.folded_name("headroom", {"topic": "weblogs", "partition": 2}) == "logtap.headroom.weblogs.2"
    )


def test_values_are_made_statsd_safe() -> None:
    name = metrics.folded_name("lag", {"topic": "web.logs", "partition": 0, "group": "team:logtap|x y"})
    assert name == "logtap.lag.team_logtap_x_y.web_logs.0"
    assert metrics.segment("") == "_"
    # Kafka topic names allow only these; '.' is the one that would break StatsD's hierarchy.
    assert metrics.segment("A-z_0.9") == "A-z_0_9"


def test_an_extra_tag_is_appended_after_the_known_ones_and_unknown_metrics_sort_their_tags() -> None:
    assert (
        metrics.folded_name("records", {"topic": "t", "partition": 1, "sink": "s3", "group": "g"})
        == "logtap.records.t.1.s3.g"
    )
    assert metrics.folded_name("new_metric", {"b": 2, "a": 1}) == "logtap.new_metric.1.2"


def test_name_and_tags_keep_tags_where_the_backend_takes_them() -> None:
    tags = {"topic": "weblogs", "partition": 0, "group": "g"}
    assert metrics.name_and_tags("lag", tags, takes_tags=True) == (
        "logtap.lag",
        {"topic": "weblogs", "partition": "0", "group": "g"},
    )
    assert metrics.name_and_tags("lag", tags, takes_tags=False) == ("logtap.lag.g.weblogs.0", {})


@pytest.mark.parametrize(
    ("settings", "takes_tags"),
    [
        ({}, True),  # no metrics backend at all: Stats discards everything; nothing to fold
        ({"STATSD_ON": "True"}, False),  # plain StatsD drops tags
        ({"STATSD_ON": "True", "STATSD_INFLUXDB_ENABLED": "True"}, True),
        ({"STATSD_ON": "True", "STATSD_DATADOG_ENABLED": "True"}, True),  # Datadog wins, as in Airflow
        ({"STATSD_DATADOG_ENABLED": "True"}, True),
        ({"OTEL_ON": "True"}, True),
    ],
)
def test_backend_takes_tags_follows_airflows_choice_of_backend(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], takes_tags: bool
) -> None:
    from airflow.providers.common.compat.sdk import conf

    for key in ("STATSD_ON", "STATSD_INFLUXDB_ENABLED", "STATSD_DATADOG_ENABLED", "OTEL_ON"):
        monkeypatch.delenv(f"AIRFLOW__METRICS__{key}", raising=False)
    for key, value in settings.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    assert metrics.backend_takes_tags(conf) is takes_tags
