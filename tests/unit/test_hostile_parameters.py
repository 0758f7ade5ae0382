"""Hostile parameters: every class of path, name and offset a user could get wrong is refused while the target or
the replay is validated (before any sink exists, so before any write), with a message naming the setting and
the fix; every class that is right is accepted as it is."""

from __future__ import annotations

import string
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.core.ranges import (
    MAX_OFFSET,
    EndSpec,
    OffsetRange,
    PartitionState,
    Plan,
    StartSpec,
    check_topic,
    plan_ranges,
)
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.replay import MAX_REPLAY_OFFSETS, check_replay_plan, parse_request
from airflow_provider_logtap.sinks.search import index_names
from airflow_provider_logtap.taps import parse_tap
from airflow_provider_logtap.targets import (
    HdfsEventTimeTarget,
    HdfsRawTarget,
    S3ArchiveTarget,
    SearchTarget,
    check_replay_name,
    relocated,
)

SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=@+-"
safe_segments = st.text(SAFE, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
safe_paths = st.lists(safe_segments, min_size=1, max_size=4).map("/".join)
# What must never reach a key or a path: traversal, wildcards, NUL and control bytes, separators, spaces.
unsafe_segments = st.one_of(
    st.sampled_from([".", "..", "", "*", "?", "[a]", "a*", "x?y", "[", "\x00", "a\x00b", "a b", "\t", "~"]),
    st.builds(
        lambda a, c, b: a + c + b,
        st.text(SAFE, max_size=4),
        st.sampled_from("*?[]\x00 \n\r\\#,"),
        st.text(SAFE, max_size=4),
    ),
)


def _unsafe_path(parts: list[str], bad: str, at: int) -> str:
    parts = list(parts)
    parts.insert(at % (len(parts) + 1), bad)
    return "/".join(parts)


def _refused(make: Any, *words: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        make()
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# -- S3 prefixes and HDFS base paths -----------------------------------------------------------------------


@given(st.lists(safe_segments, max_size=3), unsafe_segments, st.integers(0, 3))
def test_unsafe_prefixes_and_base_paths_are_refused_naming_the_segment(
    parts: list[str], bad: str, at: int
) -> None:
    path = _unsafe_path(parts, bad, at)
    if not path.strip("/") or (
        bad == "" and path.endswith("/")
    ):  # the bucket root; a trailing '/' (harmless)
        return
    s3 = _refused(lambda: S3ArchiveTarget.of(bucket="b", prefix=path), "field 'prefix'", "Got", "Fix:")
    hdfs = _refused(lambda: HdfsRawTarget.of(base_path="/" + path), "field 'base_path'", "Fix:")
    for message in (s3, hdfs):
        assert any(
            w in message for w in ("unsafe segment", "must be relative", "must be absolute", "not be '/'")
        )


@given(safe_paths)
def test_safe_prefixes_and_base_paths_are_kept(path: str) -> None:
    assert S3ArchiveTarget.of(bucket="b", prefix=path).prefix == path
    assert HdfsRawTarget.of(base_path="/" + path).base_path == "/" + path
    assert (
        S3ArchiveTarget.of(bucket="b", prefix=path + "/").prefix == path + "/"
    )  # a trailing '/' is harmless


@given(safe_paths)
def test_an_absolute_s3_prefix_and_a_relative_hdfs_base_are_refused(path: str) -> None:
    _refused(
        lambda: S3ArchiveTarget.of(bucket="b", prefix="/" + path), "prefix' must be relative", repr(path)
    )
    _refused(lambda: HdfsRawTarget.of(base_path=path), "base_path", "must be absolute, like '/data/logs'")


@pytest.mark.parametrize("base", ["", "/", "//", "/.", "/..", "/a/..", "/a/./b", "/a//b"])
def test_empty_root_and_dotted_hdfs_bases_are_refused(base: str) -> None:
    _refused(lambda: HdfsEventTimeTarget.of(base_path=base), "field 'base_path'", "Fix:")


def test_the_empty_s3_prefix_is_the_bucket_root() -> None:
    assert S3ArchiveTarget.of(bucket="b", prefix="").prefix == ""


@given(st.text(SAFE.replace("=", "").replace("@", "").replace("+", ""), max_size=8), unsafe_segments)
def test_buckets_with_slashes_spaces_wildcards_or_control_characters_are_refused(name: str, bad: str) -> None:
    if set(bad) <= set(string.ascii_letters + string.digits + "._-"):  # '', '.', '..': a name, if an odd one
        return
    hostile = name + bad
    _refused(lambda: S3ArchiveTarget.of(bucket=hostile), "field 'bucket'", "bare bucket name", "Got")
    _refused(lambda: S3ArchiveTarget.of(bucket=f"s3://{name or 'b'}"), "field 'bucket'", "no 's3://'")
    _refused(lambda: S3ArchiveTarget.of(bucket=""), "field 'bucket'")


# -- names that end in a newline ($ matches before a trailing '\n') ------------------------------------------


@given(st.text(SAFE.replace(".", ""), min_size=1, max_size=20), st.sampled_from(["\n", "\r\n", "\x00", " "]))
def test_a_trailing_newline_or_nul_never_passes_a_name_check(name: str, tail: str) -> None:
    value = name + tail
    checks = [
        lambda: check_topic(value),
        lambda: check_replay_name(value),
        lambda: naming.clean_prefix(value),
        lambda: naming.check_index_name(value.lower()),
        lambda: parse_tap({"name": value, "topic": "t", "target": {"type": "hdfs_raw", "base_path": "/d"}}),
        lambda: HdfsEventTimeTarget.of(base_path="/d", partition_template="dt=%Y-%m-%d" + tail),
    ]
    for check in checks:
        _refused(check)


# -- index names --------------------------------------------------------------------------------------------

index_chars = "abcdefghijklmnopqrstuvwxyz0123456789-_."
good_prefixes = st.builds(
    lambda a, b: a + b,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text(index_chars, max_size=30),
)
# What Elasticsearch refuses in an index name, and what logtap refuses on top (':' and '#' are deprecated or
# refused by the servers, non-ASCII would not be a plain path segment).
refused_chars = st.sampled_from([*'\\/*?"<>| ,#:', "A", "Z", "\x00", "\n", "é", "\u2603"])


@given(good_prefixes, refused_chars, st.integers(0, 40))
def test_index_prefixes_the_servers_refuse_are_refused(prefix: str, bad: str, at: int) -> None:
    at = at % (len(prefix) + 1)
    hostile = prefix[:at] + bad + prefix[at:]
    _refused(lambda: SearchTarget.of(index_prefix=hostile), "field 'index_prefix'", "lower-case", "Fix:")


@given(st.sampled_from("-_.+"), st.text(index_chars, max_size=10))
def test_index_prefixes_starting_with_dash_underscore_dot_or_plus_are_refused(first: str, rest: str) -> None:
    _refused(lambda: SearchTarget.of(index_prefix=first + rest), "index_prefix", "not starting with")


@pytest.mark.parametrize("prefix", [".", "..", ""])
def test_dot_dotdot_and_empty_index_prefixes_are_refused(prefix: str) -> None:
    _refused(lambda: SearchTarget.of(index_prefix=prefix), "index_prefix")


@given(good_prefixes)
def test_an_accepted_index_prefix_makes_only_names_the_servers_accept(prefix: str) -> None:
    target = SearchTarget.of(index_prefix=prefix)
    for name in index_names(target.index_prefix).values():
        naming.check_index_name(name.rstrip("*") or "x")
    naming.check_index_name(f"{prefix}-9999.12.31")


def test_index_names_are_at_most_255_bytes_dead_letters_and_daily_indices_included() -> None:
    longest = 255 - len(".dead-letter")  # the dead-letter index is the longest name of a tap
    assert SearchTarget.of(index_prefix="a" * longest).index_prefix == "a" * longest
    _refused(
        lambda: SearchTarget.of(index_prefix="a" * (longest + 1)),
        "index_prefix",
        "at most 255 bytes",
        "shorten it by 1",
    )
    # A date format writing a long suffix makes the daily indices the longest.
    _refused(
        lambda: SearchTarget.of(index_prefix="a" * 200, index_date_format="%Y.%m.%d" * 7),
        "index_date_format",
        "at most 255 bytes",
    )


@pytest.mark.parametrize("date_format", ["%Y/%m/%d", "%Y %m %d", "%Y,%m", "%Y*", "%Y?%m", "%Y#%m", "%Y:%m"])
def test_date_formats_writing_characters_indices_cannot_have_are_refused(date_format: str) -> None:
    message = _refused(lambda: SearchTarget.of(index_date_format=date_format), "field 'index_date_format'")
    assert "the daily index of" in message and "Got 'logtap-weblogs-" in message


def test_date_formats_writing_upper_case_are_lowered_as_the_sink_does() -> None:
    assert SearchTarget.of(index_date_format="%Y.%b").index_date_format == "%Y.%b"  # 'jan', as indexed


@given(st.integers(1, 243), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True))
def test_a_replay_name_too_long_for_the_prefix_is_refused_naming_the_longest_allowed(
    length: int, name: str
) -> None:
    live = SearchTarget.of(index_prefix="p" * length)
    over = length + len(".replay-") + len(name) + len(".dead-letter") - 255
    if over > 0:
        _refused(
            lambda: relocated(live, name), "target_name must be at most", f"{len(name) - over} characters"
        )
    else:
        replay = relocated(live, name)
        assert replay.index_prefix == f"{live.index_prefix}.replay-{name.lower()}"


# -- replay offsets -----------------------------------------------------------------------------------------

TAPS = [
    parse_tap({"name": "archive", "topic": "weblogs", "target": {"type": "s3_archive", "bucket": "b"}}),
]


def _replay(**params: Any) -> Any:
    return parse_request({"tap": "archive", "target_name": "r1", **params}, TAPS)


@given(st.integers(max_value=-1) | st.integers(min_value=MAX_OFFSET + 1), st.sampled_from(["from", "to"]))
def test_offsets_below_zero_or_beyond_int64_are_refused_in_the_form(offset: int, which: str) -> None:
    params = {which: "offsets", f"{which}_offsets": {"0": offset}}
    _refused(lambda: _replay(**params), f"[0] must be an integer >= 0 and <= {MAX_OFFSET}", f"Got {offset}")


@given(st.integers(min_value=2**31) | st.integers(max_value=-1))
def test_partitions_beyond_int32_are_refused(partition: int) -> None:
    _refused(
        lambda: _replay(**{"from": "offsets", "from_offsets": {str(partition): 0}}),
        f"partition {partition} must be an integer >= 0 and <= {2**31 - 1}",
    )


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**12))
def test_offsets_beyond_the_high_watermark_or_an_end_before_the_start_never_plan(
    start: int, end: int, hwm: int
) -> None:
    state = PartitionState(partition=0, log_start=0, high_watermark=hwm)
    try:
        plan = plan_ranges(
            topic="t",
            states=[state],
            start=StartSpec(kind="offsets", offsets={0: start}),
            end=EndSpec(kind="offsets", offsets={0: end}),
        )
    except ConfigurationError as exc:
        message = str(exc)
        assert start > hwm or end > hwm or end < start, message
        words = "beyond its high watermark" if max(start, end) > hwm else "is before start offset"
        assert words in message and ("Use an end" in message or "Choose" in message or "exist" in message)
    else:
        assert start <= end <= hwm and plan.ranges[0].size == end - start


@given(st.integers(MAX_REPLAY_OFFSETS + 1, 10**15), st.integers(0, 10**15))
def test_a_replay_of_billions_of_offsets_is_refused_with_the_split_to_ask_for(size: int, start: int) -> None:
    rng = OffsetRange(topic="t", partition=3, start=start, end=start + size)
    plan = Plan(topic="t", ranges=(rng,))
    message = _refused(
        lambda: check_replay_plan(plan), f"at most {MAX_REPLAY_OFFSETS:,} offsets", f"{size:,}"
    )
    runs = -(-size // MAX_REPLAY_OFFSETS)
    assert f"Split it into {runs} replays" in message
    assert f'to_offsets {{"3": {start + MAX_REPLAY_OFFSETS}}}' in message
    ok = Plan(
        topic="t", ranges=(OffsetRange(topic="t", partition=3, start=start, end=start + MAX_REPLAY_OFFSETS),)
    )
    assert check_replay_plan(ok) is ok


def test_planning_ten_billion_offsets_is_arithmetic_not_a_list() -> None:
    began = time.perf_counter()
    states = [PartitionState(partition=p, log_start=0, high_watermark=10**10) for p in range(64)]
    plan = plan_ranges(
        topic="t", states=states, start=StartSpec(kind="earliest"), end=EndSpec.parse("latest")
    )
    assert plan.records_upper_bound == 64 * 10**10
    assert Plan.from_dict(plan.to_dict()) == plan
    assert time.perf_counter() - began < 0.5
    _refused(lambda: check_replay_plan(plan), "Split it into 10 replays")


def test_encryption_settings_are_checked_together() -> None:
    with pytest.raises(ConfigurationError, match=r"'server_side_encryption' must be one of .*Got 'kms'"):
        S3ArchiveTarget.of(bucket="b", server_side_encryption="kms")
    with pytest.raises(ConfigurationError, match="'sse_kms_key_id' needs server_side_encryption aws:kms"):
        S3ArchiveTarget.of(bucket="b", server_side_encryption="AES256", sse_kms_key_id="alias/x")
    assert S3ArchiveTarget.of(bucket="b", server_side_encryption="AES256").encryption_args() == {
        "ServerSideEncryption": "AES256"
    }
