"""A realistic Apache *combined* access-log generator that produces into Kafka and remembers what it sent.

Lines look like ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``: IPv4 and IPv6 clients, many
paths and query strings, methods, statuses, sizes including ``-``, referrers, user agents, event times spread
over several days in a few zone offsets. Each line's own event time is kept (UTC) so that tests can count
independently what an event-time partitioned target must hold.

    python -m devstack.loggen --bootstrap 127.0.0.1:9092 --topic weblogs --partitions 4 --count 10000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ZONES = (0, -8 * 60, -5 * 60, 60, 330, 540)  # minutes east of UTC: +0000 -0800 -0500 +0100 +0530 +0900
METHODS = ("GET",) * 16 + ("POST",) * 3 + ("HEAD", "PUT", "DELETE", "OPTIONS")
STATUSES = (
    (200,) * 30 + (304,) * 5 + (301, 302, 206, 400, 401, 403, 404, 404, 404, 405, 408, 429, 500, 502, 503)
)
PATHS = (
    "/",
    "/index.html",
    "/blog/",
    "/blog/2015/10/28/kafka-taps",
    "/blog/2015/05/flume-hdfs",
    "/about",
    "/contact",
    "/search",
    "/feed.xml",
    "/wp-login.php",
    "/wp-admin/admin-ajax.php",
    "/robots.txt",
    "/favicon.ico",
    "/static/css/site.css",
    "/static/js/app.min.js",
    "/images/logo.png",
    "/images/photos/kibana-dashboard.jpg",
    "/downloads/whitepaper.pdf",
    "/api/v1/events",
    "/api/v1/users/42",
    "/training/oracle-bi",
    "/training/hadoop",
    "/careers",
    "/team/mark",
    "/team/robin",
    "/sitemap.xml",
    "/blog/tag/elasticsearch",
    "/blog/tag/kafka",
    "/blog/page/2",
    "/.env",
    "/cgi-bin/test.cgi",
    "/%C3%BCber/stra%C3%9Fe",
    "/files/report%202015.xlsx",
)
QUERIES = (
    "",
    "",
    "",
    "",
    "?q=kafka",
    "?page=2",
    "?utm_source=twitter&utm_medium=social",
    "?id=1%27%20OR%201=1",
    "?s=%E2%9C%93",
    "?ref=hn",
)
REFERRERS = (
    "-",
    "-",
    "-",
    "https://www.google.com/",
    "https://www.google.co.uk/search?q=kafka+flume",
    "https://t.co/abc123",
    "https://news.ycombinator.com/item?id=10472014",
    "https://www.bing.com/search?q=obiee",
    "https://www.rittmanmead.com/blog/",
    "http://localhost:8080/",
    "https://duckduckgo.com/",
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/46.0.2490.80 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.7 (KHTML, like Gecko) Version/9.0.1 "
    "Safari/601.2.7",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:41.0) Gecko/20100101 Firefox/41.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) "
    "Version/9.0 Mobile/13B143 Safari/601.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/7.43.0",
    "Wget/1.16 (linux-gnu)",
    "python-requests/2.8.1",
    "-",
    'Mozilla/5.0 (compatible; "Quoted" Agent/1.0)',
    "Mozilla/5.0 (Linux; Android 5.1; Caf\\xc3\\xa9Phone) AppleWebKit/537.36",  # Apache escapes non-ASCII as \xhh
)
USERS = ("-",) * 20 + ("robin", "mark", "admin")
# Public address blocks of several countries (so that GeoIP finds them), private ones, and IPv6.
V4_BLOCKS = (
    (81, 2),
    (86, 150),
    (5, 62),
    (92, 184),
    (62, 24),
    (104, 16),
    (151, 101),
    (185, 199),
    (203, 0),
    (41, 203),
    (177, 67),
    (200, 147),
    (1, 1),
    (8, 8),
    (210, 140),
    (10, 0),
    (192, 168),
    (172, 16),
)
V6_PREFIXES = (
    "2001:4860:4860",
    "2a03:2880:f12f",
    "2606:4700:4700",
    "2a00:1450:4009",
    "2400:cb00:2048",
    "fd00:1234:5678",
)


@dataclass(frozen=True)
class LogLine:
    """One generated line and its own event time in UTC."""

    line: bytes
    event_utc: datetime


@dataclass(frozen=True)
class Sent:
    """A line as Kafka stored it."""

    partition: int
    offset: int
    line: bytes
    event_utc: datetime


def _client(rng: random.Random) -> str:
    if rng.random() < 0.15:
        prefix = rng.choice(V6_PREFIXES)
        return f"{prefix}:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"
    a, b = rng.choice(V4_BLOCKS)
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def format_time(moment_utc: datetime, offset_minutes: int) -> str:
    """Apache's ``%t``: ``[28/Oct/2015:14:03:07 +0000]`` in the given zone offset."""
    local = moment_utc.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    return (
        f"[{local.day:02d}/{MONTHS[local.month - 1]}/{local.year:04d}:{local.hour:02d}:{local.minute:02d}:"
        f"{local.second:02d} {sign}{hh:02d}{mm:02d}]"
    )


def generate(
    count: int,
    *,
    seed: int = 1,
    start: datetime = datetime(2015, 10, 26, tzinfo=timezone.utc),
    days: float = 4.0,
    zones: Sequence[int] = ZONES,
) -> Iterator[LogLine]:
    """``count`` combined-format lines with event times in ``[start, start + days)`` (UTC)."""
    rng = random.Random(seed)
    span = int(days * 86400)
    for _ in range(count):
        moment = start + timedelta(seconds=rng.randrange(span))
        method = rng.choice(METHODS)
        status = rng.choice(STATUSES)
        size = (
            "-"
            if status in (304, 204) or method == "HEAD" or rng.random() < 0.03
            else str(rng.randrange(0, 250_000) if rng.random() < 0.7 else rng.randrange(0, 500))
        )
        request = f"{method} {rng.choice(PATHS)}{rng.choice(QUERIES)} HTTP/{rng.choice(('1.1', '1.1', '1.0', '2.0'))}"
        agent = rng.choice(AGENTS).replace('"', '\\"')
        line = (
            f'{_client(rng)} - {rng.choice(USERS)} {format_time(moment, rng.choice(zones))} "{request}" {status} '
            f'{size} "{rng.choice(REFERRERS)}" "{agent}"'
        )
        yield LogLine(line.encode("utf-8"), moment)


def create_topic(bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=30)
    for future in futures.values():
        future.result()


def produce(
    bootstrap: str,
    topic: str,
    lines: Iterator[LogLine] | Sequence[LogLine],
    *,
    partition: int | None = None,
    linger_ms: int = 20,
) -> list[Sent]:
    """Produce ``lines`` (keyed by nothing: the sticky partitioner spreads them) and return where each went."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "enable.idempotence": True,
            "compression.type": "lz4",
            "batch.size": 1_000_000,
        }
    )
    sent: list[Sent] = []
    errors: list[str] = []

    def delivered(err: object, msg: object, item: LogLine) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            sent.append(Sent(msg.partition(), msg.offset(), item.line, item.event_utc))  # type: ignore[attr-defined]

    for item in lines:
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(
                    topic, item.line, on_delivery=lambda e, m, it=item: delivered(e, m, it), **kwargs
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"produce failed: {remaining} undelivered, errors {errors[:3]}")
    sent.sort(key=lambda s: (s.partition, s.offset))
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="weblogs")
    parser.add_argument(
        "--partitions", type=int, default=4, help="create the topic with this many partitions"
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2015-10-26T00:00:00+00:00", help="first event time (ISO-8601)")
    parser.add_argument("--days", type=float, default=4.0)
    parser.add_argument("--no-create", action="store_true", help="the topic exists already")
    parser.add_argument(
        "--record", type=Path, help="write what was sent as JSON lines (partition, offset, event)"
    )
    args = parser.parse_args(argv)
    if not args.no_create:
        create_topic(args.bootstrap, args.topic, args.partitions)
    start = datetime.fromisoformat(args.start)
    sent = produce(
        args.bootstrap, args.topic, generate(args.count, seed=args.seed, start=start, days=args.days)
    )
    if args.record:
        with args.record.open("w") as out:
            for s in sent:
                out.write(
                    json.dumps(
                        {"partition": s.partition, "offset": s.offset, "event_utc": s.event_utc.isoformat()}
                    )
                    + "\n"
                )
    print(f"produced {len(sent)} lines into {args.topic}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
