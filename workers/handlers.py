"""Task handlers: the registry of what a worker may run, and the built-in shell-command handler.

A handler is a Python callable named by a dotted path ``module:function``
and called as ``handler(task, ctx)``. A worker runs its default handler
(``--handler``) and, for a task whose ``metadata["handler"]`` names another
one, only a handler from its allow-list (``--handler-allow``); anything else
blocks the task with the reason. Every path is imported when the worker
starts, so a typo fails at once and not on the first task.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kanban_redis import Block, InvalidInput, Retry, Task

if TYPE_CHECKING:
    from .job import Context

Handler = Callable[[Task, "Context"], Any]

#: The built-in handler: runs ``task.metadata["argv"]``.
COMMAND = "workers.handlers:command"
#: Exit status meaning "temporary failure, try again later" (sysexits.h EX_TEMPFAIL).
EX_TEMPFAIL = 75
#: Bytes of stdout and of stderr kept in a command's result or error.
OUTPUT_TAIL_BYTES = 4096

_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def resolve(path: str) -> Handler:
    """Import the callable named ``module:function``.

    Raises:
        InvalidInput: the path is malformed, the module or attribute is missing, or it is not callable.
    """
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise InvalidInput(f"handler {path!r}: expected module:function")
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidInput(f"handler {path!r}: cannot import {module_name}: {e}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidInput(f"handler {path!r}: {module_name} has no callable {attr}")
    return fn  # type: ignore[no-any-return]


class Registry:
    """The handlers one worker may run: its default and an allow-list, imported up front.

    Raises:
        InvalidInput: a path cannot be resolved.
    """

    def __init__(self, default: str, allowed: Iterable[str] = ()) -> None:
        self.default = default
        self._handlers = {path: resolve(path) for path in dict.fromkeys([default, *allowed])}

    @property
    def names(self) -> list[str]:
        return list(self._handlers)

    def for_task(self, task: Task) -> Handler:
        """The handler for ``task``.

        Raises:
            Block: the task names a handler this worker does not allow (kind ``refused``).
        """
        name = task.metadata.get("handler") or self.default
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            raise Block(f"handler {name!r} is not allowed on this worker (allowed: {', '.join(self.names)})",
                        kind="refused")
        return handler


class CommandFailed(Exception):
    """A command exited with a status other than 0 and 75."""


def _tail(data: bytes) -> str:
    return data[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="replace")


def _status(code: int, err: str) -> str:
    return f"exit {code}: {err.strip()}" if err.strip() else f"exit {code}"


def command(task: Task, ctx: Context) -> dict[str, Any]:
    """Run ``task.metadata["argv"]`` (a list of strings, never a shell string).

    The run is bounded by the task's timeout (the job's death penalty kills it
    with the process). Exit 0: done, the result holds the exit code and the
    tails of stdout and stderr. Exit 75: tried again after the worker's retry
    delay without counting an attempt. Any other status: a failed attempt.

    Raises:
        Block: argv is missing or not a list of strings. Retry: exit 75.
        CommandFailed: any other non-zero exit.
    """
    argv = task.metadata.get("argv")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise Block('metadata["argv"] must be a non-empty list of strings', kind="invalid")
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    out, err = _tail(proc.stdout), _tail(proc.stderr)
    if proc.returncode == 0:
        return {"exit_code": 0, "stdout": out, "stderr": err}
    if proc.returncode == EX_TEMPFAIL:
        raise Retry(count=False, reason=_status(proc.returncode, err))
    raise CommandFailed(_status(proc.returncode, err))
