"""Index names and template priorities of search taps: overlapping templates never tie, and nothing but live
documents sits in a tap's live pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.errors import ConfigurationError
from airflow_provider_logtap.sinks.search import (
    SearchSink,
    dead_letter_template,
    index_names,
    index_template,
    replay_prefix,
    template_priority,
)

prefixes = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,12}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,8}", fullmatch=True)


def _patterns(prefix: str) -> list[str]:
    return [index_template(prefix)["index_patterns"][0], dead_letter_template(prefix)["index_patterns"][0]]


def _overlap(a: str, b: str) -> bool:
    """Whether some index name matches both patterns (each a literal, optionally ending in one '*')."""
    la, lb = a.rstrip("*"), b.rstrip("*")
    if a.endswith("*") and b.endswith("*"):
        return la.startswith(lb) or lb.startswith(la)
    if a.endswith("*"):
        return lb.startswith(la)
    if b.endswith("*"):
        return la.startswith(lb)
    return a == b


@given(st.lists(prefixes, min_size=1, max_size=4), st.lists(names, max_size=3))
def test_overlapping_templates_of_any_taps_and_replays_never_share_a_priority(
    taps: list[str], replays: list[str]
) -> None:
    all_prefixes = set(taps) | {replay_prefix(t, r) for t in taps for r in replays}
    templates = {p for prefix in all_prefixes for p in _patterns(prefix)}
    for a in templates:
        for b in templates:
            if a != b and _overlap(a, b):
                assert template_priority(a) != template_priority(b), (a, b)


@given(prefixes, names)
def test_dead_letters_and_replays_are_outside_the_live_pattern(prefix: str, name: str) -> None:
    n = index_names(prefix)
    replay = index_names(replay_prefix(prefix, name))
    outside = [n["dead_letter"], f"{replay['alias']}-2026.11.28", replay["dead_letter"], replay["alias"]]
    assert not [i for i in outside if fnmatchcase(i, n["live"])]
    assert fnmatchcase(f"{prefix}-2026.11.28", n["live"])
    assert index_template(prefix)["template"]["aliases"] == {prefix: {}}
    assert template_priority(n["live"]) > 200  # above Elasticsearch's built-in logs-*-* (100)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_bulk_concurrency_is_a_positive_integer(bad: object) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"bulk_concurrency must be a positive integer. Got {bad!r}"
    ):
        SearchSink(client=None, index_prefix="logs", parser=AccessLogParser(), bulk_concurrency=bad)  # type: ignore[arg-type]
