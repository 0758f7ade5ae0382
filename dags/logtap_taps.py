"""logtap's tap DAGs: one per valid tap declared in the taps file (``$LOGTAP_TAPS_FILE``, else ``[logtap]
taps_file`` in Airflow's configuration, else ``logtap_taps.yaml`` beside this file; read without asking the
metadata database). Invalid taps are left out here and reported by ``logtap_tap_errors.py`` as import errors,
so one bad tap never stops the others from loading. Beside them, one daily reconcile DAG per topic,
``logtap_reconcile_<topic>``, checks that its taps' targets hold what their groups committed."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_logtap.dag_factory import dags_from_taps, reconcile_dags, taps_file
from airflow_provider_logtap.taps import load_taps_leniently

_taps, _errors = load_taps_leniently(taps_file(Path(__file__).with_name("logtap_taps.yaml")))
globals().update(dags_from_taps(_taps))
globals().update(reconcile_dags(_taps))
