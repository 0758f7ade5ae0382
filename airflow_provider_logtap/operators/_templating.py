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
        if any(pending(v) for v in value):
            return
    elif pending(value):
        return
    check(value)


def pending(value: Any) -> bool:
    """Whether ``value`` cannot be checked at DAG-parse time (``None``, or known only at run time)."""
    return value is None or at_run_time(value)


def at_run_time(value: Any) -> bool:
    """Whether ``value`` is only known at run time: a Jinja template or an XCom."""
    return is_template(value) or type(value).__name__ in ("XComArg", "PlainXComArg", "MapXComArg")
