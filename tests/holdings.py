"""What a target holds, counted so that two targets compare: ``(place, line or _id)`` counts of an S3 prefix,
an HDFS base or a search index prefix, and the run that wrote each recorded write."""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from typing import Any

from hdfs_helpers import hdfs_tree

from airflow_provider_logtap.sinks.archive import read_lines
from airflow_provider_logtap.sinks.hdfs import DEAD_LETTERS, MANIFESTS


def s3_holdings(
    s3_client: Any, bucket: str, prefix: str
) -> tuple[Counter[tuple[str, bytes]], dict[str, str]]:
    """``(kafka partition, line)`` counts of the objects under ``prefix``, and each object's writing run."""
    held: Counter[tuple[str, bytes]] = Counter()
    runs = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", ()):
            got = s3_client.get_object(Bucket=bucket, Key=obj["Key"])
            runs[obj["Key"]] = got["Metadata"]["logtap-run"]
            where = obj["Key"].split("/partition=")[1].split("/")[0]
            held.update((where, line) for line in read_lines(got["Body"].read(), "gzip"))
    return held, runs


def hdfs_holdings(client: Any, base: str) -> tuple[Counter[tuple[str, bytes]], dict[str, str]]:
    """``(directory, line)`` counts of the visible files under ``base`` (a dead letter as ``("dead", line)``),
    and the writing run of each recorded write (event time: its manifest; raw: none)."""
    held: Counter[tuple[str, bytes]] = Counter()
    runs = {}
    for path, data in hdfs_tree(client, base).items():
        directory, name = posixpath.split(path)
        assert not name.startswith("."), f"a temporary file was left: {path}"
        if f"/{MANIFESTS}/" in f"/{path}":
            manifest = json.loads(data)
            runs[name] = manifest["run"]
            continue
        if path.startswith(DEAD_LETTERS):
            held.update(("dead", json.loads(raw)["line"].encode()) for raw in data.splitlines())
            continue
        held.update((directory.split("/", 1)[1], line) for line in data.splitlines())
    return held, runs


def search_holdings(client: Any, prefix: str) -> tuple[Counter[tuple[str, bytes]], dict[str, str]]:
    """``(index kind, _id)`` counts of the documents of the indices under ``prefix`` (the day index as ``day``,
    so two prefixes compare; dead letters as ``dead``)."""
    client.indices.refresh(index=f"{prefix}*")
    body = {"query": {"match_all": {}}, "size": 10_000, "_source": False}
    hits = client.search(index=f"{prefix}*", body=body)["hits"]["hits"]
    held: Counter[tuple[str, bytes]] = Counter()
    for hit in hits:
        kind = "dead" if hit["_index"].endswith(".dead-letter") else hit["_index"].removeprefix(prefix)
        held[(kind, hit["_id"].encode())] += 1
    return held, {}
