from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.ranges import (
    EndSpec,
    OffsetRange,
    PartitionState,
    Plan,
    StartSpec,
    parse_timestamp_ms,
    plan_partition,
    plan_ranges,
)
from airflow_provider_logtap.errors import ConfigurationError, DataLossError

T = "weblogs"


def state(p: int = 0, low: int = 0, high: int = 100, **kw: int | None) -> PartitionState:
    return PartitionState(partition=p, log_start=low, high_watermark=high, **kw)  # type: ignore[arg-type]


class TestOffsetRange:
    def test_is_half_open(self) -> None:
        r = OffsetRange(topic=T, partition=1, start=10, end=12)
        assert 10 in r and 11 in r and 12 not in r and 9 not in r
        assert r.size == 2 and not r.empty

    def test_start_equal_end_is_empty(self) -> None:
        assert OffsetRange(topic=T, partition=0, start=5, end=5).empty

    @pytest.mark.parametrize(
        ("kw", "message"),
        [
            ({"start": 5, "end": 4}, "start <= end"),
            ({"start": -1, "end": 4}, "start must be an integer >= 0"),
            ({"partition": -2}, "partition must be an integer >= 0"),
            ({"topic": "a/b"}, "topic must be a Kafka topic name"),
            ({"topic": ".."}, "topic must be a Kafka topic name"),
            ({"start": True}, "start must be an integer"),
        ],
    )
    def test_rejects_invalid(self, kw: dict[str, object], message: str) -> None:
        args: dict[str, object] = {"topic": T, "partition": 0, "start": 0, "end": 1, **kw}
        with pytest.raises(ConfigurationError, match=message):
            OffsetRange(**args)  # type: ignore[arg-type]

    def test_is_frozen_and_keyword_only(self) -> None:
        r = OffsetRange(topic=T, partition=0, start=0, end=1)
        with pytest.raises(AttributeError):
            r.start = 3  # type: ignore[misc]
        with pytest.raises(TypeError):
            OffsetRange(T, 0, 0, 1)  # type: ignore[misc]

    @given(
        st.integers(0, 2**40), st.integers(0, 2**20), st.integers(0, 2**31 - 1)
    )  # Kafka partitions are int32
    def test_dict_round_trip(self, start: int, size: int, partition: int) -> None:
        r = OffsetRange(topic=T, partition=partition, start=start, end=start + size)
        assert OffsetRange.from_dict(r.to_dict()) == r

    def test_from_dict_names_missing_keys(self) -> None:
        with pytest.raises(ConfigurationError, match=r"lacks \['end'\]"):
            OffsetRange.from_dict({"topic": T, "partition": 0, "start": 1})


class TestSpecs:
    @pytest.mark.parametrize("value", ["committed", "earliest", "latest"])
    def test_start_keywords(self, value: str) -> None:
        assert StartSpec.parse(value).kind == value

    def test_start_offsets_accepts_string_partitions(self) -> None:
        spec = StartSpec.parse({"offsets": {"0": 5, "3": 7}})
        assert spec.kind == "offsets" and dict(spec.offsets) == {0: 5, 3: 7}

    def test_start_timestamp_iso(self) -> None:
        spec = StartSpec.parse({"timestamp": "2015-10-28T00:00:00Z"})
        assert spec.timestamp_ms == 1445990400000

    def test_unknown_start_lists_the_choices(self) -> None:
        with pytest.raises(
            ConfigurationError, match=r"start must be one of \{.*'committed'.*\}. Got 'newest'"
        ):
            StartSpec.parse("newest")

    def test_end_latest_is_high_watermark(self) -> None:
        assert EndSpec.parse("latest").kind == "high_watermark"

    def test_end_max_records_must_be_positive(self) -> None:
        with pytest.raises(ConfigurationError, match="max_records must be an integer >= 1"):
            EndSpec.parse({"max_records": 0})

    def test_timestamp_needs_zone(self) -> None:
        with pytest.raises(ConfigurationError, match="needs a time zone"):
            parse_timestamp_ms("2015-10-28T00:00:00")

    def test_bad_offsets_map(self) -> None:
        with pytest.raises(ConfigurationError, match="partition 'x' is not an integer"):
            StartSpec.parse({"offsets": {"x": 1}})

    @pytest.mark.parametrize("value", ["committed", {"offsets": {"1": 4}}, {"timestamp": 1000}])
    def test_start_round_trips(self, value: object) -> None:
        assert StartSpec.parse(StartSpec.parse(value).to_value()) == StartSpec.parse(value)

    @pytest.mark.parametrize(
        "value", ["high_watermark", {"offsets": {"1": 4}}, {"timestamp": 9}, {"max_records": 3}]
    )
    def test_end_round_trips(self, value: object) -> None:
        assert EndSpec.parse(EndSpec.parse(value).to_value()) == EndSpec.parse(value)


HWM = EndSpec(kind="high_watermark")
COMMITTED = StartSpec(kind="committed")


class TestPlanPartition:
    def test_committed_to_high_watermark(self) -> None:
        rng, lost = plan_partition(topic=T, state=state(committed=40), start=COMMITTED, end=HWM)
        assert (rng.start, rng.end, lost) == (40, 100, None)

    def test_no_commit_uses_initial(self) -> None:
        assert plan_partition(topic=T, state=state(low=7), start=COMMITTED, end=HWM)[0].start == 7
        latest = StartSpec(kind="committed", initial="latest")
        assert plan_partition(topic=T, state=state(low=7), start=latest, end=HWM)[0].start == 100
        with pytest.raises(ConfigurationError, match="no committed offset"):
            plan_partition(topic=T, state=state(), start=StartSpec(kind="committed", initial="fail"), end=HWM)

    def test_empty_partition(self) -> None:
        rng, _ = plan_partition(topic=T, state=state(low=0, high=0), start=COMMITTED, end=HWM)
        assert rng.empty and rng.start == 0

    def test_data_loss_fails_by_default_naming_everything(self) -> None:
        with pytest.raises(DataLossError) as info:
            plan_partition(topic=T, state=state(low=50, committed=20), start=COMMITTED, end=HWM)
        message = str(info.value)
        assert "weblogs[0]" in message and "[20, 50)" in message and "30 records" in message
        assert "on_data_loss='log_start'" in message

    def test_data_loss_policy_log_start_records_the_loss(self) -> None:
        rng, lost = plan_partition(
            topic=T, state=state(low=50, committed=20), start=COMMITTED, end=HWM, on_data_loss="log_start"
        )
        assert (rng.start, rng.end) == (50, 100)
        assert lost == OffsetRange(topic=T, partition=0, start=20, end=50)

    def test_unknown_policy(self) -> None:
        with pytest.raises(ConfigurationError, match=r"on_data_loss must be one of \{'fail', 'log_start'\}"):
            plan_partition(topic=T, state=state(), start=COMMITTED, end=HWM, on_data_loss="ignore")

    def test_committed_beyond_end_of_log(self) -> None:
        with pytest.raises(ConfigurationError, match="re-created or truncated"):
            plan_partition(topic=T, state=state(committed=101), start=COMMITTED, end=HWM)

    def test_max_records(self) -> None:
        end = EndSpec(kind="max_records", max_records=25)
        assert plan_partition(topic=T, state=state(committed=90), start=COMMITTED, end=end)[0].end == 100
        assert plan_partition(topic=T, state=state(committed=10), start=COMMITTED, end=end)[0].end == 35

    def test_explicit_end_beyond_high_watermark(self) -> None:
        end = EndSpec(kind="offsets", offsets={0: 101})
        with pytest.raises(ConfigurationError, match="beyond its high watermark 100"):
            plan_partition(topic=T, state=state(), start=StartSpec(kind="earliest"), end=end)

    def test_explicit_end_before_start(self) -> None:
        end = EndSpec(kind="offsets", offsets={0: 10})
        with pytest.raises(ConfigurationError, match="before start offset 20"):
            plan_partition(topic=T, state=state(committed=20), start=COMMITTED, end=end)

    def test_timestamps(self) -> None:
        s = state(start_at_timestamp=30, end_at_timestamp=60)
        start = StartSpec(kind="timestamp", timestamp_ms=1)
        end = EndSpec(kind="timestamp", timestamp_ms=2)
        assert plan_partition(topic=T, state=s, start=start, end=end)[0].to_dict()["start"] == 30
        assert plan_partition(topic=T, state=s, start=start, end=end)[0].end == 60
        # No record at or after the times yet: both resolve to the end of the log.
        empty = plan_partition(topic=T, state=state(), start=start, end=end)[0]
        assert (empty.start, empty.end) == (100, 100)
        # An end time whose offset lies before the start offset gives an empty range, not an error.
        inverted = plan_partition(
            topic=T, state=state(start_at_timestamp=60, end_at_timestamp=30), start=start, end=end
        )[0]
        assert inverted.empty

    @given(
        low=st.integers(0, 1000),
        extra=st.integers(0, 1000),
        committed=st.one_of(st.none(), st.integers(0, 3000)),
        policy=st.sampled_from(["fail", "log_start"]),
    )
    def test_property_range_lies_within_the_log(
        self, low: int, extra: int, committed: int | None, policy: str
    ) -> None:
        s = state(low=low, high=low + extra, committed=committed)
        try:
            rng, lost = plan_partition(topic=T, state=s, start=COMMITTED, end=HWM, on_data_loss=policy)
        except DataLossError:
            assert policy == "fail" and committed is not None and committed < low
            return
        except ConfigurationError:
            assert committed is not None and committed > low + extra
            return
        assert s.log_start <= rng.start <= rng.end == s.high_watermark
        if lost is not None:
            assert lost.end == rng.start == low and committed is not None and lost.start == committed


class TestPlanRanges:
    def test_all_partitions_sorted(self) -> None:
        plan = plan_ranges(
            topic=T,
            states=[state(2, committed=5), state(0), state(1, high=0)],
            start=COMMITTED,
            end=HWM,
            group_id="g",
        )
        assert [r.partition for r in plan.ranges] == [0, 1, 2]
        assert plan.records_upper_bound == 100 + 0 + 95

    def test_explicit_offsets_plan_only_those_partitions(self) -> None:
        plan = plan_ranges(
            topic=T, states=[state(0), state(1)], start=StartSpec(kind="offsets", offsets={1: 3}), end=HWM
        )
        assert [(r.partition, r.start) for r in plan.ranges] == [(1, 3)]

    def test_unknown_partition(self) -> None:
        with pytest.raises(ConfigurationError, match=r"partitions \[7\] that 'weblogs' does not have"):
            plan_ranges(topic=T, states=[state(0)], start=StartSpec(kind="offsets", offsets={7: 0}), end=HWM)

    def test_end_offsets_must_cover_partitions(self) -> None:
        with pytest.raises(ConfigurationError, match=r"end offsets lack partitions \[1\]"):
            plan_ranges(
                topic=T,
                states=[state(0), state(1)],
                start=StartSpec(kind="earliest"),
                end=EndSpec(kind="offsets", offsets={0: 4}),
            )

    def test_plan_round_trips_and_records_loss(self) -> None:
        plan = plan_ranges(
            topic=T,
            states=[state(0, low=10, committed=4), state(1)],
            start=COMMITTED,
            end=HWM,
            on_data_loss="log_start",
            group_id="g",
            planned_at_ms=5,
        )
        assert plan.lost_count == 6
        assert Plan.from_dict(plan.to_dict()) == plan

    def test_plan_rejects_duplicate_partitions(self) -> None:
        r = OffsetRange(topic=T, partition=0, start=0, end=1)
        with pytest.raises(ConfigurationError, match="two ranges for partition 0"):
            Plan(topic=T, ranges=(r, r))
