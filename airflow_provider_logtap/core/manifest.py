"""Manifests of event-time writes: which files one range's write put where, so that a re-write can replace them.

An event-time write of ``[start, end)`` of one partition spreads its lines over many ``dt=/hour=`` directories.
Its manifest, ``<base>/<topic>/_logtap/partition=<p>/<topic>+<p>+<start>.json``, is written *before* the files
(state ``pending``, listing the final and temporary names) and again after they are in place (``complete``).
A later write of a range containing ``start`` reads it to delete the files and temporary files it no longer
produces: nothing doubles, and a crash leaves no stray temporary file behind once the range is written again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_logtap.errors import LogtapError


@dataclass(frozen=True, kw_only=True)
class Manifest:
    topic: str
    partition: int
    start: int
    end: int
    state: str
    files: tuple[str, ...] = ()
    temps: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    run: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "logtap": 1,
                "topic": self.topic,
                "partition": self.partition,
                "start": self.start,
                "end": self.end,
                "state": self.state,
                "files": list(self.files),
                "temps": list(self.temps),
                "partitions": list(self.partitions),
                "run": self.run,
                "counts": dict(self.counts),
            },
            indent=1,
        ).encode()

    @classmethod
    def decode(cls, data: bytes, where: str) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(
                topic=raw["topic"],
                partition=int(raw["partition"]),
                start=int(raw["start"]),
                end=int(raw["end"]),
                state=str(raw["state"]),
                files=tuple(raw.get("files", ())),
                temps=tuple(raw.get("temps", ())),
                partitions=tuple(raw.get("partitions", ())),
                run=raw.get("run"),
                counts=dict(raw.get("counts", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LogtapError(
                f"the manifest {where} is damaged ({exc}); move it away and re-run the range it names"
            ) from None
