"""KafkaCommitRangesOperator: move the group's offsets to the plan's ends once every write succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_logtap.compat import (
    AirflowSkipException,
    BaseOperator,
    Context,
    TriggerRule,
    fail_without_retry,
    in_task_test,
    run_identity,
)
from airflow_provider_logtap.core import chunks, claims
from airflow_provider_logtap.errors import ClaimConflictError
from airflow_provider_logtap.hooks.kafka_range import KafkaRangeHook


class KafkaCommitRangesOperator(BaseOperator):
    """Commit the ends of a run's ranges for the tap's consumer group, with metadata naming the run.

    Runs after every load of the run (it fails, and nothing is committed, if any load failed). Per partition,
    it commits only while the run still holds the claim its plan made; a partition whose claim a newer run
    took is left alone (that run loads and commits those offsets), and a commit already done is not repeated.

    Under ``airflow tasks test`` it decides and logs as a run would, but commits nothing: the live group's
    offsets and claims stay as they are (``airflow dags test`` is a real run and commits).

    :param ranges: the plan's load specs (``plan.output``: ranges, or chunks of them, put back together per
        partition).
    :param group_id: the tap's consumer group.
    :param results: the loads' results (``load.output``), summed up in the log.
    :param kafka_config_id: the Kafka connection id.
    """

    template_fields: Sequence[str] = ("ranges", "group_id", "results")
    ui_color = "#e1ecfd"

    def __init__(
        self,
        *,
        ranges: Any,
        group_id: str,
        results: Any = None,
        kafka_config_id: str = "kafka_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.NONE_FAILED)
        super().__init__(**kwargs)
        self.ranges = ranges
        self.group_id = group_id
        self.results = results
        self.kafka_config_id = kafka_config_id

    @fail_without_retry
    def execute(self, context: Context) -> dict[str, Any]:
        ranges = chunks.whole_ranges(self.ranges or ())  # a chunked partition: its whole planned range
        if not ranges:
            raise AirflowSkipException("the plan has no ranges")
        topic = ranges[0].topic
        run = run_identity(context)
        hook = KafkaRangeHook(kafka_config_id=self.kafka_config_id)
        state = hook.committed(self.group_id, topic, [r.partition for r in ranges])
        to_commit: dict[int, tuple[int, str]] = {}
        outcome: dict[str, list[int]] = {"commit": [], "done": [], "superseded": [], "conflict": []}
        for rng in ranges:
            decision = claims.before_commit(
                run=run, rng=rng, claim=state[rng.partition].claim, offset=state[rng.partition].offset
            )
            outcome[decision.action].append(rng.partition)
            (self.log.warning if decision.action in ("superseded", "conflict") else self.log.info)(
                decision.reason
            )
            if decision.action == "commit":
                to_commit[rng.partition] = (rng.end, claims.committed(run, rng).encode())
        if outcome["conflict"]:
            raise ClaimConflictError(
                f"offsets of partitions {outcome['conflict']} of {topic} were moved by someone else; "
                "nothing was committed. Re-run the DAG: the next run plans from the group's offsets."
            )
        if in_task_test(context):
            return self._refuse_in_task_test(run, topic, to_commit, outcome)
        hook.commit(self.group_id, topic, to_commit)
        self._report(topic)
        self.log.info(
            "group %s, %s: committed partitions %s; already committed %s; superseded %s",
            self.group_id,
            topic,
            outcome["commit"],
            outcome["done"],
            outcome["superseded"],
        )
        if not outcome["commit"] and not outcome["done"]:
            raise AirflowSkipException(
                f"every range of {run} was superseded by a newer run; nothing committed"
            )
        return {
            "group_id": self.group_id,
            "topic": topic,
            "run": run,
            "committed": {str(p): to_commit[p][0] for p in outcome["commit"]},
            "already": outcome["done"],
            "superseded": outcome["superseded"],
        }

    def _refuse_in_task_test(
        self, run: str, topic: str, to_commit: dict[int, tuple[int, str]], outcome: dict[str, list[int]]
    ) -> dict[str, Any]:
        """Under ``airflow tasks test``: what would be committed, logged; nothing committed."""
        for partition, (offset, _claim) in sorted(to_commit.items()):
            self.log.warning(
                "airflow tasks test: would commit %s[%d] -> %d for group %s; NOT committed",
                topic,
                partition,
                offset,
                self.group_id,
            )
        self.log.warning(
            "airflow tasks test does not move the offsets of the live group %s (a debugging run must not "
            "disturb production): nothing committed. A DAG run (the scheduler, a backfill or airflow dags "
            "test) commits; to try a tap for real without its group, replay a range through the logtap_replay "
            "DAG (a dry run first).",
            self.group_id,
        )
        self._report(topic)
        return {
            "group_id": self.group_id,
            "topic": topic,
            "run": run,
            "committed": {},
            "would_commit": {str(p): to_commit[p][0] for p in outcome["commit"]},
            "already": outcome["done"],
            "superseded": outcome["superseded"],
            "test_mode": True,
        }

    def _report(self, topic: str) -> None:
        # A slice is one request for a mapped task's lazy XCom sequence (iterating probes past its end).
        values = self.results[:] if hasattr(self.results, "__getitem__") else list(self.results or ())
        results = [r for r in values if isinstance(r, dict)]
        if not results:
            return
        records = sum(int(r.get("records", 0)) for r in results)
        written = sum(int(r.get("written", 0)) for r in results)
        nbytes = sum(int(r.get("bytes_in", 0)) for r in results)
        lost = sum(int(r.get("lost_count", 0)) for r in results)
        self.log.info(
            "run totals for %s: %d records read, %d written, %d bytes, %d offsets lost, %d objects",
            topic,
            records,
            written,
            nbytes,
            lost,
            sum(len(r.get("objects", ())) for r in results),
        )
