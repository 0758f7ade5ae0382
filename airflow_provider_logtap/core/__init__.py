"""Pure Python: no Airflow, no network, no client library. Ranges, names, progress, batching."""
