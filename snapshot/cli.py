"""``kanban-snapshot``: publish, verify and restore board snapshots.

Exit codes (also in docs/snapshots.md) are :class:`Exit`; a user mistake or
a refusal prints one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from kanban_redis.config import Settings
from kanban_redis.connection import connect
from kanban_redis.errors import BoardRestoring, InvalidInput, KanbanError, RedisUnavailable
from kanban_redis import logs
from kanban_redis.localdefault import url_or_local
from kanban_redis.logs import event_logger

from . import boot, daemon
from .fscheck import UnsafeFilesystem, check
from .hermes import NotHermes, import_hermes
from .job import ALL, SnapshotJob, boards_on_disk, db_for, list_boards
from .lock import Locked, is_held, read_holder
from .priority import BACKGROUND_NICE, run_in_background
from .publisher import DEFAULT_KEEP, kept_copies
from .reader import BoardReader
from .restore import BoardExists, NoSoundSnapshot, RestoreResult, restore
from .snapshotter import Outcome, WouldClobber
from .sync import RedisBehind
from .verify import verify

#: Boards from this many tasks on get a progress bar while they are restored (when stderr is a terminal).
PROGRESS_MIN_TASKS = 1000

#: Where kanban.db goes when neither --db nor KANBAN_DB says.
DEFAULT_DB = Path.home() / ".local" / "share" / "kanban-redis" / "kanban.db"


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # any other failure, named on stderr
    USAGE = 2  # bad options (click)
    REFUSED = 3  # would clobber a snapshot holding more than Redis: run restore
    LOCKED = 4  # another snapshotter holds the file's lock
    UNSAFE_FS = 5  # tmpfs / 9p / drvfs / NFS / CIFS without --force
    REDIS_DOWN = 6  # Redis unreachable
    NO_SNAPSHOT = 7  # no sound snapshot (verify, restore)
    BOARD_EXISTS = 8  # restore onto a board that holds data, without --force/--if-empty
    RESTORING = 9  # a restore of the board is running


_CODES: tuple[tuple[type[BaseException], Exit], ...] = (
    (WouldClobber, Exit.REFUSED), (RedisBehind, Exit.REFUSED), (Locked, Exit.LOCKED),
    (UnsafeFilesystem, Exit.UNSAFE_FS), (RedisUnavailable, Exit.REDIS_DOWN),
    (NoSoundSnapshot, Exit.NO_SNAPSHOT), (NotHermes, Exit.NO_SNAPSHOT), (BoardExists, Exit.BOARD_EXISTS),
    (BoardRestoring, Exit.RESTORING),
)


def exit_code(error: BaseException) -> Exit:
    return next((code for kind, code in _CODES if isinstance(error, kind)), Exit.ERROR)


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except KanbanError as e:
        click.echo(f"kanban-snapshot: {e}", err=True)
        sys.exit(exit_code(e))


def _warn(text: str) -> None:
    click.echo(text, err=True)


def _client(url: str | None) -> Any:
    return connect(Settings.from_env(redis_url=url_or_local(url, "kanban-snapshot")))


def _age(ms: str | None) -> str:
    if not ms:
        return "?"
    seconds = time.time() - int(ms) / 1000
    return f"{seconds:.0f}s ago" if seconds < 3600 else f"{seconds / 3600:.1f}h ago"


redis_option = click.option("--redis-url", envvar="REDIS_URL", default=None,
                            help="Redis URL (env REDIS_URL; default: the local Redis, started if needed).")
board_option = click.option("--board", envvar="KANBAN_BOARD", default="default", show_default=True,
                            help="Board slug, or 'all' for every board (one file each; env KANBAN_BOARD).")
all_option = click.option("--all-boards", is_flag=True, help="Same as --board all.")
db_option = click.option("--db", "db", envvar="KANBAN_DB", default=str(DEFAULT_DB), show_default=True,
                         type=click.Path(dir_okay=False, path_type=Path),
                         help="The snapshot file (env KANBAN_DB); '{board}' in it is replaced by the slug.")
keep_option = click.option("--keep", envvar="KANBAN_SNAPSHOT_KEEP", default=DEFAULT_KEEP, show_default=True,
                           type=click.IntRange(0, 1000), help="Earlier snapshots kept beside the file.")
force_option = click.option("--force", is_flag=True,
                            help="Publish over a snapshot of another board history, or on an unsafe filesystem.")
nice_option = click.option("--nice", envvar="KANBAN_SNAPSHOT_NICE", default=BACKGROUND_NICE, show_default=True,
                           type=click.IntRange(0, 19),
                           help="Run at this nice value or lower priority, so Redis and the gateways get the CPU first.")


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(f: Any) -> Any:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


@click.group(epilog="""\b
Examples:
  kanban-snapshot now --board default --db ~/kanban/kanban.db
  kanban-snapshot run --interval 60
  kanban-snapshot restore --if-empty        # at boot, before the gateways start
  kanban-snapshot verify --db ~/kanban/kanban.db && echo sound
  kanban-snapshot install-boot --lane research --handler myapp.tasks:research
""")
@click.version_option(package_name="kanban-redis")
def main() -> None:
    """Publish point-in-time copies of a board to kanban.db and restore them."""


def _report(outcome: Outcome) -> None:
    if outcome.published:
        click.echo(f"{outcome.board}: published seq {outcome.seq} ({outcome.mode}, {outcome.size} bytes) "
                   f"to {outcome.path}")
    elif outcome.mode == "empty":
        click.echo(f"{outcome.board}: board has no tasks yet; nothing published")
    else:
        click.echo(f"{outcome.board}: unchanged at seq {outcome.seq}; nothing written")


@main.command()
@_options(redis_option, board_option, all_option, db_option, keep_option, force_option, nice_option)
def now(redis_url: str | None, board: str, all_boards: bool, db: Path, keep: int, force: bool, nice: int) -> None:
    """Take and publish one snapshot (nothing is written when the board did not change)."""
    run_in_background(nice)
    with _one_line():
        job = SnapshotJob(_client(redis_url), ALL if all_boards else board, db, keep=keep, force=force, warn=_warn)
        try:
            for outcome in job.tick():
                _report(outcome)
        finally:
            job.close()


@main.command()
@_options(redis_option, board_option, all_option, db_option, keep_option, force_option, nice_option)
@click.option("--interval", envvar="KANBAN_SNAPSHOT_INTERVAL", default=60.0, show_default=True,
              type=click.FloatRange(min=0.01), help="Seconds between snapshots.")
def run(redis_url: str | None, board: str, all_boards: bool, db: Path, keep: int, force: bool, nice: int,
        interval: float) -> None:
    """Snapshot every INTERVAL seconds until SIGTERM/SIGINT, then take a final one."""
    run_in_background(nice)
    with _one_line():
        job = SnapshotJob(_client(redis_url), ALL if all_boards else board, db, keep=keep, force=force, warn=_warn)
        logs.configure()

        def report(outcome: Outcome) -> None:
            _report(outcome)
            event_logger("snapshot", board=outcome.board).info(
                f"snapshot.{outcome.mode}", seq=outcome.seq, published=outcome.published, bytes=outcome.size,
                path=str(outcome.path))

        try:
            error = daemon.run(job, interval, report=report, warn=_warn)
        finally:
            job.close()
        if error is not None:
            raise error


@main.command(name="restore")
@_options(redis_option, board_option, all_option, db_option)
@click.option("--force", is_flag=True, help="Replace the board if it holds data in Redis.")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) if the board holds data in Redis.")
def restore_cmd(redis_url: str | None, board: str, all_boards: bool, db: Path, force: bool, if_empty: bool) -> None:
    """Load the newest sound snapshot (kanban.db, else a kept copy) back into Redis."""
    board = ALL if all_boards else board
    with _one_line():
        client = _client(redis_url)
        for b in (boards_on_disk(db) if board == ALL else [board]):
            _restore_one(client, b, db_for(db, b, board == ALL), force=force, if_empty=if_empty)


def _restore_one(client: Any, board: str, path: Path, *, force: bool, if_empty: bool) -> None:
    if if_empty and not any(p.exists() for p in [path, *kept_copies(path)]):
        click.echo(f"{board}: no snapshot at {path}; nothing to restore (--if-empty)")
        return
    bar: list[Any] = []

    def start(result: RestoreResult, total: int) -> None:
        for note in result.notes:
            _warn(f"note: {note}")
        click.echo(f"{board}: restoring seq {result.seq} from {result.source}")
        if sys.stderr.isatty() and total >= PROGRESS_MIN_TASKS:
            bar.append(click.progressbar(length=total, label="loading tasks", file=sys.stderr))
            bar[0].__enter__()

    try:
        result = restore(client, board, path, force=force, if_empty=if_empty, on_start=start,
                         progress=lambda n: bar[0].update(n) if bar else None)
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
    if result.skipped:
        click.echo(f"{board}: board already holds data in Redis; nothing restored (--if-empty)")
        return
    click.echo(f"{board}: restored {result.tasks} tasks at seq {result.seq} from {result.source}; "
               f"{result.requeued} running tasks back to ready")


@main.command(name="import-hermes")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_options(redis_option, board_option)
@click.option("--force", is_flag=True, help="Replace the board if it holds data in Redis.")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) if the board holds data in Redis.")
def import_hermes_cmd(path: Path, redis_url: str | None, board: str, force: bool, if_empty: bool) -> None:
    """Move a hermes-agent kanban.db at PATH into a board (read-only on PATH)."""
    with _one_line():
        result = import_hermes(_client(redis_url), board, path, force=force, if_empty=if_empty)
        if result.skipped:
            click.echo(f"{board}: board already holds data in Redis; nothing imported (--if-empty)")
            return
        for note in result.notes:
            _warn(f"note: {note}")
        click.echo(f"{board}: imported {result.tasks} tasks from {path}; {result.requeued} running tasks to ready")


@main.command(name="verify")
@db_option
def verify_cmd(db: Path) -> None:
    """Exit 0 only when the file is a sound snapshot (integrity, schema, meta, board rules)."""
    v = verify(db)
    if not v.ok:
        click.echo(f"kanban-snapshot: {db}: {v.reason}", err=True)
        sys.exit(Exit.NO_SNAPSHOT)
    click.echo(f"{db}: sound; board {v.meta['board']} seq {v.seq}, {v.meta['task_count']} tasks, "
               f"taken {v.meta['taken_at']}")


@main.command(name="list")
@db_option
def list_cmd(db: Path) -> None:
    """The snapshot and its kept copies, newest first: seq, time, size, verdict."""
    files = [p for p in [db, *kept_copies(db)] if p.exists()]
    if not files:
        click.echo(f"kanban-snapshot: no snapshot at {db}", err=True)
        sys.exit(Exit.NO_SNAPSHOT)
    for p in files:
        v = verify(p)
        click.echo(f"{p.name}\tseq {v.meta.get('seq', '?')}\t{v.meta.get('taken_at', '?')}\t"
                   f"{p.stat().st_size} bytes\t{v.reason}")


@main.command()
@_options(redis_option, board_option, all_option, db_option)
def status(redis_url: str | None, board: str, all_boards: bool, db: Path) -> None:
    """Board seq in Redis against the snapshot's, the snapshot's age, and the daemon's next run."""
    board = ALL if all_boards else board
    with _one_line():
        client = _client(redis_url)
        for b in (list_boards(client) if board == ALL else [board]):
            path = db_for(db, b, board == ALL)
            head = BoardReader(client, b).head()
            v = verify(path)
            snap = f"snapshot seq {v.seq}, taken {_age(v.meta.get('taken_at_ms'))}" if v.ok else f"snapshot: {v.reason}"
            lag = f", {head.seq - v.seq} behind" if v.ok and head.incarnation == v.meta.get("incarnation") else ""
            holder = read_holder(path) if is_held(path) else {}
            nxt = holder.get("next_run")
            daemon_text = (f"daemon {holder.get('host')} pid {holder.get('pid')}, next run in "
                           f"{max(0.0, nxt - time.time()):.0f}s" if nxt else "no daemon running")
            restoring = f" (restore running: {head.restoring})" if head.restoring else ""
            click.echo(f"{b}: redis seq {head.seq}{restoring}; {snap}{lag}; {daemon_text}")



@main.command(name="install-boot", epilog="""\b
Examples:
  kanban-snapshot install-boot --lane research --lane code --handler myapp.tasks:run
  kanban-snapshot install-boot --redis-url redis://127.0.0.1:6379/0 --interval 30
""")
@_options(redis_option, board_option, db_option)
@click.option("--lane", "lanes", multiple=True, help="A lane whose workers start at boot (repeatable).")
@click.option("--handler", help="The workers' handler, module:function (needed with --lane).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 256),
              help="rq workers per lane.")
@click.option("--interval", envvar="KANBAN_SNAPSHOT_INTERVAL", default=60.0, show_default=True,
              type=click.FloatRange(min=1), help="Seconds between snapshots.")
@click.option("--port", default=boot.DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the Redis that kanban-redis.service runs (without --redis-url).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where the units go [default: ~/.config/systemd/user].")
@click.option("--force", is_flag=True, help="Replace units that differ (edited by hand).")
def install_boot(redis_url: str | None, board: str, db: Path, lanes: tuple[str, ...], handler: str | None,
                 concurrency: int, interval: float, port: int, directory: Path | None, force: bool) -> None:
    """Write systemd user units: Redis, a restore --if-empty, the snapshotter, workers per lane.

    Without --redis-url (or REDIS_URL) kanban-redis.service runs a Redis that
    keeps nothing on disk; the board comes back from kanban.db at every boot.
    """
    with _one_line():
        db = db.absolute()
        unsafe = check(db.parent)
        if unsafe:
            raise UnsafeFilesystem(unsafe.removesuffix(", or pass --force"))
        if lanes and board == ALL:
            raise InvalidInput("--board: workers need one board, not 'all'")
        plan = boot.BootPlan(board=board, db=db, lanes=lanes, handler=handler, interval=interval,
                             redis_url=redis_url, port=port, concurrency=concurrency)
        texts = boot.units(plan)
        target = (directory or boot.user_unit_dir()).absolute()
        written = boot.install(texts, target, force=force, private=urlsplit(plan.url).password is not None)
        db.parent.mkdir(parents=True, exist_ok=True)
        redis_text = f"{plan.url} (your Redis)" if redis_url else f"{plan.url} ({boot.REDIS_UNIT}, in memory)"
        click.echo(f"board {board}, kanban.db {db}, Redis {redis_text}")
        for path, action in written:
            click.echo(f"{action} {path}")
        click.echo("")
        for line in boot.next_steps(plan, target):
            click.echo(line)
