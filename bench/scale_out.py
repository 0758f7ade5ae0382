"""Scale-out of a chunked backlog over Celery workers: one DAG run's wall-clock with 1 worker, then with 2.

    .venv/bin/python bench/scale_out.py [--lines 400000] [--chunk-records 25000] [--concurrency 1] [--rounds 1]

The CeleryExecutor Airflow of the system tests (tests/system/celery_env.py: PostgreSQL, Redis, scheduler, API
server, DAG processor, ``airflow celery worker`` processes on this machine) runs the shipped incremental DAG of
an S3 archive tap (moto) with ``chunk_records`` over a two-partition topic of ``--lines`` generated lines. Each
measured run has its own tap and topic of the same size. First a small warm-up run (the first task of a worker
imports everything), then, per round, a run with worker-a alone and a run with worker-b added. The figure is the
run's wall-clock (the DAG run's start to end, from the REST API) and the speed-up 1 worker / 2 workers; each
chunk's task duration and worker is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from common import ROOT, services

sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "system")]

from celery_env import CeleryAirflow, celery_airflow, task_instances  # noqa: E402


def fill(bootstrap: str, topic: str, lines: int, seed: int) -> dict[int, int]:
    """A two-partition topic of ``lines`` generated lines (keyed by client, as loggen does); records per partition."""
    from devstack import loggen

    loggen.create_topic(bootstrap, topic, 2)
    counts = {0: 0, 1: 0}
    batch = 50_000
    for i in range(0, lines, batch):
        for sent in loggen.produce(
            bootstrap, topic, loggen.generate(min(batch, lines - i), seed=seed * 1000 + i)
        ):
            counts[sent.partition] += 1
    return counts


def tap(name: str, topic: str, bucket: str, chunk_records: int) -> dict[str, Any]:
    return {
        "name": name,
        "topic": topic,
        "schedule": None,
        "retries": 0,
        "sensor_mode": "reschedule",
        "chunk_records": chunk_records,
        "target": {"type": "s3_archive", "bucket": bucket, "prefix": name},
    }


def measure(cluster: CeleryAirflow, dag_id: str) -> tuple[float, list[dict[str, Any]]]:
    """Trigger a run of ``dag_id``, wait for it; its wall-clock seconds and its load task instances."""
    from live import trigger, wait_for_run

    run = trigger(cluster.airflow, dag_id)
    state = wait_for_run(cluster.airflow, dag_id, run, timeout=1800)
    assert state == "success", f"{dag_id} {run}: {state}; see {cluster.airflow.home}"
    info = cluster.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run}")
    seconds = (_time(info["end_date"]) - _time(info["start_date"])).total_seconds()
    loads = [ti for ti in task_instances(cluster.airflow, dag_id, run) if ti["task_id"] == "load"]
    assert {ti["state"] for ti in loads} == {"success"}, loads
    return seconds, loads


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def report(label: str, seconds: float, loads: list[dict[str, Any]]) -> None:
    durations = [float(ti["duration"]) for ti in loads]
    by_worker: dict[str, list[float]] = {}
    for ti in loads:
        by_worker.setdefault(ti["hostname"], []).append(float(ti["duration"]))
    workers = ", ".join(f"{w}: {len(d)} chunks, {sum(d):.0f}s" for w, d in sorted(by_worker.items()))
    print(
        f"{label}: run {seconds:.1f}s; {len(loads)} chunks, task duration min {min(durations):.1f}s median "
        f"{statistics.median(durations):.1f}s max {max(durations):.1f}s, sum {sum(durations):.0f}s ({workers})"
    )
    for ti in sorted(loads, key=lambda t: t["map_index"]):
        print(f"    {ti['rendered_map_index']:<48} {ti['hostname']:<9} {float(ti['duration']):6.1f}s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--chunk-records", type=int, default=25_000)
    parser.add_argument("--concurrency", type=int, default=1, help="task slots of each worker")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    import boto3
    import yaml
    from live import wait_for_dag

    with services() as (bootstrap, endpoint):
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        names = ["warmup"] + [f"r{r}_{n}w" for r in range(args.rounds) for n in (1, 2)]
        topics = {name: f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in names}
        began = time.perf_counter()
        for seed, name in enumerate(names):
            counts = fill(bootstrap, topics[name], 20_000 if name == "warmup" else args.lines, seed)
        print(f"produced {args.lines:,} lines x {len(names) - 1} topics in {time.perf_counter() - began:.0f}s "
              f"(per partition {counts})")  # fmt: skip
        work = ROOT / ".dev" / "bench" / f"scale-out-{uuid.uuid4().hex[:6]}"
        began = time.perf_counter()
        with celery_airflow(
            work,
            workers=("worker-a",),
            concurrency=args.concurrency,
            kafka_bootstrap=bootstrap,
            s3_endpoint=endpoint,
        ) as cluster:
            print(f"Airflow with the CeleryExecutor up in {time.perf_counter() - began:.0f}s ({work})")
            taps = [tap(n, topics[n], bucket, args.chunk_records) for n in names]
            Path(cluster.airflow.env["LOGTAP_TAPS_FILE"]).write_text(yaml.safe_dump({"taps": taps}))
            for name in names:
                wait_for_dag(cluster.airflow, f"logtap_{name}")
            measure(cluster, "logtap_warmup")
            speedups = []
            for r in range(args.rounds):
                if "worker-b" in cluster.workers:
                    cluster.stop_worker("worker-b")
                one, loads = measure(cluster, f"logtap_r{r}_1w")
                report(f"round {r + 1}, 1 worker ", one, loads)
                cluster.start_worker("worker-b")
                two, loads = measure(cluster, f"logtap_r{r}_2w")
                report(f"round {r + 1}, 2 workers", two, loads)
                speedups.append(one / two)
                print(f"round {r + 1}: speed-up {one / two:.2f}x")
            print(
                f"speed-up 1 -> 2 workers ({args.concurrency} slot(s) each, {args.lines:,} lines, chunks of "
                f"{args.chunk_records:,}): median {statistics.median(speedups):.2f}x "
                f"(rounds {' '.join(f'{s:.2f}' for s in speedups)})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
