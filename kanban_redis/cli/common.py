"""What every ``kanban`` command shares: options, the board, output, exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NoReturn, TypeVar

import click

from .. import localdefault
from ..board import Board
from ..errors import (BoardRestoring, InvalidInput, InvalidTransition, KanbanError, RedisUnavailable,
                      StaleClaim, TaskNotFound)
from ..keys import validate_board
from ..localdefault import LocalServer

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    """Exit statuses of ``kanban`` (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1  # anything not named below
    USAGE = 2  # bad arguments or input (click's own code for usage errors)
    NOT_FOUND = 3  # no such task
    CONFLICT = 4  # the task's state does not allow it: wrong status, stale claim, restore running
    UNAVAILABLE = 5  # Redis unreachable, or the local server could not be started
    UNHEALTHY = 6  # health: Redis answered but a check failed
    INTERRUPTED = 130  # Ctrl-C


def exit_code_for(error: KanbanError) -> ExitCode:
    match error:
        case InvalidInput():
            return ExitCode.USAGE
        case TaskNotFound():
            return ExitCode.NOT_FOUND
        case InvalidTransition() | StaleClaim() | BoardRestoring():
            return ExitCode.CONFLICT
        case RedisUnavailable():
            return ExitCode.UNAVAILABLE
        case _:
            return ExitCode.ERROR


def die(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    click.echo(f"kanban: error: {' '.join(str(message).split())}", err=True, color=_color())
    sys.exit(int(code))


class App:
    """Per-invocation state: the chosen board and server, made on first use."""

    def __init__(self) -> None:
        self.board_name = "default"
        self.redis_url: str | None = None
        self.local: LocalServer | None = None
        self._board: Board | None = None

    def url(self, *, start: bool = True) -> str | None:
        """The URL to use (a given one wins; else the local default, started if ``start``)."""
        url, self.local = localdefault.resolve(self.redis_url, start=start)
        if self.local is not None and self.local.started:
            note(self.local.describe())
        return url

    @property
    def board(self) -> Board:
        if self._board is None:
            self._board = Board.from_url(self.url(), self.board_name)
        return self._board


pass_app = click.make_pass_decorator(App, ensure=True)


def _store_board(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.ensure_object(App).board_name = validate_board(value)
    return value


def _store_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    ctx.ensure_object(App).redis_url = value or None
    return value


def board_options(f: F) -> F:
    """``--board`` and ``--redis-url``, with their environment defaults."""
    f = click.option("--redis-url", envvar="REDIS_URL", metavar="URL", expose_value=False, callback=_store_url,
                     help="Redis server [env REDIS_URL; default: the local server under "
                          "~/.local/share/kanban-redis, started when needed].")(f)
    return click.option("--board", "-b", envvar="KANBAN_BOARD", default="default", show_default=True,
                        metavar="SLUG", expose_value=False, callback=_store_board,
                        help="Board slug [env KANBAN_BOARD].")(f)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _color() -> bool | None:
    # None: click decides (colour only on a terminal); NO_COLOR turns it off there too.
    return False if os.environ.get("NO_COLOR") else None


def out(text: str = "") -> None:
    click.echo(text, color=_color())


def note(text: str) -> None:
    """A remark on stderr (never mixed into output a script parses)."""
    click.echo(f"kanban: {text}", err=True, color=_color())


def emit_json(value: Any) -> None:
    """One JSON document on one line (so a stream of them is JSON Lines)."""
    click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    sys.stdout.flush()


def stop_on_sigterm() -> None:
    """Make SIGTERM end a --watch/--follow loop like Ctrl-C does: quietly, exit 0."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def style(text: str, **kwargs: Any) -> str:
    return click.style(text, **kwargs)
