from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_logtap.taps import (
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    TapConfigError,
    load_taps,
    parse_tap,
)

ROOT = Path(__file__).resolve().parents[2]


def tap(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "t", "topic": "weblogs", "target": {"type": "s3_archive", "bucket": "b"}}
    raw.update(overrides)
    return raw


def test_the_shipped_taps_file_is_valid() -> None:
    taps = load_taps(ROOT / "dags" / "logtap_taps.yaml")
    assert {type(t.target) for t in taps} == {
        S3ArchiveTarget,
        HdfsRawTarget,
        HdfsEventTimeTarget,
        SearchTarget,
    }
    assert len({t.group for t in taps}) == len(taps)


def test_defaults() -> None:
    t = parse_tap(tap())
    assert (t.dag_id, t.group, t.initial, t.on_data_loss) == ("logtap_t", "logtap-t", "earliest", "fail")
    assert t.target == S3ArchiveTarget(bucket="b")


def test_schedule_null_means_no_schedule() -> None:
    assert parse_tap(tap(schedule=None)).schedule is None
    assert parse_tap(tap()).schedule == "*/15 * * * *"
    assert parse_tap(tap(schedule="@hourly")).schedule == "@hourly"


def test_event_time_target() -> None:
    t = parse_tap(
        tap(
            target={
                "type": "hdfs_event_time",
                "base_path": "/data/x",
                "date_format": "iso8601",
                "partition_template": "dt=%Y-%m-%d",
                "max_bad_ratio": 0,
            }
        )
    )
    assert isinstance(t.target, HdfsEventTimeTarget)
    assert t.target.time_format.date_format == "iso8601" and t.target.max_bad_ratio == 0
    assert t.target.asset_uri == "hdfs://webhdfs_default/data/x"


@pytest.mark.parametrize(
    ("raw", "field", "fix"),
    [
        (tap(target={"type": "s3_archive"}), "target.bucket", "add target.bucket"),
        (tap(target={"type": "kafka"}), "target.type", "set target.type to one of s3_archive, hdfs_raw"),
        (
            tap(target={"type": "s3_archive", "bucket": "b", "prefix": "../x"}),
            "target.prefix",
            "see the s3_archive",
        ),
        (tap(target={"type": "s3_archive", "bucket": "b", "colour": 1}), "target.colour", "remove it"),
        (
            tap(target={"type": "s3_archive", "bucket": "b", "compression": "lz4"}),
            "target.compression",
            "gzip",
        ),
        (
            tap(target={"type": "hdfs_raw", "base_path": "relative/path"}),
            "target.base_path",
            "see the hdfs_raw",
        ),
        (
            tap(target={"type": "hdfs_event_time", "base_path": "/d", "timestamp_regex": "(a)(b)"}),
            "target.timestamp_regex",
            "see the hdfs_event_time",
        ),
        (
            tap(target={"type": "hdfs_event_time", "base_path": "/d", "partition_template": "dt=%S"}),
            "target.partition_template",
            "dt=%Y-%m-%d/hour=%H",
        ),
        (
            tap(target={"type": "hdfs_event_time", "base_path": "/d", "max_bad_ratio": 5}),
            "target.max_bad_ratio",
            "0.05",
        ),
        (tap(target={"type": "hdfs_raw", "base_path": 7}), "target.base_path", "to a str"),
        (tap(topic="bad topic"), "topic", "exact name"),
        (tap(initial="oldest"), "initial", "earliest loads"),
        (tap(on_data_loss="ignore"), "on_data_loss", "log_start records"),
        (tap(max_records_per_run=0), "max_records_per_run", "1 or more"),
        (tap(retention_max_share=1.5), "retention_max_share", "80% of the topic's retention.ms"),
        (tap(start_date="yesterday"), "start_date", "2026-01-01"),
        (tap(colour="red"), "colour", "remove it"),
        (tap(name="../x"), "name", "weblogs_archive"),
    ],
)
def test_errors_name_tap_field_and_fix(raw: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(TapConfigError) as info:
        parse_tap(raw)
    assert info.value.field == field
    assert fix in info.value.fix
    assert str(info.value).startswith(f"tap {info.value.tap!r}: field {field!r}")


def test_duplicate_groups_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "taps.yaml"
    file.write_text(yaml.safe_dump({"taps": [tap(name="a", group_id="g"), tap(name="b", group_id="g")]}))
    with pytest.raises(TapConfigError, match="repeats the consumer group 'g' of tap 'a'"):
        load_taps(file)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (tap(mode="stream"), "field 'mode' must be one of {'group', 'interval'}. Got 'stream'"),
        (
            tap(initial="oldest"),
            "field 'initial' must be one of {'earliest', 'latest', 'fail'}. Got 'oldest'",
        ),
        (tap(target={"type": "kafka"}), "field 'target.type' must be one of {'s3_archive', "),
    ],
)
def test_choice_errors_list_the_choices_and_the_value(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(TapConfigError) as info:
        parse_tap(raw)
    assert message in str(info.value)
