from __future__ import annotations

import pytest

from airflow_provider_logtap.core import claims
from airflow_provider_logtap.core.claims import Claim
from airflow_provider_logtap.core.ranges import OffsetRange

R = OffsetRange(topic="t", partition=0, start=10, end=20)
ME, OTHER = "dag/run-1", "dag/run-2"


def test_encode_decode() -> None:
    c = claims.planned(ME, R)
    assert Claim.decode(c.encode()) == c
    assert len(c.encode()) < 4096  # Kafka's default offset.metadata.max.bytes


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        "",
        "hello",
        "{}",
        '{"logtap": 2}',
        '{"logtap":1,"run":"x"}',
        '{"logtap":1,"run":"x","start":1,"end":2,"state":"odd"}',
    ],
)
def test_foreign_metadata_is_no_claim(metadata: str | None) -> None:
    assert Claim.decode(metadata) is None


def test_write_while_holding_the_claim() -> None:
    assert claims.before_write(run=ME, rng=R, claim=claims.planned(ME, R), offset=10).action == "write"
    # A re-run of a committed run's load rewrites the same range: idempotent.
    assert claims.before_write(run=ME, rng=R, claim=claims.committed(ME, R), offset=20).action == "write"


def test_superseded_run_does_not_write() -> None:
    newer = Claim(run=OTHER, start=10, end=25, state="planned")
    d = claims.before_write(run=ME, rng=R, claim=newer, offset=10)
    assert d.action == "superseded" and OTHER in d.reason
    # Same run, but its plan was re-made with another end: the old range is superseded too.
    replanned = Claim(run=ME, start=10, end=25, state="planned")
    assert claims.before_write(run=ME, rng=R, claim=replanned, offset=10).action == "superseded"


def test_without_claims_writes() -> None:
    assert claims.before_write(run=ME, rng=R, claim=None, offset=None).action == "write"


@pytest.mark.parametrize(
    ("claim", "offset", "action"),
    [
        (claims.planned(ME, R), 10, "commit"),
        (claims.committed(ME, R), 20, "done"),
        (Claim(run=OTHER, start=10, end=30, state="planned"), 10, "superseded"),
        (Claim(run=OTHER, start=20, end=30, state="committed"), 30, "superseded"),
        (claims.planned(ME, R), 15, "conflict"),
        (claims.committed(ME, R), 5, "conflict"),
        (None, None, "commit"),
        (None, 10, "commit"),
        (None, 20, "done"),
        (None, 3, "conflict"),
    ],
)
def test_commit_decisions(claim: Claim | None, offset: int | None, action: str) -> None:
    assert claims.before_commit(run=ME, rng=R, claim=claim, offset=offset).action == action
