"""An S3 API server: moto in server mode (``moto_server``), reached through S3Hook's ``endpoint_url``."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from devstack.process import Service, ServiceError, free_port, spawn


def start(workdir: Path, port: int | None = None, attempts: int = 3) -> Service:
    last: Exception | None = None
    for _ in range(attempts):
        p = port or free_port()
        service = spawn(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(p)],
            workdir / f"moto-{p}.log",
        )
        service.ports = {"s3": p}
        service.info = {"endpoint_url": f"http://127.0.0.1:{p}"}
        try:
            url = service.info["endpoint_url"]
            service.wait_ready(lambda u=url: _answers(u), timeout=60)
            return service
        except ServiceError as exc:
            service.stop()
            last = exc
            if port:
                break
    raise ServiceError(f"moto server did not start: {last}")


def _answers(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as resp:
        return bool(resp.status == 200)
