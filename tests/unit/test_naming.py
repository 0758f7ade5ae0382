from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.errors import ConfigurationError

topics = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True).filter(lambda t: t not in (".", ".."))


def test_object_key_layout() -> None:
    assert naming.object_key("archive/raw", "weblogs", 3, 1200, ".log.gz") == (
        "archive/raw/weblogs/partition=3/weblogs+3+00000000000000001200.log.gz"
    )
    assert (
        naming.object_key("", "weblogs", 0, 0, ".log")
        == "weblogs/partition=0/weblogs+0+00000000000000000000.log"
    )


@given(
    topics,
    st.integers(0, 10_000),
    st.integers(0, 2**63 - 1),
    st.sampled_from([".log.gz", ".log.zst", ".log"]),
)
def test_names_parse_back(topic: str, partition: int, start: int, suffix: str) -> None:
    parsed = naming.parse_file_name(naming.object_key("p", topic, partition, start, suffix))
    assert parsed == naming.ParsedName(topic, partition, start, suffix)


@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_lexicographic_order_is_offset_order(a: int, b: int) -> None:
    ka, kb = naming.file_name("t", 0, a, ".log.gz"), naming.file_name("t", 0, b, ".log.gz")
    assert (ka < kb) == (a < b)


def test_foreign_names_do_not_parse() -> None:
    assert naming.parse_file_name("weblogs/partition=0/_SUCCESS") is None
    assert naming.parse_file_name("weblogs+0+12.log.gz") is None


@pytest.mark.parametrize("bad", ["../x", "a/../b", "a/*/b", "a//b", "a/./b", "a b", "a?", "~/x"])
def test_prefix_cannot_escape(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="unsafe segment"):
        naming.clean_prefix(bad)


def test_prefix_is_normalised() -> None:
    assert naming.clean_prefix("/archive/raw/") == "archive/raw"
    assert naming.clean_prefix("") == ""
