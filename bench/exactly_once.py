"""Exactly once under faults, the long profile: random sequences of the DAGs' tasks with injected faults, for
``--minutes``, over real Kafka, S3 (moto), HDFS (MiniDFSCluster) and OpenSearch.

    nice .venv/bin/python bench/exactly_once.py [--minutes 8] [--steps 30] [--seed N]

Each sequence has its own random seed (printed; ``--seed`` replays one sequence alone) and its own topic,
four group-mode taps (S3 archive, HDFS raw, HDFS event time, OpenSearch) and one interval-mode tap; every
target is read back after every step (see ``tests/fault_model.py``). Prints each sequence's steps, then the
totals: sequences, steps by rule, faults injected by kind, offsets checked, duplicates and losses (both 0, or
the script stops with the seed and the steps that broke the invariant). The services are started here unless
``LOGTAP_KAFKA_BOOTSTRAP``, ``LOGTAP_S3_ENDPOINT``, ``LOGTAP_WEBHDFS_URL`` and ``LOGTAP_OPENSEARCH_URL`` name
running ones.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from common import ROOT, services, webhdfs

sys.path.insert(0, str(ROOT / "tests"))
# Airflow reads its configuration at import: a private home, as the test sessions have.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="logtap-bench-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@contextmanager
def opensearch() -> Iterator[str]:
    """The URL of $LOGTAP_OPENSEARCH_URL, else of an OpenSearch node started here."""
    if url := os.environ.get("LOGTAP_OPENSEARCH_URL"):
        yield url
        return
    from devstack import opensearch as node

    service = node.start(ROOT / ".dev" / "bench" / "opensearch")
    try:
        yield service.info["url"]
    finally:
        service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=30, help="random steps per sequence (then its drain)")
    parser.add_argument("--seed", type=int, default=None, help="run this one sequence only")
    parser.add_argument("--quiet", action="store_true", help="print only each sequence's summary")
    args = parser.parse_args()

    import logging

    import structlog
    from fault_model import Sequence, Services, Stats, environment

    import airflow_provider_logtap.operators.load  # noqa: F401 - Airflow configures its logging at import

    # The operators' task logs (structlog, to stdout) off: the driver prints what it does.
    logging.disable(logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

    stats = Stats()
    began = time.monotonic()
    with services() as (bootstrap, endpoint), webhdfs() as (url, user), opensearch() as search_url:
        found = Services(bootstrap, endpoint, url, user, search_url)
        with environment(found):
            seeds = [args.seed] if args.seed is not None else None
            while seeds is None or seeds:
                seed = seeds.pop() if seeds else random.randrange(2**32)
                if seeds is None and time.monotonic() - began > args.minutes * 60:
                    break
                print(f"sequence {stats.sequences + 1}, seed {seed}:", flush=True)
                log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
                t = time.monotonic()
                Sequence(found, seed, stats, log=log).run(args.steps)
                print(
                    f"  seed {seed}: done in {time.monotonic() - t:.0f}s; so far: {stats.line()}", flush=True
                )
    minutes = (time.monotonic() - began) / 60
    print(f"\nexactly once under faults, {minutes:.1f} min: {stats.line()}")
    return 0 if stats.duplicates == stats.losses == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
