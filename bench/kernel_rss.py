"""Peak RSS of the kernel's paths by range size: parse + GeoIP -> bulk body, and the event-time split.

    .venv/bin/python bench/kernel_rss.py [--sizes 50000,500000,2000000] [--clients 0]

Each size runs in a fresh interpreter: generated lines (devstack.loggen: 4 days of event times, nearly every
client address and second new, the worst case for the caches; ``--clients N`` for a busy site's mix) go through
``AccessLogParser.bulk`` with GeoIP and ``EventTimePartitioner.split`` in batches of 5,000, as a load does, and
each batch's output is dropped once made (the sinks spool it to disk). The figure is the process's peak RSS
(``ru_maxrss``) and that of the interpreter before the first batch; the target is flat: the caches are bounded
(``CACHE_LIMIT`` values per field), so a longer range adds nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT

CODE = """
import json, resource, sys
sys.path.insert(0, {dev!r})
sys.path.insert(0, {root!r})
from devstack.loggen import generate
from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.core.eventtime import EventTimeReader
from airflow_provider_logtap.core.partitions import EventTimePartitioner, PartitionTemplate
from airflow_provider_logtap.enrich.geoip import GeoIP

size, clients, db = {size}, {clients}, {db!r}
parser = AccessLogParser(geoip=GeoIP(db).lookup)
partitioner = EventTimePartitioner(EventTimeReader(), PartitionTemplate())
index_of = lambda day: b"logtap-" + day
pool = []
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
done = bytes_out = 0
batch = []
for g in generate(size, seed=5, days=4):
    line = g.line
    if clients:
        if len(pool) < clients:
            pool.append(line.split(b" ", 1)[0])
        line = pool[done % clients] + line[line.index(b" "):]
    batch.append(line)
    done += 1
    if len(batch) == 5000 or done == size:
        body, rest, _ = parser.bulk(batch, topic="t", partition=0, offsets=range(done - len(batch), done),
                                    index_of=index_of)
        buckets, bad = partitioner.split(batch)
        bytes_out += len(body)
        batch = []
print(json.dumps({{"before": before / 1024, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "bytes": bytes_out}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50000,500000,2000000")
    parser.add_argument("--clients", type=int, default=0)
    args = parser.parse_args()
    db = ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"
    if not db.is_file():
        raise SystemExit(f"{db} is missing: run bash dev/geoip/fetch.sh")
    print(
        f"peak RSS of parse + GeoIP -> bulk body and the event-time split (clients: {args.clients or 'all new'}):"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        code = CODE.format(dev=str(ROOT / "dev"), root=str(ROOT), size=size, clients=args.clients, db=str(db))
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        found = json.loads(out.splitlines()[-1])
        print(
            f"  {size:>10,} lines: peak {found['peak']:.0f} MB (interpreter with its imports "
            f"{found['before']:.0f} MB), {found['bytes'] / 1e6:,.0f} MB of bulk body made"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
