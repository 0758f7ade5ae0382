"""The logtap demo: real Kafka and S3, sample web logs, the shipped DAG run by a real Airflow, the result.

bash dev/demo.sh            # installs, then runs this
.venv/bin/python dev/demo.py --keep   # leave the services running (prints how to reach and stop them)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack import hdfs, kafka, loggen, opensearch, s3  # noqa: E402

TOPIC, BUCKET = "weblogs", "logtap-archive"
# As in dags/logtap_taps.yaml.
TAPS = ("weblogs_s3_archive", "weblogs_hdfs_raw", "weblogs_hdfs_by_event_time", "weblogs_search")
GROUP = "logtap-weblogs_s3_archive"


# Terminal control sequences (colours, cursor moves) that Airflow's coloured logs or a library may still emit.
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# librdkafka's own log lines (``%4|1764633600.123|GETPID|rdkafka#producer-1| ...``), which it writes straight
# to file descriptor 2, bypassing Python.
LIBRDKAFKA_LINE = re.compile(rb"^%\d+\|\d+\.\d+\|")


def clean(text: str) -> str:
    return ANSI.sub("", text)


@contextlib.contextmanager
def quiet_kafka_clients(log_path: Path) -> Iterator[None]:
    """Route this process's stderr (file descriptor 2) through a filter: librdkafka's log lines (the log
    generator's producer and the offsets check are librdkafka clients; a fresh broker makes them log start-up
    warnings) go to ``log_path``, everything else (Python's warnings, a traceback) still reaches the terminal,
    without terminal escapes."""
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source, log_path.open("ab") as log:
            for line in source:
                if LIBRDKAFKA_LINE.match(line):
                    log.write(line)
                    log.flush()
                else:
                    os.write(terminal, ANSI.sub("", line.decode(errors="replace")).encode())

    thread = threading.Thread(target=pump, name="demo-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the pump reads to its end and stops
        thread.join(10)
        os.close(terminal)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "airflow"), *args], env=env, capture_output=True, text=True
    )
    proc.stdout, proc.stderr = clean(proc.stdout), clean(proc.stderr)
    log = Path(env["AIRFLOW_HOME"]) / "demo-commands.log"
    with log.open("a") as out:
        out.write(f"$ airflow {' '.join(args)} (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"airflow {' '.join(args)} failed (exit {proc.returncode}); full log in {log}")
    return proc


# The lines of a tap DAG run's log the demo prints (each message as logged, after its "] ").
TAP_MARKERS = ("] s3: ", "] hdfs_raw: ", "] hdfs_event_time: ", "] search: ", "] run totals")


def run_dag(
    env: dict[str, str],
    dag_id: str,
    conf: Mapping[str, object] | None = None,
    markers: tuple[str, ...] = TAP_MARKERS,
) -> list[str]:
    """Run ``dag_id`` once with ``airflow dags test`` (with ``conf``, if given); print and return the messages
    of its log lines holding one of ``markers``."""
    started = time.monotonic()
    print(f"    -- {dag_id}" + (f" -c '{json.dumps(conf)}'" if conf else ""))
    proc = airflow(env, "dags", "test", dag_id, *(("-c", json.dumps(conf)) if conf else ()))
    shown = []
    for line in (proc.stdout + proc.stderr).splitlines():
        if any(marker in line for marker in markers):
            shown.append(line.split("] ", 1)[1].split(" [airflow.")[0].strip())
            print("   ", shown[-1])
    print(f"       DAG run succeeded in {time.monotonic() - started:.0f}s")
    return shown


def show(s3_client, bootstrap: str, sent: dict[int, list[bytes]]) -> None:  # type: ignore[no-untyped-def]
    from confluent_kafka import Consumer

    from airflow_provider_logtap.kafka.client import reader_config
    from airflow_provider_logtap.kafka.offsets import committed_offsets
    from airflow_provider_logtap.sinks.archive import read_lines

    step(f"What landed where: s3://{BUCKET}/raw/{TOPIC}/")
    identical = True
    for p in sorted(sent):
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"raw/{TOPIC}/partition={p}/"
        )
        lines: list[bytes] = []
        for obj in sorted((o for page in pages for o in page.get("Contents", ())), key=lambda o: o["Key"]):
            head = s3_client.get_object(Bucket=BUCKET, Key=obj["Key"])
            meta = head["Metadata"]
            chunk = read_lines(head["Body"].read(), "gzip")
            lines += chunk
            print(
                f"    {obj['Key']}  {obj['Size']:>8} bytes gz  offsets [{meta['logtap-start-offset']}, "
                f"{meta['logtap-end-offset']})  {meta['logtap-record-count']} lines"
            )
        same = lines == sent[p]
        identical &= same
        print(
            f"    partition {p}: {len(lines)} lines archived, {len(sent[p])} records in Kafka -> "
            f"{'byte-for-byte identical' if same else 'DIFFERENT'}"
        )
    consumer = Consumer(reader_config({"bootstrap.servers": bootstrap}, GROUP))
    state = committed_offsets(consumer, TOPIC, sorted(sent))
    consumer.close()
    step(f"Committed offsets of consumer group {GROUP}")
    for p, c in sorted(state.items()):
        claim = f"{c.claim.state} by {c.claim.run}" if c.claim else "no claim"
        print(f"    {TOPIC}[{p}] = {c.offset}  ({claim})")
    first = next(iter(sent.values()))[0].decode(errors="replace")
    print(f"\n    a sample archived line: {first}")
    if not identical:
        raise SystemExit("the archive does not match the topic")


def show_hdfs(url: str, user: str, sent: dict[int, list[bytes]]) -> None:
    from hdfs import InsecureClient

    client = InsecureClient(url, user=user)
    step("HDFS raw copy: /data/weblogs/raw/weblogs/")
    for p in sorted(sent):
        directory = f"/data/weblogs/raw/{TOPIC}/partition={p}"
        names = sorted(client.list(directory))
        lines = []
        for name in names:
            with client.read(f"{directory}/{name}") as reader:
                lines += reader.read().splitlines()
        same = "byte-for-byte identical" if lines == sent[p] else "DIFFERENT"
        print(f"    partition={p}: {len(names)} files, {len(lines)} lines -> {same} to the topic")
    base = f"/data/weblogs/by_event_time/{TOPIC}"
    step(f"HDFS partitioned by each line's own event time (UTC): {base}/")
    everything: list[bytes] = []
    for day in sorted(n for n in client.list(base) if n.startswith("dt=")):
        hours = sorted(client.list(f"{base}/{day}"))
        per_hour = []
        for hour in hours:
            lines = []
            for name in client.list(f"{base}/{day}/{hour}"):
                with client.read(f"{base}/{day}/{hour}/{name}") as reader:
                    lines += reader.read().splitlines()
            per_hour.append(len(lines))
            everything += lines
        print(
            f"    {day}/  hour=00 .. hour=23: {len(hours)} partitions, {sum(per_hour)} lines "
            f"(hour=00/ holds {per_hour[0]})"
        )
    example = sorted(client.list(f"{base}/{day}/{hours[-1]}"))
    print(f"    e.g. {base}/{day}/{hours[-1]}/{example[0]}")
    kafka_lines = sorted(line for lines in sent.values() for line in lines)
    same = "every record exactly once" if sorted(everything) == kafka_lines else "DIFFERENT"
    print(f"    {len(everything)} lines in all, {len(kafka_lines)} records in Kafka -> {same}")


def show_search(url: str, sent: dict[int, list[bytes]]) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(url)
    index = "logtap-weblogs"  # the alias of the live daily indices (dead letters: logtap-weblogs.dead-letter)
    client.indices.refresh(index=index)
    indexed = client.count(index=index)["count"]
    dead = (
        client.count(index=f"{index}.dead-letter")["count"]
        if client.indices.exists(index=f"{index}.dead-letter")
        else 0
    )
    step(
        f"OpenSearch: {indexed} parsed, GeoIP-enriched documents, {dead} dead letters "
        f"({sum(map(len, sent.values()))} records in Kafka)"
    )
    query = {
        "size": 0,
        "aggs": {
            "top_countries": {"terms": {"field": "source.geo.country_name", "size": 5}},
            "hits_per_day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day"}},
            "errors": {"filter": {"range": {"http.response.status_code": {"gte": 500}}}},
        },
    }
    body = json.dumps(query)
    print(f"    the query this runs (the alias {index} covers the live daily indices {index}-YYYY.MM.DD):")
    print(f"    curl -s -H 'Content-Type: application/json' '{url.rstrip('/')}/{index}/_search' -d '{body}'")
    answer = client.search(index=index, body=body)["aggregations"]
    print("    top countries:")
    for bucket in answer["top_countries"]["buckets"]:
        print(f"      {bucket['key']:<20} {bucket['doc_count']:>6} hits")
    print("    hits per day (the lines' own event time, UTC):")
    for bucket in answer["hits_per_day"]["buckets"]:
        print(f"      {bucket['key_as_string'][:10]}  {bucket['doc_count']:>6}")
    print(f"    5xx responses: {answer['errors']['doc_count']}")
    print("    (IP geolocation by DB-IP, https://db-ip.com, CC BY 4.0)")


def event_time_lines(client, base: str) -> Counter[tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    """Each line of an event-time tree ``<base>/dt=*/hour=*``, counted per hour directory."""
    held: Counter[tuple[str, bytes]] = Counter()
    for day in sorted(n for n in client.list(base) if n.startswith("dt=")):
        for hour in sorted(n for n in client.list(f"{base}/{day}") if n.startswith("hour=")):
            for name in client.list(f"{base}/{day}/{hour}"):
                with client.read(f"{base}/{day}/{hour}/{name}") as reader:
                    held.update((f"{day}/{hour}", line) for line in reader.read().splitlines())
    return held


def uh_oh(env: dict[str, str], bootstrap: str, url: str, user: str) -> None:
    """Kafka forgets the older half of each partition; the event-time tree is rebuilt from the S3 archive."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient
    from hdfs import InsecureClient

    step('The "uh oh" story: Kafka has forgotten, the S3 archive has not')
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "logtap-demo-watermarks"})
    high = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)[1] for p in range(4)}
    consumer.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records(
        [TopicPartition(TOPIC, p, high[p] // 2) for p in sorted(high)], request_timeout=30
    )
    for tp, future in sorted(futures.items(), key=lambda item: item[0].partition):
        start = future.result().low_watermark
        print(
            f"    delete_records, as retention would: {TOPIC}[{tp.partition}] now holds "
            f"[{start}, {high[tp.partition]})"
        )
    tap = "weblogs_hdfs_by_event_time"
    conf = {"tap": tap, "source": "auto", "from": "earliest", "to": "latest", "target_name": "restored"}
    print("    a dry run (the default) with source auto: what would come from the archive, what from Kafka")
    totals = run_dag(env, "logtap_replay", conf, markers=("] dry run total from ",))
    if len(totals) != 2:
        raise SystemExit(f"the dry run should total from the archive and from Kafka; it logged {totals}")
    print("    the replay for real, all from the archive, into the new target 'restored'")
    run_dag(
        env, "logtap_replay", {**conf, "source": "archive", "dry_run": False}, markers=("] replay of tap ",)
    )
    client = InsecureClient(url, user=user)
    live = event_time_lines(client, f"/data/weblogs/by_event_time/{TOPIC}")
    restored = event_time_lines(client, f"/data/weblogs/by_event_time/_replays/restored/{TOPIC}")
    same = "every hour holds the same lines" if restored == live else "DIFFERENT"
    print(
        f"    /data/weblogs/by_event_time/_replays/restored/{TOPIC}/: {restored.total()} lines in "
        f"{len({hour for hour, _ in restored})} hours; live tree: {live.total()} lines in "
        f"{len({hour for hour, _ in live})} hours -> {same}"
    )
    if restored != live:
        raise SystemExit("the tree restored from the archive differs from the live one")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave Kafka, S3, HDFS and OpenSearch running at the end (prints how to stop each, by PID)",
    )
    parser.add_argument("--records", type=int, default=20_000, help="log lines in the first batch")
    args = parser.parse_args()
    work = ROOT / ".dev" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    services = []
    try:
        step(
            "Starting Apache Kafka (KRaft, from Maven Central jars), an S3 server (moto), HDFS and OpenSearch"
        )
        k = kafka.start(work / "kafka")
        services.append(k)
        print(f"    Kafka at {k.info['bootstrap']} (pid {k.pid})")
        s = s3.start(work / "s3")
        services.append(s)
        print(f"    S3 at {s.info['endpoint_url']} (pid {s.pid})")
        h = hdfs.start(work / "hdfs")
        services.append(h)
        print(f"    HDFS (MiniDFSCluster) with WebHDFS at {h.info['webhdfs_url']} (pid {h.pid})")
        o = opensearch.start(work / "opensearch")
        services.append(o)
        print(f"    OpenSearch 2.19 at {o.info['url']} (pid {o.pid})")

        import boto3

        s3_client = boto3.client(
            "s3",
            endpoint_url=s.info["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )
        s3_client.create_bucket(Bucket=BUCKET)
        loggen.create_topic(k.info["bootstrap"], TOPIC, 4)
        sent: dict[int, list[bytes]] = {p: [] for p in range(4)}

        def produce(count: int, seed: int) -> None:
            for rec in loggen.produce(k.info["bootstrap"], TOPIC, loggen.generate(count, seed=seed)):
                sent[rec.partition].append(rec.line)
            print(f"    produced {count} Apache combined log lines into topic {TOPIC!r} (4 partitions)")

        step("Producing sample web-server logs")
        produce(args.records, seed=42)

        step("Preparing Airflow (its own AIRFLOW_HOME, SQLite metadata DB)")
        home = work / "airflow"
        env = {
            **{
                key: v
                for key, v in os.environ.items()
                if not key.startswith(("AIRFLOW", "FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS"))
            },
            # Plain output from every airflow command: no colours, no terminal control sequences.
            "NO_COLOR": "1",
            "TERM": "dumb",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
                {"conn_type": "kafka", "extra": {"bootstrap.servers": k.info["bootstrap"]}}
            ),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "login": "demo",
                    "password": "demo",
                    "extra": {"endpoint_url": s.info["endpoint_url"], "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_WEBHDFS_DEFAULT": json.dumps(
                {
                    "conn_type": "webhdfs",
                    "host": "127.0.0.1",
                    "port": h.ports["namenode_http"],
                    "login": h.info["user"],
                }
            ),
            "AIRFLOW_CONN_OPENSEARCH_DEFAULT": json.dumps(
                {"conn_type": "opensearch", "host": "127.0.0.1", "port": o.ports["http"]}
            ),
            "LOGTAP_GEOIP_DB": str(ROOT / "dev" / ".cache" / "geoip" / "dbip-city-lite-2023-04.mmdb"),
            "PYTHONWARNINGS": "ignore",
        }
        airflow(env, "db", "migrate")
        print(f"    AIRFLOW_HOME={home}; DAGs from {ROOT / 'dags'} (taps in dags/logtap_taps.yaml)")

        step("Run 1 of each tap's DAG: plan [committed, high watermark) -> load per partition -> commit")
        for tap in TAPS:
            run_dag(env, f"logtap_{tap}")
        step("Producing more logs, then run 2 of each DAG loads only the new offsets")
        produce(args.records // 4, seed=43)
        for tap in TAPS:
            run_dag(env, f"logtap_{tap}")
        show(s3_client, k.info["bootstrap"], sent)
        show_hdfs(h.info["webhdfs_url"], h.info["user"], sent)
        show_search(o.info["url"], sent)
        uh_oh(env, k.info["bootstrap"], h.info["webhdfs_url"], h.info["user"])
        if args.keep:
            step("Services left running (each is its own process group, as the demo started it)")
            print(f"    export AIRFLOW_HOME={home}")
            left = [
                (k, f"Kafka       {k.info['bootstrap']}"),
                (s, f"S3          {s.info['endpoint_url']}"),
                (h, f"HDFS        {h.info['webhdfs_url']} (WebHDFS)"),
                (o, f"OpenSearch  {o.info['url']}"),
            ]
            assert [service for service, _ in left] == services, "a started service would not be listed"
            for service, where in left:
                print(f"    {where:<48} pid {service.pid:<8} stop: kill -- -{service.pid}")
            print(f"    stop all four: kill -- {' '.join(f'-{service.pid}' for service, _ in left)}")
            services.clear()
        return 0
    finally:
        for service in reversed(services):
            service.stop()


if __name__ == "__main__":
    (ROOT / ".dev").mkdir(exist_ok=True)
    with quiet_kafka_clients(ROOT / ".dev" / "demo-kafka-clients.log"):
        code = main()
    raise SystemExit(code)
