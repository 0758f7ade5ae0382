"""logtap's incremental DAGs: one per tap declared in the taps file (``$LOGTAP_TAPS_FILE``, else
``logtap_taps.yaml`` beside this file)."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_logtap.dag_factory import dags_from_taps
from airflow_provider_logtap.taps import load_taps, taps_file

globals().update(dags_from_taps(load_taps(taps_file(Path(__file__).with_name("logtap_taps.yaml")))))
