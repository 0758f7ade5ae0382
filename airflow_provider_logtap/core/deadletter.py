"""Dead letters: lines that could not be shaped (no event time, a wrong format), never silently dropped.

Each is one JSON line with where it came from and why: ``{"topic", "partition", "offset", "timestamp",
"reason", "line"}``; ``line`` is the value decoded as UTF-8 with undecodable bytes as ``\\xhh`` escapes, and
``line_base64`` holds the exact bytes when that decoding was not lossless.
"""

from __future__ import annotations

import base64
import json


def dead_letter(
    *, topic: str, partition: int, offset: int, timestamp: int, reason: str, value: bytes
) -> bytes:
    record: dict[str, object] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "reason": reason,
    }
    try:
        record["line"] = value.decode("utf-8")
    except UnicodeDecodeError:
        record["line"] = value.decode("utf-8", "backslashreplace")
        record["line_base64"] = base64.b64encode(value).decode("ascii")
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def ratio_exceeded(bad: int, total: int, max_ratio: float | None) -> bool:
    """Whether ``bad`` of ``total`` lines is more than a tap allows (``None``: no limit). With ``total`` the
    offsets of a whole range, it says early that the range's ratio can no longer end within the limit."""
    return max_ratio is not None and total > 0 and bad / total > max_ratio
