"""Targets of a load. One interface: ``write(range, batches) -> WriteResult``; sinks know no operator."""

from airflow_provider_logtap.sinks.base import Sink, WriteResult

__all__ = ["Sink", "WriteResult"]
