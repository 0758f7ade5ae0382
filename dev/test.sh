#!/usr/bin/env bash
# Install everything, then run what CI runs: ruff, mypy (strict on the package), and every test
# (unit, integration against real Kafka/S3 started by the fixtures, system runs of the shipped DAGs).
# Extra arguments go to pytest, e.g. `bash dev/test.sh tests/unit`. Tests run in $LOGTAP_TEST_WORKERS (default 3: the system tests spend much of their time waiting on Airflow)
# pytest-xdist workers, each with its own services; the tests of one Airflow installation stay in one worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/install.sh --airflow2
export LOGTAP_REQUIRE_AIRFLOW2=1  # the system tests marked airflow2 run on Airflow 2.11 too, never skipped here
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The kernel's Rust stays rustfmt-clean (rustfmt comes with rustup's default profile).
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
if cargo fmt --version >/dev/null 2>&1; then
  (cd native && cargo fmt --check)
else
  echo "rustfmt is not installed (rustup component add rustfmt): native/ not format-checked" >&2
fi
exec .venv/bin/python -m pytest -ra -n "${LOGTAP_TEST_WORKERS:-3}" --dist loadgroup --durations 0 --durations-min 20 "${@:-tests}"
