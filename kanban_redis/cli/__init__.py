"""``kanban``: the board from a terminal, for people and scripts.

One module per command group; :func:`main` is the console script. User
mistakes and unreachable servers end in one line on stderr and a named exit
status (:class:`ExitCode`), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ..errors import KanbanError
from .common import ExitCode, die, exit_code_for
from .health import health
from .localserver import local_group
from .logtail import tail
from .tasks import block, comment, create, list_, move, show, unblock
from .view import board_cmd, boards_cmd, stats

EXAMPLES = """\b
Examples:
  kanban create "Resize images" --lane gpu -p 5
  kanban create "Publish" --parent 12 --parent 13 --json | jq .id
  kanban board --watch
  kanban boards
  kanban list --status ready --status running --lane gpu
  kanban show 12
  kanban block 12 --reason "waiting for credentials"
  kanban move 12 review
  kanban tail --follow --json
  REDIS_URL=redis://:secret@db:6379/0 kanban board --board ops
  kanban health --db ~/kanban/kanban.db || alert
\b
With no REDIS_URL the tools start (once) and share a local Redis whose data
lives under ~/.local/share/kanban-redis; 'kanban local status' says which.
\b
Exit status: 0 ok, 1 error, 2 bad usage or input, 3 no such task,
4 not allowed in the task's state, 5 Redis unreachable, 6 unhealthy, 130 interrupted.
"""


@click.group(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kanban-redis")
def cli() -> None:
    """Look at and change a kanban-redis board."""


for command in (board_cmd, boards_cmd, create, show, list_, move, block, unblock, comment, tail, stats, health, local_group):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``kanban``; exits with an :class:`ExitCode`."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="kanban", standalone_mode=False)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx else "kanban"
        die(f"{e.format_message()} (see '{where} --help')", ExitCode.USAGE)
    except click.ClickException as e:
        die(e.format_message(), e.exit_code)
    except click.Abort:
        sys.exit(ExitCode.INTERRUPTED)
    except KanbanError as e:
        die(str(e), exit_code_for(e))
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
