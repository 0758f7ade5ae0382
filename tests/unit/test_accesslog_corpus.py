"""The parser against documented real-world edge cases (tests/unit/data/accesslog_corpus.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_logtap.core.accesslog import AccessLogParser

_spec = importlib.util.spec_from_file_location(
    "accesslog_corpus", Path(__file__).parent / "data" / "accesslog_corpus.py"
)
assert _spec is not None and _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
CASES = corpus.CASES


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def as_text(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", "backslashreplace")


def test_every_case_names_its_source() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    for case in CASES:
        assert case.source.startswith(("http", "(none")), case.name


@pytest.mark.parametrize("case", CASES, ids=[c.name[:60] for c in CASES])
def test_corpus_line(case: Any) -> None:
    parser = AccessLogParser()
    doc = parser.parse(case.line)
    if isinstance(case.expect, str):
        assert isinstance(doc, str), f"parsed, expected a reason starting {case.expect!r}"
        assert doc.startswith(case.expect)
        return
    assert isinstance(doc, dict), doc
    fields = flat(doc)
    assert fields.pop("message") == as_text(case.line)
    assert fields == case.expect


@pytest.mark.parametrize("case", CASES, ids=[c.name[:60] for c in CASES])
def test_corpus_line_as_json_is_the_same_document(case: Any) -> None:
    parser = AccessLogParser()
    docs, rejected = parser.parse_many_json([case.line], topic="weblogs", partition=2, offsets=[41])
    if isinstance(case.expect, str):
        assert docs == []
        assert rejected == [(0, parser.parse(case.line))]
        return
    assert rejected == []
    expected, _ = parser.parse_many([case.line], topic="weblogs", partition=2, offsets=[41])
    assert json.loads(docs[0]) == expected[0]
    assert expected[0]["kafka"] == {"topic": "weblogs", "partition": 2, "offset": 41}


def test_whole_corpus_in_one_batch_in_every_order() -> None:
    # The caches carry values from line to line: a batch must give what single lines give.
    lines = [c.line for c in CASES]
    one_by_one = [AccessLogParser().parse(line) for line in lines]
    for order in (lines, lines[::-1]):
        parser = AccessLogParser()
        docs, rejected = parser.parse_many(order)
        jdocs, jrejected = parser.parse_many_json(order)
        assert len(docs) + len(rejected) == len(order)
        assert rejected == jrejected
        assert [json.loads(d) for d in jdocs] == docs
        expected = one_by_one if order is lines else one_by_one[::-1]
        assert [d for d in expected if isinstance(d, dict)] == docs
        assert [(i, r) for i, r in enumerate(expected) if isinstance(r, str)] == rejected
