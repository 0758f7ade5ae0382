from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.replay import parse_request
from airflow_provider_logtap.taps import HdfsEventTimeTarget, S3ArchiveTarget, parse_tap

TAPS = [
    parse_tap(
        {
            "name": "archive",
            "topic": "weblogs",
            "target": {"type": "s3_archive", "bucket": "b", "prefix": "raw"},
        }
    ),
    parse_tap(
        {"name": "by_time", "topic": "weblogs", "target": {"type": "hdfs_event_time", "base_path": "/data/t"}}
    ),
    parse_tap(
        {
            "name": "hourly",
            "topic": "weblogs",
            "mode": "interval",
            "schedule": "@hourly",
            "target": {"type": "hdfs_event_time", "base_path": "/data/h"},
        }
    ),
]


def request(**params: Any):  # type: ignore[no-untyped-def]
    return parse_request({"tap": "archive", "target_name": "r1", **params}, TAPS)


def test_a_replay_writes_beside_the_live_target() -> None:
    r = request(**{"from": "timestamp", "from_timestamp": "2026-11-01T00:00:00Z", "to": "latest"})
    assert r.target == S3ArchiveTarget(bucket="b", prefix="raw/replays/r1")
    assert r.start.timestamp_ms == 1793491200000 and r.end is not None and r.end.kind == "high_watermark"
    hdfs = parse_request({"tap": "by_time", "target_name": "fix-1", "date_format": "iso8601"}, TAPS)
    assert isinstance(hdfs.target, HdfsEventTimeTarget)
    assert (hdfs.target.base_path, hdfs.target.date_format) == ("/data/t/_replays/fix-1", "iso8601")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tap": "nope"}, r"field 'tap' must be one of \['archive', 'by_time', 'hourly'\]. Got 'nope'"),
        ({"target_name": "../etc"}, "field 'target_name' must be 1-64 letters"),
        ({"target_name": "a/b"}, "field 'target_name' must be"),
        ({"target_name": "*"}, "field 'target_name' must be"),
        ({"from": "offsets"}, "from='offsets' needs from_offsets"),
        (
            {"from": "timestamp", "from_timestamp": "yesterday"},
            "from_timestamp must be epoch milliseconds or ISO",
        ),
        ({"to": "sometime"}, "field 'to' must be one of {'latest', 'offsets', 'timestamp', 'committed'}"),
        ({"dry_run": "no"}, "field 'dry_run' must be true or false"),
        ({"colour": 1}, "field 'colour' is not one of the replay form's settings"),
        ({"to": "offsets", "to_offsets": {"x": 1}}, "partition 'x' is not an integer"),
        ({"date_format": "iso8601"}, "apply to event-time targets"),
        ({"overwrite_partitions": ["dt=2015-10-28"]}, "rebuilds event-time partitions"),
        ({"topic": "a topic"}, "topic must be a Kafka topic name"),
    ],
)
def test_invalid_input_says_what_to_fix(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        request(**params)


def test_overwriting_partitions_stays_inside_the_target() -> None:
    r = parse_request({"tap": "by_time", "overwrite_partitions": ["dt=2015-10-28"], "to": "committed"}, TAPS)
    assert r.overwrite == ("dt=2015-10-28",) and r.ends_at_committed
    assert isinstance(r.target, HdfsEventTimeTarget) and r.target.base_path == "/data/t"
    for bad in (["../x"], ["dt=*"], ["/abs"], [""]):
        with pytest.raises(ConfigurationError):
            parse_request({"tap": "by_time", "overwrite_partitions": bad, "to": "committed"}, TAPS)
    # Only partitions of the tap's template: never logtap's own directories (one such replay replaced the live
    # write manifests), nor paths the template cannot make.
    for own in ("_logtap", "_dead_letter", "_logtap/partition=0", "dt=2015-13-01", "day=2015-10-28", "dt=x"):
        with pytest.raises(ConfigurationError):
            parse_request({"tap": "by_time", "overwrite_partitions": [own], "to": "committed"}, TAPS)
    hour = parse_request(
        {"tap": "by_time", "overwrite_partitions": ["dt=2015-10-28/hour=14"], "to": "committed"}, TAPS
    )
    assert hour.overwrite == ("dt=2015-10-28/hour=14",)
    with pytest.raises(ConfigurationError, match="set to='committed'"):
        parse_request({"tap": "by_time", "overwrite_partitions": ["dt=2015-10-28"]}, TAPS)
    with pytest.raises(ConfigurationError, match="needs a group-mode tap"):
        parse_request({"tap": "hourly", "overwrite_partitions": ["dt=2015-10-28"], "to": "committed"}, TAPS)


def test_the_safe_choice_is_the_default() -> None:
    """A replay triggered with the form's defaults is a dry run, into a target named after the run."""
    r = parse_request({"tap": "archive"}, TAPS, run_id="manual__2026-12-01T10:00:00.123456+00:00")
    assert r.dry_run is True
    assert r.target.prefix.endswith("/replays/manual__2026-12-01T10-00-00-123456-00-00")
    other = parse_request({"tap": "archive"}, TAPS, run_id="manual__2026-12-01T10:05:00+00:00")
    assert other.target.prefix != r.target.prefix
    assert parse_request({"tap": "archive", "dry_run": False, "target_name": "x"}, TAPS).dry_run is False
    with pytest.raises(ConfigurationError, match="target_name is required"):
        parse_request({"tap": "archive"}, TAPS)


@given(st.text(min_size=1, max_size=300))
def test_names_from_any_run_id_are_safe_segments(run_id: str) -> None:
    from airflow_provider_logtap.replay import name_from_run
    from airflow_provider_logtap.targets import REPLAY_NAME

    try:
        name = name_from_run(run_id)
    except ConfigurationError:
        assert not any(c.isascii() and c.isalnum() for c in run_id)
        return
    assert REPLAY_NAME.match(name)


def test_the_form_schema_offers_no_fixed_choices_for_free_form_lists() -> None:
    """Airflow's trigger forms (2.11's and 3.x's) read an array's ``examples`` as its only choices, and 2.11's
    fails to render (HTTP 500) a multi-select with no value: the example stays in the description."""
    from airflow_provider_logtap.models import param_schema
    from airflow_provider_logtap.replay import ReplayForm

    arrays = {
        name: param_schema(ReplayForm, info.alias or name)
        for name, info in ReplayForm.model_fields.items()
        if "array" in param_schema(ReplayForm, info.alias or name)["type"]
    }
    assert "overwrite_partitions" in arrays
    for name, schema in arrays.items():
        assert "examples" not in schema, name
    assert "dt=2015-10-28" in arrays["overwrite_partitions"]["description"]
    assert param_schema(ReplayForm, "target_name")["examples"] == [
        "regex-fix-2026-11-25"
    ]  # strings keep theirs
