"""Commands on tasks: create, show, list, and the changes made by hand."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import click

from ..models import CREATE_STATUSES, Status, Task
from ..runs import runs_of
from . import queries, render
from .common import App, board_options, emit_json, json_option, out, pass_app, style
from .view import hint_if_unknown

STATUS = click.Choice([s.value for s in Status])
#: "+90s", "+5m", "+2h", "+1d": a time relative to now.
RELATIVE = re.compile(r"^\+(\d+)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _when(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    m = RELATIVE.match(value.strip())
    if m:
        try:
            return datetime.now(UTC) + timedelta(seconds=int(m[1]) * UNITS[m[2]])
        except OverflowError:
            raise click.BadParameter(f"{value!r}: too far ahead (dates end with the year 9999)") from None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use ISO 8601 (2030-01-01T09:00) or +N[s|m|h|d]") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _json_object(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        doc = json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise click.BadParameter("must be a JSON object")
    return doc


def _read_text(f: IO[str], option: str) -> str:
    try:
        return f.read()
    except UnicodeDecodeError as e:
        raise click.BadParameter(f"{f.name}: not UTF-8 text ({e.reason} at byte {e.start})",
                                 param_hint=option) from None


def _print_task(task: Task, as_json: bool) -> None:
    if as_json:
        emit_json(render.task_json(task))
    else:
        out(f"{render.status_label(task.status)} {render.card(task, render.now())}")


@click.command(epilog="""\b
Examples:
  kanban create "Resize images" --lane gpu -p 5
  kanban create "Publish" --parent 12 --parent 13 --json | jq -r .id
  kanban create "Nightly report" --not-before +8h --idempotency-key report-2030-01-01
  git log -1 --format=%B | kanban create "Review last commit" --body-file -
""")
@click.argument("title")
@click.option("--body", default="", help="Description text.")
@click.option("--body-file", type=click.File("r", encoding="utf-8"), help="Read the description from a file ('-': stdin).")
@click.option("--lane", "--assignee", "lane", metavar="LANE", help="Lane (profile) that may run it.")
@click.option("--priority", "-p", type=int, default=0, show_default=True, help="Higher runs first (-1000..1000).")
@click.option("--parent", "parents", multiple=True, metavar="ID", help="A task this one waits for (repeatable).")
@click.option("--idempotency-key", metavar="KEY", help="Creating again with the same key returns the first task.")
@click.option("--max-attempts", type=int, default=3, show_default=True)
@click.option("--not-before", callback=_when, metavar="WHEN", help="Not before this time: ISO 8601 or +N[s|m|h|d].")
@click.option("--status", type=click.Choice(sorted(s.value for s in CREATE_STATUSES)),
              help="triage or todo to park it; default: ready when it may run.")
@click.option("--metadata", callback=_json_object, metavar="JSON", help="A small JSON object kept with the task.")
@click.option("--by", "created_by", default=_user, show_default="$USER", help="Who creates it.")
@board_options
@json_option
@pass_app
def create(app: App, title: str, body: str, body_file: IO[str] | None, lane: str | None, priority: int,
           parents: tuple[str, ...], idempotency_key: str | None, max_attempts: int, not_before: datetime | None,
           status: str | None, metadata: dict[str, Any] | None, created_by: str, as_json: bool) -> None:
    """Create a task; it lands in ready, or todo/scheduled while parents or not-before hold it."""
    if body_file is not None:
        body = _read_text(body_file, "--body-file")
    task = app.board.create(title, body=body, assignee=lane, priority=priority, parents=parents,
                            idempotency_key=idempotency_key, max_attempts=max_attempts, not_before=not_before,
                            status=status, metadata=metadata, created_by=created_by)
    _print_task(task, as_json)


@click.command()
@click.argument("task_id", metavar="ID")
@board_options
@json_option
@pass_app
def show(app: App, task_id: str, as_json: bool) -> None:
    """A task with its comments, events and runs."""
    board = app.board
    task = board.get(task_id)
    kids = queries.children(board, task.id)
    comments = board.comments(task.id)
    history = board.history(task.id)
    runs = runs_of(history)
    if as_json:
        emit_json({"task": render.task_json(task), "children": kids,
                   "comments": [c.model_dump(mode="json") for c in comments],
                   "events": [e.model_dump(mode="json") for e in history],
                   "runs": [r.model_dump(mode="json") for r in runs]})
        return
    for line in render.detail(task, kids):
        out(line)
    for title, lines in (("runs", [render.run_line(r) for r in runs]),
                         ("comments", [render.comment_line(c) for c in comments]),
                         ("events", [render.history_line(e) for e in history])):
        if lines:
            out()
            out(style(f"{title} ({len(lines)})", bold=True))
            for line in lines:
                out(line)


@click.command(name="list", epilog="""\b
Examples:
  kanban list --status ready --status running --lane gpu
  kanban list -s blocked --json | jq -r '.[] | "\\(.id) \\(.block_reason)"'
""")
@click.option("--status", "-s", "statuses", type=STATUS, multiple=True, help="Only these statuses (repeatable).")
@click.option("--lane", metavar="LANE", help="Only this lane.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=100, show_default=True)
@board_options
@json_option
@pass_app
def list_(app: App, statuses: tuple[str, ...], lane: str | None, limit: int, as_json: bool) -> None:
    """Tasks in creation order, filtered by status and lane."""
    board = app.board
    hint_if_unknown(board)
    found: list[Task] = []
    for status in statuses or (None,):
        found += board.list(status=status, assignee=lane, limit=limit + 1)
    found.sort(key=lambda t: int(t.id))
    more = len(found) > limit
    found = found[:limit]
    if as_json:
        emit_json([render.task_json(t) for t in found])
        return
    at = render.now()
    for t in found:
        out(f"{render.status_label(t.status, f'{t.status.value:<9}')} {render.card(t, at)}")
    if more:
        click.echo(f"(first {limit} shown; raise --limit for more)", err=True)


@click.command()
@click.argument("task_id", metavar="ID")
@click.argument("status", type=STATUS, metavar="STATUS")
@click.option("--reason", help="Why (kept in the task's history).")
@board_options
@json_option
@pass_app
def move(app: App, task_id: str, status: str, reason: str | None, as_json: bool) -> None:
    """Move a task to another status (never into or out of running)."""
    _print_task(app.board.move(task_id, status, reason=reason), as_json)


@click.command()
@click.argument("task_id", metavar="ID")
@click.option("--reason", "-r", required=True, help="Why it cannot go on.")
@click.option("--kind", default="manual", show_default=True, help="A word to group blocked tasks by.")
@board_options
@json_option
@pass_app
def block(app: App, task_id: str, reason: str, kind: str, as_json: bool) -> None:
    """Block a task, with a reason."""
    _print_task(app.board.block(task_id, reason=reason, kind=kind), as_json)


@click.command()
@click.argument("task_id", metavar="ID")
@board_options
@json_option
@pass_app
def unblock(app: App, task_id: str, as_json: bool) -> None:
    """Unblock a task: back to ready (or todo/scheduled while parents or not-before hold it)."""
    _print_task(app.board.unblock(task_id), as_json)


@click.command()
@click.argument("task_id", metavar="ID")
@click.argument("body", required=False)
@click.option("--file", "body_file", type=click.File("r", encoding="utf-8"), help="Read the comment from a file ('-': stdin).")
@click.option("--author", default=_user, show_default="$USER")
@board_options
@json_option
@pass_app
def comment(app: App, task_id: str, body: str | None, body_file: IO[str] | None, author: str, as_json: bool) -> None:
    """Add a comment to a task (BODY, or --file)."""
    if body_file is not None:
        body = _read_text(body_file, "--file")
    if not body:
        raise click.UsageError("give the comment as BODY or --file")
    c = app.board.comment(task_id, author=author, body=body)
    if as_json:
        emit_json(c.model_dump(mode="json"))
    else:
        out(f"commented on #{c.task_id} (seq {c.seq})")
