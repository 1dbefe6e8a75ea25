"""What a task handler raises to choose how its run ends, other than failing.

A handler returns normally (the task is done with its return value) or
raises: one of these to choose, any other exception to fail the run (retried
with backoff while attempts remain). They are not errors of the library, so
they are not under :class:`~kanban_redis.errors.KanbanError`.
"""

from __future__ import annotations

from .inputs import DELAY_MAX_SECONDS


class Retry(Exception):
    """Run the task again later.

    Args:
        delay: seconds to wait before the task is ready again; ``None`` uses
            the worker's backoff for this attempt.
        count: whether this run counts against the task's max_attempts. With
            ``False`` the claim is given back as if the run never happened
            ("busy, try later"), so it can repeat without end.
        reason: recorded on the task (the error text, or the release reason).
    """

    def __init__(self, delay: float | None = None, *, count: bool = True, reason: str = "retry requested") -> None:
        if delay is not None and not 0 <= delay <= DELAY_MAX_SECONDS:  # also refuses NaN
            raise ValueError(f"delay must be between 0 and {DELAY_MAX_SECONDS} seconds")
        super().__init__(reason)
        self.delay = delay
        self.count = count
        self.reason = reason


class Block(Exception):
    """Stop running the task: it goes to ``blocked`` with ``reason`` until someone unblocks it."""

    def __init__(self, reason: str, *, kind: str = "handler") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
