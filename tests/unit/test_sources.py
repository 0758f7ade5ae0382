"""Sources (pure parts): the auto split at the log start, time resolution in the archive's metadata, what a plan
sees of a partition through the archive, and the validation of a source."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.ranges import EndSpec, OffsetRange, PartitionState, StartSpec, plan_ranges
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.replay import ReplayForm, parse_request
from airflow_provider_logtap.sources import SOURCES, Split, archive_tap, parse_source, source_to_dict
from airflow_provider_logtap.sources.archive import ArchivedObject, archive_state, gaps, offset_for_time
from airflow_provider_logtap.taps import Tap, load_taps
from airflow_provider_logtap.targets import S3ArchiveTarget

TOPIC = "weblogs"


def obj(start: int, end: int, first_ts: int, last_ts: int) -> ArchivedObject:
    return ArchivedObject(
        key=f"raw/{TOPIC}/partition=0/{TOPIC}+0+{start:020d}.log.gz",
        start=start,
        end=end,
        first_offset=start,
        last_offset=end - 1,
        records=end - start,
        tombstones=0,
        first_timestamp=first_ts,
        last_timestamp=last_ts,
        size=100,
        codec="gzip",
    )


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 120), st.sampled_from(SOURCES))
def test_a_split_tiles_the_range_the_archive_below_the_log_start(
    start: int, size: int, log_start: int, kind: str
) -> None:
    rng = OffsetRange(topic=TOPIC, partition=0, start=start, end=start + size)
    split = Split.of(kind, rng, log_start)
    parts = [p for p in (split.archive, split.kafka) if p is not None]
    assert [o for p in parts for o in range(p.start, p.end)] == list(range(rng.start, rng.end))
    if kind == "auto" and split.archive is not None:
        assert split.archive.end <= max(log_start, rng.start) and split.archive.start == rng.start
    if kind == "auto" and split.kafka is not None:
        assert split.kafka.start >= min(log_start, rng.end)
    assert (split.kafka is None) == (
        kind == "archive" or (kind == "auto" and log_start >= rng.end)
    ) or rng.empty


# Objects of 10 offsets each stamped 100 ms apart per record, timestamps monotone: offset o at 1000 + 100 * o.
MONOTONE = [obj(s, s + 10, 1000 + 100 * s, 1000 + 100 * (s + 9)) for s in range(0, 50, 10)]


@given(st.integers(0, 8000))
def test_a_time_resolves_to_whole_objects_around_the_first_record_at_or_after_it(t: int) -> None:
    exact = next((o for o in range(50) if 1000 + 100 * o >= t), None)  # the first offset stamped >= t
    start = offset_for_time(MONOTONE, t, end=False)
    end = offset_for_time(MONOTONE, t, end=True)
    if exact is None:
        assert start is None and end is None
        return
    assert start is not None and end is not None
    assert start <= exact <= end  # never narrower than the exact range: no record missed
    assert start % 10 == 0 and end % 10 == 0  # object boundaries
    if exact % 10 == 0:  # the time falls between objects: exact
        assert start == end == exact


def test_what_a_plan_sees_through_the_archive() -> None:
    kafka = PartitionState(partition=0, log_start=30, high_watermark=80)
    objects = [obj(0, 20, 1000, 2900), obj(20, 40, 3000, 4900)]  # archived up to 40; Kafka from 30
    # archive: the archive's extent; 'latest' is its end.
    seen = archive_state("archive", kafka, objects, start_ms=None, end_ms=None, to_latest=True)
    assert (seen.log_start, seen.high_watermark) == (0, 40)
    plan = plan_ranges(
        topic=TOPIC, states=[seen], start=StartSpec.parse("earliest"), end=EndSpec.parse("latest")
    )
    assert plan.ranges[0] == OffsetRange(topic=TOPIC, partition=0, start=0, end=40)
    # auto: from the archive's start to Kafka's high-water mark.
    seen = archive_state("auto", kafka, objects, start_ms=None, end_ms=None, to_latest=True)
    assert (seen.log_start, seen.high_watermark) == (0, 80)
    # auto by time: a time before Kafka's first record resolves in the archive (Kafka answers its log start).
    early = PartitionState(partition=0, log_start=30, high_watermark=80, start_at_timestamp=30)
    seen = archive_state("auto", early, objects, start_ms=3000, end_ms=None, to_latest=True)
    assert seen.start_at_timestamp == 20
    # ...and a time Kafka still holds records around stays Kafka's answer.
    later = PartitionState(partition=0, log_start=30, high_watermark=80, start_at_timestamp=55)
    assert (
        archive_state("auto", later, objects, start_ms=9000, end_ms=None, to_latest=True).start_at_timestamp
        == 55
    )
    # An empty archive: nothing to read from it.
    seen = archive_state("archive", kafka, [], start_ms=None, end_ms=None, to_latest=True)
    assert seen.log_start == seen.high_watermark
    assert gaps(objects, OffsetRange(topic=TOPIC, partition=0, start=10, end=50)) == [(40, 50)]


def test_a_source_is_validated_and_round_trips() -> None:
    target = S3ArchiveTarget(bucket="logtap-archive", prefix="raw")
    for kind in SOURCES:
        got_kind, got = parse_source(source_to_dict(kind, target))
        assert got_kind == kind and (got == target if kind != "kafka" else got is None)
    assert parse_source(None) == ("kafka", None)
    with pytest.raises(
        ConfigurationError, match=r"source must be one of \{'archive', 'auto', 'kafka'\}. Got 'tape'"
    ):
        parse_source("tape")
    with pytest.raises(ConfigurationError, match="needs the archive to read"):
        parse_source("archive")
    with pytest.raises(ConfigurationError, match="bucket"):
        parse_source({"kind": "auto", "archive": {"bucket": "s3://nope"}})


TAPS = """
taps:
  - {name: archive, topic: weblogs, target: {type: s3_archive, bucket: logtap-archive, prefix: raw}}
  - {name: hours, topic: weblogs, target: {type: hdfs_event_time, base_path: /data/logs}}
  - {name: other, topic: applogs, target: {type: hdfs_raw, base_path: /data/app}}
"""


def taps(tmp_path_factory: pytest.TempPathFactory, text: str = TAPS) -> list[Tap]:
    path = tmp_path_factory.mktemp("taps") / "taps.yaml"
    path.write_text(text)
    return load_taps(path)


def test_a_replay_from_the_archive_reads_the_topics_archive_tap(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    known = taps(tmp_path_factory)
    request = parse_request({"tap": "hours", "source": "auto", "dry_run": True}, known, run_id="r1")
    assert request.source == "auto" and request.archive == known[0].target
    assert parse_request({"tap": "hours"}, known, run_id="r1").archive is None  # kafka by default
    assert ReplayForm.default_of("source") == "kafka"
    with pytest.raises(ConfigurationError, match="no s3_archive tap archives topic 'applogs'"):
        parse_request({"tap": "other", "source": "archive"}, known, run_id="r1")
    assert archive_tap(known, "applogs", "archive") is known[0]  # named: any archive tap
    with pytest.raises(
        ConfigurationError,
        match=r"archive_tap \(an s3_archive tap\) must be one of \{'archive'\}. Got 'hours'",
    ):
        archive_tap(known, "weblogs", "hours")
    twice = TAPS + "  - {name: archive2, topic: weblogs, target: {type: s3_archive, bucket: b2}}\n"
    with pytest.raises(ConfigurationError, match="several s3_archive taps archive topic 'weblogs'"):
        archive_tap(taps(tmp_path_factory, twice), "weblogs")
