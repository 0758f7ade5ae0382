"""A StatsD server for the metrics tests: a UDP socket on loopback, and the logtap lines it received."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def statsd_server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every logtap StatsD line sent so far (one metric a datagram; a datagram may hold several lines);
    Airflow's own metrics (``airflow.serde...``) left out."""
    sock.settimeout(1.0)
    lines: list[str] = []
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return lines
        lines += [line for line in data.decode().splitlines() if line.startswith("airflow.logtap.")]
