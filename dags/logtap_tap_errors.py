"""Reports the invalid taps of the taps file as an import error of this file in the Airflow UI (DAGs > Import
errors): each names the tap, the field and the fix. The valid taps load from ``logtap_taps.py`` regardless."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_logtap.dag_factory import taps_file
from airflow_provider_logtap.taps import TapsFileError, load_taps_leniently

_taps, _errors = load_taps_leniently(taps_file(Path(__file__).with_name("logtap_taps.yaml")))
if _errors:
    raise TapsFileError(_errors)
