"""The search sink end to end into a real OpenSearch node: documents/s, bulk requests, and what bounds it.

    .venv/bin/python bench/search_sink.py [--lines 200000] [--rounds 3] [--clients 5000] [--days 0.05]

A topic is filled with generated combined-format lines (``--clients N``: only N distinct client addresses, a busy
site's mix; 0: the generator's spread, nearly every address new). Each round runs, back to back on the same
range:

- ``kcat``: the same offsets to /dev/null (the reference of every ratio);
- ``body``: logtap's range reader + ``AccessLogParser.bulk`` (parse + GeoIP -> bulk body), nothing sent;
- ``search``: ``SearchSink.write`` through the OpenSearch provider's client (the path a load task takes),
  into a fresh index prefix each round: parse, spool, then bulk requests of ``bulk_docs`` documents.

A first round warms the node's JIT up and is not counted. It prints documents/s, the ratio to kcat in the same
round (median of rounds), the number and mean size of the bulk requests, and how the search write splits between
building the body and the bulk requests (the server's time). OpenSearch is started here
(dev/devstack/opensearch.py; ``--heap``, default 1g, and the full JIT unless ``--c1-only``, the tests' setting)
unless $LOGTAP_OPENSEARCH_URL names one; Kafka unless $LOGTAP_KAFKA_BOOTSTRAP does. The GeoIP database is
dev/.cache/geoip/dbip-city-lite-2023-04.mmdb.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from common import ROOT, kcat_seconds, mb, range_batches, services
from devstack import loggen

DB = ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"


@contextmanager
def opensearch(heap: str, c1_only: bool) -> Iterator[str]:
    if url := os.environ.get("LOGTAP_OPENSEARCH_URL"):
        yield url
        return
    from devstack import opensearch as node

    service = node.start(ROOT / ".dev" / "bench" / "opensearch", heap=heap, c1_only=c1_only)
    try:
        yield service.info["url"]
    finally:
        service.stop()


def lines_of(count: int, clients: int, days: float) -> list[loggen.LogLine]:
    made = list(loggen.generate(count, days=days))
    if not clients:
        return made
    pool = list(dict.fromkeys(g.line.split(b" ", 1)[0] for g in made))[:clients]
    return [
        loggen.LogLine(line=pool[i % len(pool)] + g.line[g.line.index(b" ") :], event_utc=g.event_utc)
        for i, g in enumerate(made)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=5000, help="distinct client addresses (0: all new)")
    parser.add_argument("--days", type=float, default=0.05, help="days of event times the lines span")
    parser.add_argument("--bulk-docs", type=int, default=5000)
    parser.add_argument(
        "--bulk-concurrency",
        default=None,
        help="the sink's, or several to compare in each round (1,2,4); default: the sink's default",
    )
    parser.add_argument("--heap", default="1g", help="the OpenSearch node's heap (tests use 512m)")
    parser.add_argument(
        "--c1-only",
        action="store_true",
        help="the node's JIT as in tests (C1 only: starts faster, indexes slower)",
    )
    args = parser.parse_args()
    logging.getLogger("opensearch").setLevel(logging.WARNING)  # the client logs every request at INFO

    from airflow_provider_logtap.core.accesslog import AccessLogParser
    from airflow_provider_logtap.core.ranges import OffsetRange
    from airflow_provider_logtap.enrich.geoip import GeoIP
    from airflow_provider_logtap.sinks.search import BULK_CONCURRENCY, SearchSink
    from airflow_provider_logtap.targets import search_client

    if not DB.is_file():
        raise SystemExit(f"{DB} is missing: run bash dev/geoip/fetch.sh")
    with services() as (bootstrap, _), opensearch(args.heap, args.c1_only) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        os.environ["AIRFLOW_CONN_BENCH_SEARCH"] = json.dumps(
            {"conn_type": "opensearch", "host": host, "port": int(port)}
        )
        topic = f"bench-search-{uuid.uuid4().hex[:8]}"
        made = lines_of(args.lines, args.clients, args.days)
        produced = sum(len(g.line) for g in made)
        loggen.create_topic(bootstrap, topic, 1)
        loggen.produce(bootstrap, topic, made, partition=0)
        distinct = len({g.line.split(b" ", 1)[0] for g in made})
        del made
        print(
            f"{args.lines:,} lines ({mb(produced)}), {distinct:,} distinct clients, {args.days} days of event "
            f"times; OpenSearch at {url}; bulk_docs={args.bulk_docs}, "
            f"bulk_concurrency={args.bulk_concurrency or BULK_CONCURRENCY}"
        )
        concurrencies = [int(c) for c in (args.bulk_concurrency or str(BULK_CONCURRENCY)).split(",")]
        rng = OffsetRange(topic=topic, partition=0, start=0, end=args.lines)
        client = search_client("bench_search")

        class Counting:
            """The real client, with its bulk requests counted and timed."""

            def __init__(self) -> None:
                self.requests = self.bytes = 0
                self.first = self.last = 0.0

            def __getattr__(self, name: str) -> object:
                return getattr(client, name)

            def bulk(self, body: bytes) -> object:
                self.first = self.first or time.perf_counter()
                try:
                    return client.bulk(body)
                finally:
                    self.last = time.perf_counter()
                    self.requests += 1
                    self.bytes += len(body)

        def batches():  # type: ignore[no-untyped-def]
            return range_batches(bootstrap, rng)

        def new_parser(geo: GeoIP) -> AccessLogParser:
            return AccessLogParser(geoip=geo.lookup)

        ratios: dict[str, list[float]] = {"body": [], **{f"search c={c}": [] for c in concurrencies}}
        best: dict[str, float] = {}
        for r in range(-1, args.rounds):  # the first round warms the node's JIT up and is not counted
            k = kcat_seconds(bootstrap, topic, args.lines, repeat=1)
            with GeoIP([DB]) as geo:
                p = new_parser(geo)
                index_of = SearchSink(client=client, index_prefix="bench", parser=p)._index_of_day
                began = time.perf_counter()
                done = left = 0
                for batch in batches():
                    _body, rest, _ = p.bulk(
                        batch.values, topic=topic, partition=0, offsets=batch.offsets, index_of=index_of
                    )
                    done += len(batch.values)
                    left += len(rest)
                seconds = time.perf_counter() - began
            assert done == args.lines and not left, (done, left)  # every generated line is the kernel's
            if r >= 0:
                ratios["body"].append(k / seconds)
                best["body"] = min(best.get("body", float("inf")), seconds)

            for c in concurrencies:
                counting = Counting()
                with GeoIP([DB]) as geo:
                    sink = SearchSink(
                        client=counting,  # type: ignore[arg-type]
                        index_prefix=f"bench-{r + 1}-{c}-{uuid.uuid4().hex[:6]}",
                        parser=new_parser(geo),
                        bulk_docs=args.bulk_docs,
                        bulk_concurrency=c,
                    )
                    began = time.perf_counter()
                    result = sink.write(rng, batches())
                    seconds = time.perf_counter() - began
                assert result.written == args.lines, result
                if r < 0:
                    print(f"warm-up, c={c}: {args.lines / seconds:,.0f} docs/s (not counted)")
                    continue
                name = f"search c={c}"
                ratios[name].append(k / seconds)
                best[name] = min(best.get(name, float("inf")), seconds)
                sending = counting.last - counting.first
                print(
                    f"round {r + 1}, c={c}: kcat {args.lines / k:,.0f} lines/s; search {args.lines / seconds:,.0f} "
                    f"docs/s ({k / seconds:.3f}x); {counting.requests} bulk requests of "
                    f"{mb(counting.bytes / counting.requests)} mean; from the first bulk request to the last "
                    f"answer {sending:.1f} s of {seconds:.1f} s ({sending / seconds:.0%})"
                )
        for name, values in ratios.items():
            print(
                f"logtap {name:<13}{args.lines / best[name]:>10,.0f} docs/s (best round); x kcat in the same round: "
                f"median {statistics.median(values):.3f} (rounds {' '.join(f'{v:.3f}' for v in values)})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
