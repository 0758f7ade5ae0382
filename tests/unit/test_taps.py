from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_logtap.models import SETTINGS_DOC, setting, validate
from airflow_provider_logtap.taps import (
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    Tap,
    TapConfigError,
    load_taps,
    load_taps_leniently,
    parse_tap,
)
from airflow_provider_logtap.targets import REGISTRY, TargetModel

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
    assert t.start_date == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_schedule_null_means_no_schedule() -> None:
    assert parse_tap(tap(schedule=None)).schedule is None
    assert parse_tap(tap()).schedule == "*/15 * * * *"
    assert parse_tap(tap(schedule="@hourly")).schedule == "@hourly"


def test_an_unquoted_yaml_date_is_a_start_date(tmp_path: Path) -> None:
    """``start_date: 2026-11-28`` is what YAML reads as a date (the form the docs recommend)."""
    file = tmp_path / "taps.yaml"
    file.write_text(
        "taps:\n"
        "  - {name: a, topic: w, start_date: 2026-11-28, target: {type: s3_archive, bucket: b}}\n"
        "  - {name: b, topic: w, start_date: 2026-11-28T06:30:00Z, target: {type: s3_archive, bucket: b}}\n"
        "  - {name: c, topic: w, start_date: '2026-11-28', target: {type: s3_archive, bucket: b}}\n"
    )
    assert isinstance(yaml.safe_load(file.read_text())["taps"][0]["start_date"], date)
    a, b, c = load_taps(file)
    assert a.start_date == c.start_date == datetime(2026, 11, 28, tzinfo=timezone.utc)
    assert b.start_date == datetime(2026, 11, 28, 6, 30, tzinfo=timezone.utc)


def test_event_time_target() -> None:
    t = parse_tap(
        tap(
            target={
                "type": "hdfs_event_time",
                "base_path": "/data/x",
                "date_format": "iso8601",
                "partition_template": "dt=%Y-%m-%d",
                "max_bad_ratio": 0,
                "parallel_files": 24,
            }
        )
    )
    assert isinstance(t.target, HdfsEventTimeTarget)
    assert t.target.time_format.date_format == "iso8601" and t.target.max_bad_ratio == 0
    assert t.target.parallel_files == 24
    assert t.target.asset_uri == "hdfs://webhdfs_default/data/x"


def test_null_is_a_value_not_the_default() -> None:
    """``max_bad_ratio: null`` means "any share" (the documented meaning), not the default 0.05."""
    raw = tap(target={"type": "hdfs_event_time", "base_path": "/d", "max_bad_ratio": None})
    target = parse_tap(raw).target
    assert isinstance(target, HdfsEventTimeTarget) and target.max_bad_ratio is None
    with pytest.raises(TapConfigError, match="'retries' must be an integer, not null"):
        parse_tap(tap(retries=None))


@pytest.mark.parametrize(
    ("raw", "field", "fix"),
    [
        (tap(target={"type": "s3_archive"}), "target.bucket", "add target.bucket: <a string>"),
        (tap(target={"type": "kafka"}), "target.type", "set target.type to one of s3_archive, hdfs_raw"),
        (tap(target="s3"), "target", "add target: {type: s3_archive"),
        (tap(target={"type": "s3_archive", "bucket": "b", "prefix": "../x"}), "target.prefix", "'..'"),
        (tap(target={"type": "s3_archive", "bucket": "b", "colour": 1}), "target.colour", "remove it"),
        (
            tap(target={"type": "s3_archive", "bucket": "b", "compresion": "gzip"}),
            "target.compresion",
            "mean",
        ),
        (
            tap(target={"type": "s3_archive", "bucket": "b", "compression": "lz4"}),
            "target.compression",
            "gzip",
        ),
        (tap(target={"type": "hdfs_raw", "base_path": "relative/path"}), "target.base_path", "absolute HDFS"),
        (
            tap(target={"type": "hdfs_event_time", "base_path": "/d", "timestamp_regex": "(a)(b)"}),
            "target.timestamp_regex",
            "one group",
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
        (tap(target={"type": "hdfs_raw", "base_path": 7}), "target.base_path", "write a string"),
        (tap(target={"type": "search", "bulk_docs": 0}), "target.bulk_docs", "at least 1"),
        (tap(target={"type": "search", "bulk_concurrency": 0}), "target.bulk_concurrency", "at least 1"),
        (
            tap(target={"type": "hdfs_event_time", "base_path": "/d", "parallel_files": 0}),
            "target.parallel_files",
            "at least 1",
        ),
        (tap(target={"type": "search", "log_format": "json"}), "target.log_format", "auto recognises"),
        (tap(topic="bad topic"), "topic", "exact name"),
        (tap(initial="oldest"), "initial", "earliest loads"),
        (tap(on_data_loss="ignore"), "on_data_loss", "log_start records"),
        (tap(max_records_per_run=0), "max_records_per_run", "at least 1"),
        (tap(retention_max_share=1.5), "retention_max_share", "retention.ms"),
        (tap(start_date="yesterday"), "start_date", "2026-01-01"),
        (tap(colour="red"), "colour", "remove it"),
        (tap(name="../x"), "name", "weblogs_archive"),
        (tap(retries=-1), "retries", "at least 0"),
        (tap(retry_delay_seconds=-30), "retry_delay_seconds", "at least 0"),
        (tap(wait_timeout_seconds=-1), "wait_timeout_seconds", "at least 1"),
        (tap(completeness_timeout_seconds=0), "completeness_timeout_seconds", "at least 1"),
        (tap(schedule="61 * * * *"), "schedule", "*/15 * * * *"),
        (tap(schedule="every day"), "schedule", "@hourly"),
        (tap(catchup="yes"), "catchup", "write true or false"),
        (tap(min_backlog=True), "min_backlog", "write an integer"),
    ],
)
def test_errors_name_tap_field_and_fix(raw: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(TapConfigError) as info:
        parse_tap(raw)
    assert info.value.field == field
    assert fix in info.value.fix
    assert str(info.value).startswith(f"tap {info.value.tap!r}: field {field!r}")


def test_every_error_of_a_tap_is_reported_at_once() -> None:
    raw = tap(
        topic="bad topic",
        retries=-1,
        schedule="61 * * * *",
        target={"type": "s3_archive", "compression": "lz4"},
        colour="red",
    )
    with pytest.raises(TapConfigError) as info:
        parse_tap(raw)
    fields = [e.field for e in info.value.errors]
    assert sorted(fields) == sorted(
        ["topic", "retries", "schedule", "target.bucket", "target.compression", "colour"]
    )
    assert str(info.value).startswith("tap 't' has 6 invalid settings:\n  - field ")
    assert all(f"field {f!r}" in str(info.value) for f in fields)


def test_an_invalid_schedule_is_one_invalid_tap_and_the_others_load(tmp_path: Path) -> None:
    """One bad cron used to hide every tap DAG (AirflowTimetableInvalid at DAG-file processing, naming no
    tap): it is now that tap's error, and the other taps load."""
    file = tmp_path / "taps.yaml"
    file.write_text(yaml.safe_dump({"taps": [tap(name="good"), tap(name="bad", schedule="0 25 * * *")]}))
    taps, errors = load_taps_leniently(file)
    assert [t.name for t in taps] == ["good"]
    assert len(errors) == 1 and isinstance(errors[0], TapConfigError)
    assert errors[0].tap == "bad" and errors[0].field == "schedule"
    assert "is not a schedule Airflow accepts" in str(errors[0])
    interval = tap(
        name="i", mode="interval", schedule="@once", target={"type": "hdfs_raw", "base_path": "/d"}
    )
    with pytest.raises(TapConfigError, match="'schedule' must be a cron schedule in interval mode"):
        parse_tap(interval)


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


# -- messages, for any wrong value of any setting -----------------------------------------------------------

MODELS: list[type[Any]] = [Tap, *REGISTRY]
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-2, 2, allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _base(model: type[Any]) -> dict[str, Any]:
    if model is Tap:
        return tap()
    return {
        "type": model.tag(),
        **{n: "/d" if n == "base_path" else "b" for n in model.setting_names() if model.required(n)},
    }


@settings(max_examples=300)
@given(
    st.sampled_from(MODELS).flatmap(
        lambda m: st.tuples(st.just(m), st.sampled_from(m.setting_names()), WRONG)
    )
)
def test_messages_name_the_setting_once_in_plain_words(case: tuple[type[Any], str, Any]) -> None:
    """For any setting and any wrong value: the message names the setting once (no repeated prefix), says
    "an integer" (never "a int"), shows no Python internals (``_MISSING_TYPE``, ``PydanticUndefined``,
    ``<class``), and points at a section of the settings reference that exists."""
    model, name, value = case
    data = _base(model) | {name: value}
    _, errors = validate(model, data)
    reference = (ROOT / SETTINGS_DOC).read_text()
    for e in errors:
        text = str(e)
        assert not re.search(r"\ba int\b|_MISSING_TYPE|PydanticUndefined|<class |object at 0x", text), text
        leaf = e.field.rsplit(".", 1)[-1]
        assert f"field {e.field!r} {leaf} " not in text and f"{leaf} {leaf}" not in text, text
        for anchor in re.findall(re.escape(SETTINGS_DOC) + r"#([\w-]+)", e.fix):
            assert f'<a id="{anchor}"></a>' in reference, anchor


def test_a_new_bool_setting_needs_nothing_but_its_declaration() -> None:
    """Adding a bool field used to raise KeyError in the hand-written type check."""

    class Flagged(S3ArchiveTarget):
        verify: bool = setting(True, description="A new flag.")

    assert Flagged.model_validate({"bucket": "b", "verify": False}).verify is False
    _, errors = validate(Flagged, {"bucket": "b", "verify": "no"})
    assert [str(e).split(". Fix")[0] for e in errors] == [
        "field 'verify' must be true or false, not str 'no'"
    ]


def test_every_target_type_is_one_module_with_its_operator() -> None:
    import importlib

    for model in REGISTRY:
        assert issubclass(model, TargetModel)
        module = importlib.import_module(model.__module__)
        assert module.__name__ == f"airflow_provider_logtap.targets.{model.tag()}"
        operator_module, _, operator_name = model.operator.rpartition(".")
        operator = getattr(importlib.import_module(operator_module), operator_name)
        assert operator.target_model is model
        assert set(model.setting_names()) <= set(
            __import__("inspect").signature(operator.__init__).parameters
        )


def test_the_settings_reference_is_generated_from_the_models() -> None:
    """docs/settings.md is what the models render (regenerate: ``logtap settings-reference``)."""
    from airflow_provider_logtap.reference import render

    committed = (ROOT / SETTINGS_DOC).read_text()
    assert committed == render(), "docs/settings.md is stale: python -m airflow_provider_logtap.reference"
    for model in MODELS:
        for name in model.setting_names():
            assert f"| `{name}` |" in committed, name


def test_a_target_type_without_its_own_operator_is_loaded_by_the_generic_one() -> None:
    """A new target type needs no operator: the tap DAG loads it with KafkaToTargetOperator, target as data."""
    from airflow_provider_logtap.dag_factory import dag_for
    from airflow_provider_logtap.operators.target import KafkaToTargetOperator
    from airflow_provider_logtap.targets import TargetModel as Base

    class Plain(S3ArchiveTarget):
        operator = Base.operator

    t = parse_tap(tap())
    dag = dag_for(t.model_copy(update={"target": Plain(bucket="b")}))
    load: Any = dag.get_task("load")
    assert load.operator_class is KafkaToTargetOperator
    assert load.partial_kwargs["replay"]["target"] == {
        **S3ArchiveTarget(bucket="b").model_dump(),
        "type": "s3_archive",
    }
    assert parse_tap(tap()).target.operator.endswith("KafkaToS3ArchiveOperator")
    assert dag_for(t).get_task("load").operator_class.__name__ == "KafkaToS3ArchiveOperator"
