"""The dev broker starts whatever cluster id it draws (issue: one id in 64 started with '-')."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from devstack import kafka


def test_cluster_ids_are_kafka_uuids_never_starting_with_a_dash() -> None:
    ids = [kafka._cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_cluster_id_starting_with_a_dash_still_formats_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix such an id reached kafka-storage as `-t -...` and the start failed without a retry.
    monkeypatch.setattr(kafka, "_cluster_id", lambda: "-" + "A" * 21)
    service = kafka.start(tmp_path / "kafka", attempts=1)
    try:
        assert service.alive()
        assert kafka._serves_metadata(service.info["bootstrap"])
    finally:
        service.stop()
