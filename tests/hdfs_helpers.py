"""Reading back what the HDFS sinks wrote (helpers, not fixtures)."""

from __future__ import annotations

from typing import Any


def hdfs_tree(client: Any, base: str) -> dict[str, bytes]:
    """Every file under ``base`` (hidden ones too), by its path relative to ``base``, and its content."""
    out = {}
    for root, _dirs, files in client.walk(base):
        for name in files:
            with client.read(f"{root}/{name}") as reader:
                out[f"{root}/{name}"[len(base) + 1 :]] = reader.read()
    return out
