"""The Kafka side of a load, on confluent-kafka only (no Airflow): observe, read and commit ranges."""
