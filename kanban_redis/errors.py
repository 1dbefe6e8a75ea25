"""One exception hierarchy under :class:`KanbanError`.

Lua scripts report failures as small integer codes (:class:`ErrorCode`, the
same table is injected into every script by :mod:`kanban_redis.scripts`);
:func:`error_for` is the one place that turns a code into a typed exception.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes returned by the Lua scripts as the first element of their reply."""

    OK = 0
    TASK_NOT_FOUND = 1
    INVALID_TRANSITION = 2
    STALE_CLAIM = 3
    RESTORING = 4
    DEPENDENCY_CYCLE = 5
    PARENTS_NOT_DONE = 6


class KanbanError(Exception):
    """Root of every error the library raises on purpose."""


class InvalidInput(KanbanError, ValueError):
    """An argument failed validation; nothing was written."""


class DependencyCycle(InvalidInput):
    """A link would make a task depend on itself."""


class TaskNotFound(KanbanError, LookupError):
    """No task with that id on this board."""


class InvalidTransition(KanbanError):
    """The task's current status does not allow the requested change."""


class StaleClaim(KanbanError):
    """The claim token is not the task's live claim (expired, reclaimed or finished)."""


class BoardRestoring(KanbanError):
    """The board is being restored from a snapshot; transitions are refused until it ends."""


class RedisUnavailable(KanbanError, ConnectionError):
    """Redis could not be reached or did not answer in time."""


def error_for(code: int, detail: str, task_id: str | None = None) -> KanbanError:
    """Map a script's error code and detail to the typed exception to raise."""
    subject = f"task {task_id}" if task_id else "task"
    match ErrorCode(code):
        case ErrorCode.TASK_NOT_FOUND:
            return TaskNotFound(f"task {detail or task_id} not found")
        case ErrorCode.INVALID_TRANSITION:
            return InvalidTransition(f"{subject}: {detail}")
        case ErrorCode.STALE_CLAIM:
            return StaleClaim(f"{subject}: claim token is not the live claim ({detail})")
        case ErrorCode.RESTORING:
            return BoardRestoring(f"board is being restored ({detail}); retry when it ends")
        case ErrorCode.DEPENDENCY_CYCLE:
            return DependencyCycle(f"parents: {detail}")
        case ErrorCode.PARENTS_NOT_DONE:
            return InvalidTransition(f"{subject}: parents not done: {detail}")
        case _:
            raise ValueError(f"code {code} is not an error")
