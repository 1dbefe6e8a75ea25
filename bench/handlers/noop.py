"""The no-op function both sides of bench/workers.py run (as an rq job and as a task handler)."""

from typing import Any


def noop(*args: Any, **kwargs: Any) -> None:
    return None
