"""KafkaReconcileOperator: check that each tap's target holds exactly the offsets its group committed, and
optionally replay what is missing (see :mod:`airflow_provider_logtap.holdings`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.compat import BaseOperator, Context, fail_without_retry, run_identity
from airflow_provider_logtap.core.reconcile import GapError, Reconciliation
from airflow_provider_logtap.errors import ConfigurationError, LogtapError
from airflow_provider_logtap.taps import Tap


class KafkaReconcileOperator(BaseOperator):
    """Reconcile taps' targets against Kafka: per topic, partition and target, the offsets ``[log start,
    committed)`` missing, those missing below the log start (only the S3 archive can give them back), the
    offsets held twice and those held beyond the committed offset, as compact ranges, one log line per finding
    (``nothing missing`` when healthy); the XCom return value is the report as JSON.

    :param taps: the taps of the taps file (every one: an ``s3_archive`` tap of the topic is the repair's
        archive even when it is not among those checked).
    :param topic: check the taps of this topic (templated); ``None``: every tap named, or all.
    :param tap_names: check only these taps (templated); empty: every tap of ``topic``.
    :param fail_on_gap: fail the task, without retries, when anything is missing or doubled (after the
        repair, with ``repair``); a target that could not be checked fails it too, with retries (templated).
    :param repair: replay exactly the missing ranges into the targets that lack them (from the archive below
        Kafka's log start, else from Kafka: ``auto`` when the topic has an ``s3_archive`` tap, ``kafka``
        otherwise), rewrite the extent of doubled raw and event-time objects, then check again (templated: a
        DAG param, ``{{ params.repair }}``).
    """

    template_fields: Sequence[str] = ("topic", "tap_names", "fail_on_gap", "repair")
    ui_color = "#e8fde1"

    def __init__(
        self,
        *,
        taps: Sequence[Tap],
        topic: str | None = None,
        tap_names: Sequence[str] = (),
        fail_on_gap: Any = False,
        repair: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.taps = list(taps)
        self.topic = topic
        self.tap_names = list(tap_names)
        self.fail_on_gap = fail_on_gap
        self.repair = repair

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_logtap import holdings

        fail_on_gap, repair = _flag("fail_on_gap", self.fail_on_gap), _flag("repair", self.repair)
        chosen = holdings.select_taps(self.taps, topic=self.topic or None, names=self.tap_names)
        self.log.info("reconciling %s", ", ".join(f"{t.name} ({t.target.type})" for t in chosen))
        result = holdings.reconcile(
            chosen, all_taps=self.taps, fix=repair, run=run_identity(context), say=self.log.info
        )
        last = Reconciliation.from_dict(result.get("after", result["report"]))
        if fail_on_gap and any(t.gaps for t in last.targets):
            raise GapError(last, repaired=repair)
        if fail_on_gap and last.errors:  # a target that could not be checked now (unreachable): worth a retry
            raise LogtapError(f"{last.summary()}: " + "; ".join(f"{k}: {v}" for k, v in last.errors.items()))
        return result


def _flag(name: str, value: Any) -> bool:
    """A boolean parameter, also as a template renders it (``True``/``False`` text without native rendering)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise ConfigurationError(f"{name} must be one of {{True, False}}. Got {value!r}")
