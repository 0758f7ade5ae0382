"""Credentials never leave Airflow's connections: after real runs, no connection secret is in any file of the
Airflow home (task logs, component logs, every ``airflow`` command's output) or any value of its metadata DB
(XCom, rendered template fields, asset events, DAG run conf, the audit log).

Every system-test Airflow carries distinctive secrets (``airflow_env.SECRETS``) and is scanned at the end of the
session, after all the tests that used it (the ``airflow`` and ``live_airflow`` fixtures); the test here is one
real run checked at once, and the scanner itself is checked to find what is planted."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import sqlalchemy
from airflow_env import AirflowEnv
from conftest import write_taps


def test_the_scan_finds_a_secret_in_any_file_or_table_and_says_where(tmp_path: Path) -> None:
    secrets = {"secret a": "logtap-secret-aaaa", "secret b": "logtap-secret-bbbb"}
    home = AirflowEnv(home=tmp_path)
    log = tmp_path / "logs" / "dag_id=d" / "run_id=r" / "task_id=t" / "attempt=1.log"
    log.parent.mkdir(parents=True)
    log.write_text("a line\nanother\n... password=logtap-secret-aaaa ...\n")
    (tmp_path / "commands.log").write_bytes(b"\x00\xffbinary then logtap-secret-bbbb")
    engine = sqlalchemy.create_engine(home.database_url)
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE xcom (dag_id TEXT, key TEXT, value TEXT, PRIMARY KEY (dag_id, key))")
        db.exec_driver_sql(
            "INSERT INTO xcom VALUES ('d', 'return_value', ?), ('d', 'other', '{}')",
            (json.dumps({"config": {"sasl.password": "logtap-secret-bbbb"}}),),
        )
        db.exec_driver_sql("CREATE TABLE serialized_dag (dag_id TEXT PRIMARY KEY, data_compressed BLOB)")
        db.exec_driver_sql(
            "INSERT INTO serialized_dag VALUES ('d', ?)", (zlib.compress(b'{"x": "logtap-secret-aaaa"}'),)
        )
    engine.dispose()

    assert sorted(home.secret_sightings(secrets)) == [
        "secret a in logs/dag_id=d/run_id=r/task_id=t/attempt=1.log line 3",
        "secret a in the metadata DB: table serialized_dag, column data_compressed, row {'dag_id': 'd'}",
        "secret b in commands.log line 1",
        "secret b in the metadata DB: table xcom, column value, row {'dag_id': 'd', 'key': 'return_value'}",
    ]
    assert home.secret_sightings({"other": "logtap-secret-cccc"}) == []


def test_a_dag_run_leaves_no_connection_secret_in_logs_xcom_or_the_db(
    airflow: AirflowEnv,
    kafka_bootstrap: str,
    s3_client,  # type: ignore[no-untyped-def]
    bucket: str,
    topic_name: str,
) -> None:
    """One real ``airflow dags test`` of the shipped tap DAG, which reads the Kafka connection (with its
    sasl.password) and writes through the S3 connection (its secret key): neither secret is anywhere."""
    from devstack import loggen

    write_taps(
        airflow,
        {"name": "sys_secrets", "topic": topic_name, "target": {"type": "s3_archive", "bucket": bucket}},
    )
    loggen.create_topic(kafka_bootstrap, topic_name, 1)
    sent = list(loggen.produce(kafka_bootstrap, topic_name, loggen.generate(50, seed=5)))
    airflow.run("dags", "test", "logtap_sys_secrets")
    objects = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert objects, "the run wrote nothing: the connections were not used"
    assert len(sent) == 50

    assert airflow.secret_sightings() == []
    # The scan looked at what the run left: its task log lines (``dags test`` writes them to its output, kept in
    # the home's commands.log) and its XCom values.
    assert "into s3" in (airflow.home / "commands.log").read_text()
    assert any(table == "xcom" for table, *_ in airflow.database_values())
