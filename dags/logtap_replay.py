"""logtap's replay DAG: trigger it from the Airflow UI (Trigger DAG, with the form) to replay a past range of any
valid tap into a new target, or to rebuild chosen event-time partitions in place."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_logtap.dag_factory import replay_dag, taps_file
from airflow_provider_logtap.taps import load_taps_leniently

logtap_replay = replay_dag(load_taps_leniently(taps_file(Path(__file__).with_name("logtap_taps.yaml")))[0])
