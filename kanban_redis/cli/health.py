"""``health``: is Redis there, is the board usable, is the snapshot fresh.

Exit status: 0 when every check passes, UNAVAILABLE when Redis does not
answer, UNHEALTHY when it answers but another check fails.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from ..board import Board
from ..connection import mask_url, translate
from ..errors import KanbanError, RedisUnavailable
from . import queries
from .common import App, ExitCode, board_options, emit_json, json_option, out, pass_app, style

#: A snapshot behind the board and older than this many intervals fails the check.
STALE_INTERVALS = 3


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SnapshotMeta:
    board: str
    seq: int
    taken_at: datetime


def read_snapshot_meta(path: Path) -> SnapshotMeta:
    """``board``, ``seq`` and ``taken_at`` from a snapshot's ``snapshot_meta`` table (read-only).

    Raises:
        KanbanError: the file is missing, not SQLite, or lacks those rows.
    """
    if not path.is_file():
        raise KanbanError(f"no snapshot at {path}")
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = dict(db.execute("SELECT key, value FROM snapshot_meta WHERE key IN ('board', 'seq', 'taken_at')"))
        finally:
            db.close()
        return SnapshotMeta(board=str(rows["board"]), seq=int(rows["seq"]), taken_at=_time(rows["taken_at"]))
    except (sqlite3.Error, KeyError, ValueError) as e:
        raise KanbanError(f"{path} is not a readable snapshot ({e})") from None


def _time(value: object) -> datetime:
    """Epoch seconds or milliseconds, or ISO 8601 (naive means UTC)."""
    try:
        number = float(str(value))
    except ValueError:
        dt = datetime.fromisoformat(str(value))
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)


def snapshot_check(path: Path, board: str, seq: int, interval: float) -> Check:
    """Fails when the snapshot is of another board, ahead of Redis, or behind and stale."""
    try:
        meta = read_snapshot_meta(path)
    except KanbanError as e:
        return Check("snapshot", False, str(e))
    age = (datetime.now(UTC) - meta.taken_at).total_seconds()
    limit = STALE_INTERVALS * interval
    where = f"{path}: seq {meta.seq}, {age:.0f} s old"
    if meta.board != board:
        return Check("snapshot", False, f"{path} is a snapshot of board {meta.board!r}, not {board!r}")
    if meta.seq > seq:
        return Check("snapshot", False, f"{where}; Redis is behind it (seq {seq}): run kanban-snapshot restore")
    if meta.seq < seq and age > limit:
        return Check("snapshot", False, f"{where}, behind the board (seq {seq}) for over "
                                        f"{STALE_INTERVALS} intervals ({limit:.0f} s): is kanban-snapshot run running?")
    return Check("snapshot", True, where + ("" if meta.seq == seq else f", board at seq {seq}"))


def _redis_check(app: App) -> tuple[Check, Board | None]:
    try:
        url = app.url(start=False)
    except KanbanError as e:
        return Check("redis", False, str(e)), None
    if url is None:
        return Check("redis", False, "no REDIS_URL and the local server is not running "
                                     "(any other kanban command starts it)"), None
    source = "local default" if app.local else "given URL"
    try:
        board = Board.from_url(url, app.board_name)
        with translate(board.redis):
            started = time.perf_counter()
            board.redis.ping()
            ms = (time.perf_counter() - started) * 1000
            version = board.redis.info("server").get("redis_version", "?")
    except RedisUnavailable as e:
        return Check("redis", False, str(e)), None
    return Check("redis", True, f"{mask_url(url)} ({source}), Redis {version}, ping {ms:.1f} ms"), board


@click.command(epilog="""\b
Examples:
  kanban health
  kanban health --db ~/.local/share/kanban-redis/kanban.db --snapshot-interval 30 || alert
  kanban health --json | jq .ok
""")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="KANBAN_DB",
              help="Also check this snapshot file's age [env KANBAN_DB].")
@click.option("--snapshot-interval", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              envvar="KANBAN_SNAPSHOT_INTERVAL", metavar="SECONDS",
              help="The snapshotter's interval [env KANBAN_SNAPSHOT_INTERVAL].")
@board_options
@json_option
@pass_app
@click.pass_context
def health(ctx: click.Context, app: App, db: Path | None, snapshot_interval: float, as_json: bool) -> None:
    """Check Redis, the board and (with --db) the snapshot; the exit status says the verdict.

    A snapshot fails the check when it is behind the board and older than
    3 intervals, when Redis is behind it, or when it cannot be read.
    """
    redis_check, board = _redis_check(app)
    checks = [redis_check]
    if board is not None:
        info = queries.log_info(board)
        seq = board.seq
        counts = queries.counts(board)
        if info["restoring"]:
            checks.append(Check("board", False, f"{board.name}: a restore is running (transitions are refused)"))
        else:
            checks.append(Check("board", True, f"{board.name}: seq {seq}, {sum(counts.values())} tasks"))
        if db is not None:
            checks.append(snapshot_check(db, board.name, seq, snapshot_interval))
    code = ExitCode.OK
    if not redis_check.ok:
        code = ExitCode.UNAVAILABLE
    elif not all(c.ok for c in checks):
        code = ExitCode.UNHEALTHY
    if as_json:
        emit_json({"ok": code == ExitCode.OK, "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            mark = style("ok  ", fg="green") if c.ok else style("FAIL", fg="red", bold=True)
            out(f"{mark}  {c.name:<9} {c.detail}")
        if db is None and board is not None:
            out(f"{style('-   ', dim=True)}  {'snapshot':<9} not checked (give --db or KANBAN_DB)")
    ctx.exit(int(code))
