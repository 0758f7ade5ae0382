"""Exactly once under faults (issue 13), the CI profile: a fixed-seed sequence of the DAGs' tasks over the real
services, with faults injected into the sinks' clients, the commit and the load's process (kill -9); after every
step every target holds each offset once (see ``tests/fault_model.py``; the long profile is
``bench/exactly_once.py``)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from fault_model import (
    InjectedFault,
    Sequence,
    Services,
    Stats,
    Trigger,
    connection_env,
    quiet_clients,
    variables_in_memory,
)

SEED = 20261202
STEPS = 6


@pytest.fixture
def services(
    kafka_bootstrap: str,
    s3_endpoint: str,
    webhdfs: dict[str, str],
    opensearch_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Services:
    found = Services(kafka_bootstrap, s3_endpoint, webhdfs["url"], webhdfs["user"], opensearch_url)
    for key, value in connection_env(found).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AIRFLOW_TEST_MODE", raising=False)
    monkeypatch.delenv("LOGTAP_GEOIP_DB", raising=False)
    return found


def test_a_fixed_seed_sequence_of_runs_clears_retries_replays_and_faults_keeps_every_offset_once(
    services: Services, capsys: Any
) -> None:
    stats = Stats()
    began = time.monotonic()
    with variables_in_memory(), quiet_clients():
        Sequence(services, SEED, stats, log=lambda line: None).run(STEPS, full_every=4, cover=True)
    with capsys.disabled():
        print(f"\nexactly once under faults, seed {SEED}: {stats.line()} in {time.monotonic() - began:.0f}s")
    assert stats.duplicates == 0 and stats.losses == 0
    assert sum(stats.faults.values()) >= 10 and stats.faults["kill9"] >= 1, stats.faults
    kinds = {k.split(":")[0] for k in stats.faults}
    assert {"s3_archive", "hdfs_raw", "search", "commit", "kill9"} <= kinds, stats.faults
    assert stats.steps["covered"] == 1 and sum(stats.steps.values()) == STEPS + 1, stats.steps
    assert stats.offsets_checked > 0 and stats.checks >= STEPS
    assert stats.chunks >= 10, "the plans were hardly cut into chunks"
    assert os.environ.get("AIRFLOW_TEST_MODE") is None


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_cleared_load_of_a_committed_run_that_stops_at_its_replace_loses_nothing(
    services: Services, when: str
) -> None:
    """HDFS raw: run 1 loads and commits [0, n); its load is cleared and stops right before (or right after) its
    first rename into place (a kill -9 there does the same); run 2 claims and commits the next range; run 1's
    load retried is superseded. The committed range [0, n) must still be there, once: the replace is one atomic
    rename with overwrite (it was delete + rename, and a stop between the two lost the file for good)."""
    stats = Stats()
    with variables_in_memory(), quiet_clients():
        seq = Sequence(services, SEED, stats, log=lambda line: None)
        seq.setup()
        seq.produce(20)
        first = seq.scheduled_run("raw")
        seq.check({"raw"})
        load, tap = first.loads[0], seq.taps["raw"]
        op = seq.load_operator(tap, load.spec, Trigger(1, when, method="_rename"))
        with pytest.raises(InjectedFault):
            op.execute(seq.context(tap.dag_id, first.run_id, {}))
        seq.produce(5)
        seq.scheduled_run("raw")  # run 2: [n, n + k) claimed, loaded and committed
        seq.attempt_load(first, load, None)  # the cleared load's retry
        assert load.state == "skipped"  # superseded: it writes nothing
        if when == "before":
            # Stopped before its rename, the load left its complete temporary: hidden from readers (a '.'
            # name), replaced by the next write of that file. Seen, then removed so the invariant applies.
            temps = [
                f"{d}/{n}"
                for (d, _), _dirs, files in seq.hdfs.walk(tap.target.base_path, status=True)
                for n, _s in files
                if n.startswith(".") and n.endswith(".inprogress")
            ]
            assert len(temps) == 1, temps
            seq.hdfs.delete(temps[0])
        seq.check({"raw"})
