"""Looking at a whole board: ``board`` (columns, lanes, --watch) and ``stats``."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import click

from ..board import Board
from ..models import Status, Task, to_ms
from . import queries, render
from .common import App, board_options, emit_json, json_option, note, out, pass_app, stop_on_sigterm, style

#: Least time between two redraws of --watch, in seconds, however busy the board.
MIN_REDRAW = 0.5


def collect(board: Board, lane: str | None, limit: int) -> dict[str, Any]:
    """Everything ``board`` shows, as plain data (also its --json form)."""
    seq = board.seq
    counts = queries.counts(board)
    rows = queries.scan(board, Status if lane is not None else queries.OPEN, ("priority", "assignee"))
    lanes = queries.lane_counts(rows)
    if lane is not None:
        mine = lanes.get(lane, Counter())
        counts = {s: mine[s.value] for s in Status}
        lanes = {lane: mine}
    columns = {s.value: [render.task_json(t) for t in queries.column(board, s, rows.get(s), lane=lane, limit=limit)]
               for s in Status if counts[s]}
    return {"board": board.name, "seq": seq, "lane": lane, "counts": {s.value: n for s, n in counts.items()},
            "lanes": {name: dict(c) for name, c in sorted(lanes.items())}, "columns": columns}


def hint_if_unknown(board: Board) -> None:
    """A note on stderr when the board was never created (a mistyped slug looks just like an empty board)."""
    if board.seq == 0:
        others = [b for b in queries.boards(board) if b != board.name]
        note(f"board {board.name!r} has no tasks yet" + (f" (boards here: {', '.join(others)})" if others else ""))


def board_lines(view: dict[str, Any]) -> list[str]:
    """The text of ``board`` for a view from :func:`collect`."""
    counts = view["counts"]
    head = f"board {view['board']}" + (f" lane {view['lane'] or '-'}" if view["lane"] is not None else "")
    lines = [style(head, bold=True) + f"  seq {view['seq']}  {sum(counts.values())} tasks  "
             + render.when(render.now())]
    lines.append("  ".join(f"{render.status_label(Status(s))} {n}" for s, n in counts.items()))
    shown = [s.value for s in queries.OPEN if any(c.get(s.value) for c in view["lanes"].values())]
    if view["lanes"] and shown:
        width = max(4, *(len(name or "-") for name in view["lanes"]))
        lines += ["", "lane".ljust(width) + "".join(f" {s:>9}" for s in shown)]
        for name, c in view["lanes"].items():
            lines.append((name or "-").ljust(width) + "".join(f" {c.get(s, 0):>9}" for s in shown))
    at = render.now()
    for status, cards in view["columns"].items():
        st = Status(status)
        lines += ["", render.status_label(st, f"{status.upper()} ({counts[status]})")]
        lines += ["  " + render.card(Task.model_validate(c), at) for c in cards]
        if counts[status] > len(cards):
            lines.append(style(f"  … {counts[status] - len(cards)} more", dim=True))
    return lines


@click.command(name="board", epilog="""\b
Examples:
  kanban board
  kanban board --watch --lane gpu --limit 10
  kanban board --json | jq .counts
""")
@click.option("--lane", metavar="LANE", help="Only this lane ('' for unassigned tasks).")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=5, show_default=True, help="Cards per column.")
@click.option("--watch", "-w", is_flag=True, help="Redraw on every change (and every --interval) until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between redraws of --watch when nothing changes.")
@board_options
@json_option
@pass_app
def board_cmd(app: App, lane: str | None, limit: int, watch: bool, interval: float, as_json: bool) -> None:
    """The board: counts by status, lanes, and the first cards of each column."""
    board = app.board
    hint_if_unknown(board)
    tty = sys.stdout.isatty()
    stop_on_sigterm()
    try:
        while True:
            drawn = time.monotonic()
            view = collect(board, lane, limit)
            if as_json:
                emit_json(view)
            else:
                if watch and tty:
                    click.clear()
                for line in board_lines(view):
                    out(line)
                if watch and not tty:
                    out("")
                sys.stdout.flush()
            if not watch:
                return
            if queries.changed_within(board, view["seq"], interval):
                time.sleep(max(0.0, MIN_REDRAW - (time.monotonic() - drawn)))
    except KeyboardInterrupt:
        return


@click.command(name="boards")
@board_options
@json_option
@pass_app
def boards_cmd(app: App, as_json: bool) -> None:
    """Every board on the server, with its seq and number of tasks."""
    found = []
    for name in queries.boards(app.board):
        b = Board(app.board.redis, name)
        found.append({"board": name, "seq": b.seq, "tasks": sum(queries.counts(b).values())})
    if as_json:
        emit_json(found)
        return
    for row in found:
        out(f"{row['board']:<20} seq {row['seq']:<8} {row['tasks']} tasks")


@click.command()
@board_options
@json_option
@pass_app
def stats(app: App, as_json: bool) -> None:
    """Numbers for operators: per status and lane, dead letters, leases, the change log."""
    board = app.board
    now_ms = to_ms(render.now())
    counts = queries.counts(board)
    info = queries.log_info(board)
    rows = queries.scan(board, queries.OPEN, ("assignee", "block_kind", "updated_at"))
    blocked, ready = rows[Status.BLOCKED], rows[Status.READY]
    oldest = min((int(r["updated_at"]) for r in ready if r.get("updated_at")), default=None)
    doc = {
        "board": board.name, "seq": board.seq, "tasks": sum(counts.values()),
        "counts": {s.value: n for s, n in counts.items()},
        "lanes": {name: dict(c) for name, c in sorted(queries.lane_counts(rows).items())},
        "blocked_by_kind": dict(Counter(r.get("block_kind", "") for r in blocked)),
        "dead_letter": sum(1 for r in blocked if r.get("block_kind") == "transient"),
        "expired_leases": queries.expired_leases(board, now_ms),
        "oldest_ready_seconds": None if oldest is None else round((now_ms - oldest) / 1000, 1),
        "log": {"length": info["log_length"], "first_seq": info["log_first_seq"], "last_seq": info["log_last_seq"]},
        "incarnation": info["meta"].get("incarnation"), "restoring": info["restoring"],
    }
    if as_json:
        emit_json(doc)
        return
    for key, value in doc.items():
        if key == "lanes":
            for name, by_status in value.items():
                out(f"{'lane ' + (name or '-'):<21} " + "  ".join(f"{k}={v}" for k, v in by_status.items()))
            continue
        if isinstance(value, dict):
            value = "  ".join(f"{k or '-'}={v}" for k, v in value.items()) or "-"
        out(f"{key:<21} {'-' if value is None else value}")
