"""Lines/s of the access-log parser: parse, + GeoIP, + serialisation, against kcat's read rate.

    .venv/bin/python bench/parse_geoip.py [--lines 200000] [--repeat 3] [--days 4] [--clients N] [--db PATH] [--no-kcat]

The lines come from devstack.loggen: combined format, IPv4 and IPv6 clients from a few /16 blocks (nearly every
client address is new, so GeoIP answers mostly come from the per-block cache) and event times spread over
``--days`` days (with the default 4, nearly every timestamp is new as well: the caches help least).
``--clients N`` gives the lines only N distinct client addresses (round robin), as a busy site's log has:
``--days 0.05 --clients 5000`` is 200k lines in 72 minutes from 5,000 clients. The lines are parsed in
batches of 5,000 with provenance (topic, partition, offset), by a fresh parser and GeoIP reader in every run,
best of ``--repeat`` runs:

- parse              -> dicts                      AccessLogParser.parse_many
- parse + GeoIP      -> dicts
- parse + GeoIP      -> dicts -> orjson.dumps      what a bulk request needs, the obvious way
- parse + GeoIP      -> JSON                       AccessLogParser.parse_many_json (the kernel's documents)
- parse + GeoIP      -> bulk body                  AccessLogParser.bulk: action + document lines (the sink's way)

The GeoIP database is dev/.cache/geoip/dbip-city-lite-2023-04.mmdb (bash dev/geoip/fetch.sh) unless ``--db``
or $LOGTAP_GEOIP_DB name another. The reference is kcat, measured in the same run: Kafka is started, a topic
filled with the same kind of lines, and kcat and the stages run back to back in rounds (as bench/s3_archive.py
does), because this machine's speed drifts; the figure is the median ratio to kcat over the rounds (target:
>= 0.25x for parse + GeoIP + JSON). ``--no-kcat`` times the stages alone, in lines/s and µs per line, with no
ratio (no kcat, no Kafka), beside a bare ``split`` loop over the same lines that shows the interpreter's speed
right now.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))
sys.path.insert(0, str(ROOT))

from devstack.loggen import generate  # noqa: E402

from airflow_provider_logtap.core.accesslog import AccessLogParser  # noqa: E402
from airflow_provider_logtap.enrich.geoip import GeoIP  # noqa: E402

BATCH = 5_000
DEFAULT_DB = ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"


def stages(values: list[bytes | None], db: list[Path] | None) -> dict[str, Callable[[], int]]:
    import orjson

    def run(geo: bool, out: str) -> int:
        reader = GeoIP(db) if geo and db else None
        parser = AccessLogParser(geoip=None if reader is None else reader.lookup)
        done = 0
        for i in range(0, len(values), BATCH):
            chunk = values[i : i + BATCH]
            offsets = range(i, i + len(chunk))
            if out == "bulk":
                body, rest, _ = parser.bulk(
                    chunk,
                    topic="weblogs",
                    partition=0,
                    offsets=offsets,
                    index_of=lambda day: b"weblogs-" + day,
                )
                if rest:
                    left = [chunk[k] for k in rest]
                    jdocs, rejected = parser.parse_many_json(left, topic="weblogs", partition=0)
                done += len(chunk)
                assert body
                continue
            if out == "json":
                jdocs, rejected = parser.parse_many_json(chunk, topic="weblogs", partition=0, offsets=offsets)
                done += len(jdocs) + len(rejected)
                continue
            docs, rejected = parser.parse_many(chunk, topic="weblogs", partition=0, offsets=offsets)
            if out == "orjson":
                serialised = [orjson.dumps(d) for d in docs]
                assert len(serialised) == len(docs)
            done += len(docs) + len(rejected)
        if reader is not None:
            reader.close()
        return done

    modes: dict[str, Callable[[], int]] = {"parse -> dicts": lambda: run(False, "dicts")}
    if db:
        modes["parse + GeoIP -> dicts"] = lambda: run(True, "dicts")
        modes["parse + GeoIP -> dicts -> orjson"] = lambda: run(True, "orjson")
        modes["parse + GeoIP -> JSON (parse_many_json)"] = lambda: run(True, "json")
        modes["parse + GeoIP -> bulk body (the sink's way)"] = lambda: run(True, "bulk")
    else:
        modes["parse -> JSON (parse_many_json)"] = lambda: run(False, "json")
    return modes


def bare_split(values: list[bytes | None]) -> int:
    n = 0
    for v in values:
        if v is not None:
            v.split(b'"')
            n += 1
    return n


def best_seconds(fn: Callable[[], int], lines: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        done = fn()
        best = min(best, time.perf_counter() - began)
        assert done == lines, (done, lines)
    return best


def row(name: str, seconds: float, lines: int) -> None:
    rate = lines / seconds
    print(f"{name:<44}{rate:>12,.0f} {seconds / lines * 1e6:>9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=float, default=4.0, help="spread of the event times (loggen's days)")
    parser.add_argument("--clients", type=int, default=0, help="only this many distinct client addresses")
    parser.add_argument("--db", action="append", type=Path, help="GeoIP .mmdb file(s); default: see above")
    parser.add_argument(
        "--no-kcat",
        dest="kcat",
        action="store_false",
        help="time the stages alone: no Kafka, no ratio to kcat",
    )
    args = parser.parse_args()

    db: list[Path] | None = args.db
    if db is None:
        env = os.environ.get("LOGTAP_GEOIP_DB")
        db = [Path(p) for p in env.split(os.pathsep)] if env else [DEFAULT_DB]
    if not all(p.is_file() for p in db):
        print(
            f"no GeoIP database at {', '.join(map(str, db))}: run `bash dev/geoip/fetch.sh`; timing parse only"
        )
        db = None

    values: list[bytes | None] = [g.line for g in generate(args.lines, days=args.days)]
    if args.clients:
        pool = list(dict.fromkeys(v.split(b" ", 1)[0] for v in values if v is not None))[: args.clients]
        values = [pool[i % len(pool)] + v[v.index(b" ") :] for i, v in enumerate(values) if v is not None]
    nbytes = sum(len(v) for v in values if v is not None)
    distinct_ips = len({v.split(b" ", 1)[0] for v in values if v is not None})
    distinct_times = len({v[v.index(b"[") : v.index(b"]")] for v in values if v is not None})
    print(
        f"{args.lines:,} generated lines ({nbytes / args.lines:.0f} bytes each), {distinct_ips:,} distinct clients, "
        f"{distinct_times:,} distinct timestamps; batches of {BATCH:,}; Python {platform.python_version()}; "
        f"GeoIP: {', '.join(p.name for p in db) if db else 'none'}"
    )
    modes = stages(values, db)

    if args.kcat:
        from common import fill_topic, kcat_seconds, rounds, services

        with services() as (bootstrap, _):
            topic = f"bench-parse-{os.getpid()}"
            kbytes = fill_topic(bootstrap, topic, args.lines, days=args.days)
            rounds(
                modes,
                lambda: kcat_seconds(bootstrap, topic, args.lines, repeat=1),
                args.repeat,
                args.lines,
                kbytes,
            )
        return 0

    print(f"{'stage':<44}{'lines/s':>12} {'µs/line':>9}  (no ratio: kcat was not run; drop --no-kcat for it)")
    split = best_seconds(lambda: bare_split(values), args.lines, args.repeat)
    row("(bare loop: line.split per line)", split, args.lines)
    for name, fn in modes.items():
        row(name, best_seconds(fn, args.lines, args.repeat), args.lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
