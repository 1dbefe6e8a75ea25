"""Restoring a board into Redis from the newest sound snapshot.

Steps, each safe to repeat: ``restore_begin`` sets the board's `restoring`
marker (every transition refuses to run under it) or reports that the board
holds data; the board's keys are deleted in small UNLINK batches; tasks are
loaded by ``restore_load`` in batches that each take a few milliseconds;
``restore_end`` sets seq, a new incarnation, requeues tasks that were running,
logs the restore and removes the marker last. A restore killed at any point
leaves the marker, so the board stays closed until the restore is run again.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from kanban_redis.connection import reply_text
from kanban_redis.connection import translate
from kanban_redis.errors import ErrorCode, KanbanError, error_for
from kanban_redis.keys import BoardKeys
from kanban_redis.scripts import Scripts

from . import schema
from .publisher import kept_copies
from .verify import Verdict, verify
from .wire import Wire

#: Tasks per restore_load call (each call stays within a few ms), and the most calls sent
#: at once (a group is sent while Redis runs the group before it).
LOAD_BATCH = 25
LOAD_PIPELINE = 16
#: Running tasks requeued per restore_end call.
REQUEUE_BATCH = 200
#: Keys per SCAN step / UNLINK when clearing the board.
WIPE_BATCH = 500


class NoSoundSnapshot(KanbanError):
    """Neither the snapshot file nor any kept copy passed verification."""


class BoardExists(KanbanError):
    """The board holds data in Redis and replacing it was not asked for."""


@dataclass
class RestoreResult:
    board: str
    source: Path
    seq: int
    tasks: int = 0
    requeued: int = 0
    skipped: bool = False
    notes: list[str] = field(default_factory=list)


def choose(db_path: Path) -> tuple[Verdict, list[str]]:
    """The newest sound snapshot (``db_path`` first, then kept copies) and why others were passed over.

    Raises:
        NoSoundSnapshot: none is sound; the message lists each file's problem.
    """
    notes: list[str] = []
    for candidate in [db_path, *kept_copies(db_path)]:
        v = verify(candidate)
        if v.ok:
            return v, notes
        notes.append(f"{candidate}: {v.reason}")
    raise NoSoundSnapshot(f"no sound snapshot for {db_path}: " + ("; ".join(notes) or "no file"))


#: A restore_load batch: one JSON text per task (see restore_load.lua), joined into ARGV[4] as sent.
Batch = list[str]

#: The history and comment lines of every task, as JSON string literals (the inverse of
#: WorkingCopy.put_events / put_comments, built by SQLite). All three queries go in task id
#: order (as text: the order of the indexes on task ids), so their rows stream from the
#: first one on instead of after a sort of the whole table.
_EVENT_LINES = (
    "SELECT task_id, json_quote(json_object('task_id', task_id, 'seq', seq, "
    f"'at', {schema.ms_sql('created_at', text=False)}, 'kind', kind, 'data', json(coalesce(payload, '{{}}'))) || '') "
    "FROM task_events ORDER BY task_id, id")
_COMMENT_LINES = (
    "SELECT task_id, json_quote(json_object('task_id', task_id, 'seq', id, 'author', author, "
    f"'body', body, 'created_at', {schema.ms_sql('created_at', text=False)}) || '') "
    "FROM task_comments ORDER BY task_id, id")
_TASKS = f"SELECT id, {schema.TASK_FIELDS_SQL} FROM tasks ORDER BY id"


def read_batches(conn: sqlite3.Connection, size: int) -> Iterator[Batch]:
    """restore_load items from a snapshot, ``size`` tasks at a time.

    Tasks, events and comments are each read in one ordered pass and merged, so
    the cost is one scan of each table whatever the board's size; SQLite writes
    the JSON, Python only joins it.
    """
    events, comments = conn.execute(_EVENT_LINES), conn.execute(_COMMENT_LINES)
    pending_event, pending_comment = next(events, None), next(comments, None)
    batch: Batch = []
    for tid, fields in conn.execute(_TASKS):
        lines: list[str] = []
        while pending_event is not None and pending_event[0] <= tid:
            if pending_event[0] == tid:
                lines.append(pending_event[1])
            pending_event = next(events, None)
        notes: list[str] = []
        while pending_comment is not None and pending_comment[0] <= tid:
            if pending_comment[0] == tid:
                notes.append(pending_comment[1])
            pending_comment = next(comments, None)
        batch.append(f'{{"fields":{fields},"events":[{",".join(lines)}],"comments":[{",".join(notes)}]}}')
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def snapshot_batches(path: Path) -> Generator[Batch, None, None]:
    """:func:`read_batches` of the snapshot file at ``path`` (opened read-only)."""
    conn = schema.connect(str(path), readonly=True)
    conn.row_factory = None
    try:
        yield from read_batches(conn, LOAD_BATCH)
    finally:
        conn.close()


class _Restorer:
    def __init__(self, client: Any, board: str) -> None:
        self.redis = client
        self.keys = BoardKeys(board)
        self.scripts = Scripts(client)

    def args(self, *extra: Any) -> dict[str, Any]:
        return {"keys": self.keys.script_keys(), "args": [self.keys.prefix, "", *extra]}

    def run(self, name: str, *extra: Any) -> list[Any]:
        with translate(self.redis):
            reply = self.scripts[name](**self.args(*extra))
        return self.check(reply)

    @staticmethod
    def check(reply: list[Any]) -> list[Any]:
        if int(reply[0]) != ErrorCode.OK:
            raise error_for(int(reply[0]), reply_text(reply[1]))
        return [reply_text(x) if isinstance(x, bytes) else x for x in reply]

    def wipe(self) -> None:
        """Delete every key of the board but the restore marker."""
        with translate(self.redis):
            cursor = 0
            while True:
                cursor, found = self.redis.scan(cursor, match=self.keys.pattern, count=WIPE_BATCH)
                doomed = [k for k in found if reply_text(k) != self.keys.restoring]
                if doomed:
                    self.redis.unlink(*doomed)
                if int(cursor) == 0:
                    return

    def load(self, marker: str, batches: Iterator[Batch], progress: Callable[[int], None] | None) -> int:
        """Send ``batches`` to restore_load as they are read; the number of tasks sent.

        A group of calls is sent before the replies of the group before it are
        read, so the file is read here while Redis loads; groups grow 1, 2, 4,
        ... LOAD_PIPELINE calls, so Redis starts on the first batch.
        """
        with translate(self.redis):
            run = self.scripts.command("restore_load")
        a = self.args(marker)
        call = (*run, len(a["keys"]), *a["keys"], *a["args"])
        total, depth = 0, 1
        running: list[Batch] = []
        group: list[Batch] = []
        with Wire(self.redis) as wire:
            for batch in batches:
                group.append(batch)
                total += len(batch)
                if len(group) >= depth:
                    wire.send([(*call, _items(b)) for b in group])
                    self._settle(wire, running, marker, progress)
                    running, group, depth = group, [], min(2 * depth, LOAD_PIPELINE)
            if group:
                wire.send([(*call, _items(b)) for b in group])
            self._settle(wire, running, marker, progress)
            self._settle(wire, group, marker, progress)
        return total

    def _settle(self, wire: Wire, group: list[Batch], marker: str, progress: Callable[[int], None] | None) -> None:
        for batch, reply in zip(group, wire.receive(len(group))):
            if self.scripts.missing(reply):  # scripts flushed meanwhile: a batch can be sent again
                with translate(self.redis):
                    reply = self.scripts["restore_load"](**self.args(marker, _items(batch)))
            elif isinstance(reply, Exception):
                raise reply
            n = int(self.check(reply)[1])
            if progress:
                progress(n)


def _items(batch: Batch) -> str:
    return f"[{','.join(batch)}]"


@dataclass(frozen=True)
class Source:
    """Where a board comes from: the file, its seq and identity, and how to read its tasks."""

    path: Path
    seq: int
    task_count: int
    created_at: str
    origin: str  # becomes the board's restored_from
    batches: Callable[[], Generator[Batch, None, None]]  # closed when the load ends, however it ends


def load_board(client: Any, board: str, source: Source, *, force: bool = False, if_empty: bool = False,
               notes: list[str] | None = None, progress: Callable[[int], None] | None = None,
               on_start: Callable[[RestoreResult, int], None] | None = None) -> RestoreResult:
    """Replace ``board`` in Redis by ``source`` under the restoring marker (see the module docstring).

    Args:
        force: replace a board that holds data in Redis.
        if_empty: when the board holds data, do nothing (``skipped``) instead of failing.
        progress: called with the number of tasks each loaded batch added.
        on_start: called with the result so far and the task count before loading.

    Raises:
        BoardExists, BoardRestoring (another restore took over), RedisUnavailable.
    """
    result = RestoreResult(board, source.path, source.seq, notes=list(notes or []))
    r = _Restorer(client, board)
    marker = (f"restore of seq {source.seq} from {source.path} by {socket.gethostname()} pid {os.getpid()} "
              f"[{secrets.token_hex(4)}]")
    begun = r.run("restore_begin", marker, "1" if force else "0")
    if begun[1] == "exists":
        if if_empty:
            result.skipped = True
            return result
        seq, count = int(begun[2]), int(begun[3])
        newer = f", newer than the snapshot's {source.seq}" if seq > source.seq else ""
        raise BoardExists(f"board {board!r} exists in Redis ({count} tasks, seq {seq}{newer}); "
                          "--force replaces it, --if-empty skips")
    if begun[1] == "resumed":
        result.notes.append(f"took over an unfinished restore ({begun[2]})")
    elif force and int(begun[2]) > source.seq:
        result.notes.append(f"replaced board {board!r} at seq {begun[2]}, newer than the snapshot's {source.seq}")
    r.wipe()
    if on_start:
        on_start(result, source.task_count)
    # closed here even when the load fails, not whenever (and in whichever thread) it is collected:
    # the snapshot's SQLite connection belongs to this thread
    with closing(source.batches()) as batches:
        result.tasks = r.load(marker, batches, progress)
    while True:
        reply = r.run("restore_end", marker, source.seq, secrets.token_hex(8), source.created_at, source.origin,
                      REQUEUE_BATCH)
        result.requeued += int(reply[1])
        if int(reply[2]) == 0:
            return result


def restore(client: Any, board: str, db_path: Path, **options: Any) -> RestoreResult:
    """Restore ``board`` from the newest sound snapshot of ``db_path``; options as :func:`load_board`.

    Raises:
        NoSoundSnapshot, KanbanError (the snapshot is of another board), and what
        :func:`load_board` raises.
    """
    verdict, notes = choose(db_path)
    meta = verdict.meta
    if meta["board"] != board:
        raise KanbanError(f"{verdict.path} is a snapshot of board {meta['board']!r}, not {board!r}")

    source = Source(verdict.path, verdict.seq, int(meta["task_count"]), meta.get("board_created_at", ""),
                    meta["incarnation"], lambda: snapshot_batches(verdict.path))
    return load_board(client, board, source, notes=notes, **options)
