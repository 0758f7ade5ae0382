"""Validation of operator arguments that may still be Jinja templates at DAG-parse time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check_unless_templated(value: Any, check: Callable[[Any], T]) -> None:
    """Run ``check`` at DAG-parse time when ``value`` is final, so a bad DAG fails to import, not to run
    (a tuple of values is final when each of them is)."""
    if isinstance(value, tuple):
        if any(_pending(v) for v in value):
            return
    elif _pending(value):
        return
    check(value)


def _pending(value: Any) -> bool:
    return (
        value is None
        or is_template(value)
        or type(value).__name__ in ("XComArg", "PlainXComArg", "MapXComArg")
    )
