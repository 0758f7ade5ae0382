"""The logtap demo: real Kafka and S3, sample web logs, the shipped DAG run by a real Airflow, the result.

bash dev/demo.sh            # installs, then runs this
.venv/bin/python dev/demo.py --keep   # leave the services running afterwards (prints how to reach them)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack import kafka, loggen, s3  # noqa: E402

TOPIC, BUCKET, DAG_ID, GROUP = (
    "weblogs",
    "logtap-archive",
    "logtap_weblogs_s3_archive",
    "logtap-weblogs_s3_archive",
)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "airflow"), *args], env=env, capture_output=True, text=True
    )
    log = Path(env["AIRFLOW_HOME"]) / "demo-commands.log"
    with log.open("a") as out:
        out.write(f"$ airflow {' '.join(args)} (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"airflow {' '.join(args)} failed (exit {proc.returncode}); full log in {log}")
    return proc


def run_dag(env: dict[str, str]) -> None:
    started = time.monotonic()
    proc = airflow(env, "dags", "test", DAG_ID)
    for line in (proc.stdout + proc.stderr).splitlines():
        if any(marker in line for marker in ("] s3: ", "] committing ", "] run totals")):
            print("   ", line.split("] ", 1)[1].split(" [airflow.")[0].strip())
    print(f"    DAG run succeeded in {time.monotonic() - started:.0f}s")


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="leave Kafka and S3 running at the end")
    parser.add_argument("--records", type=int, default=20_000, help="log lines in the first batch")
    args = parser.parse_args()
    work = ROOT / ".dev" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    services = []
    try:
        step("Starting Apache Kafka (KRaft, from Maven Central jars) and an S3 server (moto)")
        k = kafka.start(work / "kafka")
        services.append(k)
        print(f"    Kafka at {k.info['bootstrap']} (pid {k.pid})")
        s = s3.start(work / "s3")
        services.append(s)
        print(f"    S3 at {s.info['endpoint_url']} (pid {s.pid})")

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
            **{key: v for key, v in os.environ.items() if not key.startswith("AIRFLOW")},
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
            "PYTHONWARNINGS": "ignore",
        }
        airflow(env, "db", "migrate")
        print(f"    AIRFLOW_HOME={home}; DAGs from {ROOT / 'dags'} (taps in dags/logtap_taps.yaml)")

        step(f"Run 1 of {DAG_ID}: plan [committed, high watermark) -> load per partition -> commit")
        run_dag(env)
        step("Producing more logs, then run 2 loads only the new offsets")
        produce(args.records // 4, seed=43)
        run_dag(env)
        show(s3_client, k.info["bootstrap"], sent)
        if args.keep:
            step("Services left running")
            print(
                f"    export AIRFLOW_HOME={home}\n    Kafka {k.info['bootstrap']} (pid {k.pid}), "
                f"S3 {s.info['endpoint_url']} (pid {s.pid}); stop them with: kill {k.pid} {s.pid}"
            )
            services.clear()
        return 0
    finally:
        for service in reversed(services):
            service.stop()


if __name__ == "__main__":
    raise SystemExit(main())
