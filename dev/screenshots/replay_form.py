"""Take docs/replay-form.png: a running Airflow (PostgreSQL, DAG processor, API server) with the shipped DAGs,
and the trigger form of logtap_replay opened in headless chromium (``dev/screenshots/shot.mjs``). With
``--airflow 2``, docs/replay-form-airflow2.png: the same form in Airflow 2.11's webserver (``.venv-airflow2``,
``bash dev/install.sh --airflow2``), logged in as its admin user.

    (cd dev/screenshots && npm ci) && .venv/bin/python dev/screenshots/replay_form.py [--airflow 2]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "dev"), str(ROOT / "tests"), str(ROOT / "tests" / "system")]

from airflow_env import make_airflow_env  # noqa: E402
from devstack import postgres  # noqa: E402


def main() -> int:
    version = sys.argv[sys.argv.index("--airflow") + 1] if "--airflow" in sys.argv else "3"
    work = Path(tempfile.mkdtemp(prefix="logtap-shot-"))
    pg = postgres.start(work / "pg")
    try:
        airflow = make_airflow_env(
            work / "home",
            kafka_bootstrap="127.0.0.1:9",
            s3_endpoint="http://127.0.0.1:9",
            taps_file=ROOT / "dags" / "logtap_taps.yaml",
            database_url=pg.info["url"],
            version=version,
        )
        if version == "2":
            airflow.run("dags", "reserialize")  # the webserver shows the DAGs of the metadata DB
        airflow.start_components("api-server", "dag-processor")
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    airflow.api("GET", "/dags/logtap_replay")
                    break
                except urllib.error.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(2)
            out = ROOT / "docs" / ("replay-form-airflow2.png" if version == "2" else "replay-form.png")
            out.parent.mkdir(exist_ok=True)
            subprocess.run(
                ["node", "shot.mjs", airflow.api_url, str(out), version],
                check=True,
                cwd=Path(__file__).parent,
            )
            print(f"wrote {out}")
        finally:
            airflow.stop_components()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
