#!/usr/bin/env bash
# Install everything, then run the demo: start Kafka and S3, produce sample web logs, load them with the
# shipped incremental DAG through a real Airflow (SQLite), and show what landed where.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/install.sh
exec .venv/bin/python dev/demo.py "$@"
