"""``tail``: the board's change log, as it was and as it happens."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click

from ..models import Event
from . import queries, render
from .common import App, board_options, emit_json, json_option, out, pass_app, stop_on_sigterm


def _show(events: Iterable[Event], as_json: bool) -> None:
    for ev in events:
        if as_json:
            emit_json(render.event_json(ev))
        else:
            out(render.event_line(ev))
    sys.stdout.flush()


@click.command(epilog="""\b
Examples:
  kanban tail -n 50
  kanban tail --follow --json | jq -c '{seq, op, ids: [.tasks[].id]}'
  kanban tail --after 1200      # everything since seq 1200 (while the log keeps it)
""")
@click.option("--lines", "-n", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many past entries to print first.")
@click.option("--after", type=click.IntRange(min=0), metavar="SEQ",
              help="Instead, every kept entry after this board seq.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries until Ctrl-C.")
@board_options
@json_option
@pass_app
def tail(app: App, count: int, after: int | None, follow: bool, as_json: bool) -> None:
    """Print the change log: one line (or JSON object) per change."""
    board = app.board
    stop_on_sigterm()
    if after is None:
        last = board.seq
        if count:
            _show(queries.recent_events(board, count, upto=last), as_json)
    else:
        last = after
        while batch := board.events(after=last, count=500):
            _show(batch, as_json)
            last = batch[-1].seq
    if not follow:
        return
    wait_ms = int(queries.block_slice(board) * 1000)
    try:
        while True:
            if batch := queries.follow(board, f"{last}-0", wait_ms):
                _show(batch, as_json)
                last = batch[-1].seq
    except KeyboardInterrupt:
        return
