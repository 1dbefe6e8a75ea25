"""The snapshotter's private working copy: a SQLite file brought forward in place.

Only the snapshotter (holding the lock) opens it. It is never published as
is: :mod:`snapshot.publisher` copies it to a new file. Each batch of changes
is one SQLite transaction, so a kill leaves it at some earlier whole state,
which its ``snapshot_meta`` describes; a working copy that cannot be read is
simply rebuilt from Redis. A full resync fills a new file instead and swaps
it in whole (:meth:`WorkingCopy.rebuild`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import schema
from .publisher import fsync_file

#: Outcome of a run per event kind: (run status, outcome). 'claimed' opens a run.
RUN_ENDS = {
    "completed": ("done", "completed"),
    "failed": ("failed", "failed"),
    "reclaimed": ("timed_out", "reclaimed"),
    "requeued": ("crashed", "restored"),
}


#: The events just inserted (id > ?) that open or end a run, in order.
_RUN_EVENTS = ("SELECT task_id, kind, payload, created_at FROM task_events WHERE id > ? AND kind IN ("
               + ", ".join(f"'{kind}'" for kind in ("claimed", *RUN_ENDS)) + ") ORDER BY id")

#: Rows from a JSON array (text) of history lines / comments, parsed by SQLite.
_EVENTS_INSERT = (
    "INSERT INTO task_events (task_id, kind, payload, created_at, seq) "
    "SELECT CAST(json_extract(value, '$.task_id') AS TEXT), json_extract(value, '$.kind'), "
    "CASE json_type(value, '$.data') WHEN 'object' THEN json_extract(value, '$.data') ELSE '{}' END, "
    "CAST(json_extract(value, '$.at') AS INTEGER) / 1000.0, CAST(json_extract(value, '$.seq') AS INTEGER) "
    "FROM json_each(?) ORDER BY key")
_COMMENTS_INSERT = (
    "INSERT OR REPLACE INTO task_comments (id, task_id, author, body, created_at) "
    "SELECT CAST(json_extract(value, '$.seq') AS INTEGER), CAST(json_extract(value, '$.task_id') AS TEXT), "
    "json_extract(value, '$.author'), json_extract(value, '$.body'), "
    "CAST(json_extract(value, '$.created_at') AS INTEGER) / 1000.0 FROM json_each(?) ORDER BY key")


def work_path(db_path: Path) -> Path:
    """Where the working copy of the snapshot ``db_path`` lives (hidden, same directory)."""
    return db_path.with_name(f".{db_path.name}.work")


def rebuild_path(path: Path) -> Path:
    """Where a full resync builds the new working copy that replaces ``path``."""
    return path.with_name(f"{path.name}.new")


class WorkingCopy:
    """The working SQLite copy of one board.

    Args:
        path: the working file; when missing or unreadable, the copy starts empty
            (and the file is written at the first commit).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rebuilding = False
        rebuild_path(path).unlink(missing_ok=True)  # left by a killed rebuild
        self._start()

    def _start(self) -> None:
        """Open the copy; one that is missing or unreadable starts as a :meth:`rebuild` (nothing in it to keep)."""
        if self.path.exists():
            try:
                self.conn = self._open()
                return
            except sqlite3.DatabaseError:
                self.discard()
        self._new_file()

    def _open(self) -> sqlite3.Connection:
        # the run daemon keeps it open across ticks, which run on the scheduler's threads one at a time
        conn = schema.connect(str(self.path), any_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            schema.create(conn)
            found = schema.read_meta(conn).get("schema_version")
            if found is not None and found != str(schema.SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"working copy has schema {found}")
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    @property
    def meta(self) -> dict[str, str]:
        return schema.read_meta(self.conn)

    @property
    def seq(self) -> int:
        return int(self.meta.get("seq", -1))

    def close(self) -> None:
        """Close the copy; a rebuild not committed yet is dropped."""
        self.conn.close()
        if self._rebuilding:
            rebuild_path(self.path).unlink(missing_ok=True)
            self._rebuilding = False

    def discard(self) -> None:
        """Remove the file (and its WAL) so the next open starts empty."""
        self._remove_journals()
        self.path.unlink(missing_ok=True)

    def _remove_journals(self) -> None:
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def rebuild(self) -> None:
        """Start the copy over, empty, in a new file that :meth:`commit` puts in its place.

        For a full resync. Emptying the copy in place would write the board
        three times (the deleted and the new pages into the WAL, then again
        at the checkpoint); the new file takes it once, with no journal and
        no syncs: it is fsynced whole before it is renamed over the copy, and
        a kill or :meth:`rollback` before that leaves the old copy as it was.
        """
        if self._rebuilding and self.conn.total_changes == 0:
            return  # already a new, empty file
        self.close()
        self._new_file()

    def _new_file(self) -> None:
        fresh = rebuild_path(self.path)
        fresh.unlink(missing_ok=True)
        conn = schema.connect(str(fresh), any_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            schema.create(conn)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        self.conn = conn
        self._rebuilding = True

    # -- applying ---------------------------------------------------------

    def put_tasks(self, states: Iterable[Mapping[str, str]], *, fresh: bool = False) -> None:
        """Insert or replace tasks by their full hash state; links follow their parents.

        ``fresh``: the tasks are not in the copy yet (a full resync), so there are no old links to drop.
        """
        states = list(states)
        if not fresh:
            self.conn.executemany("DELETE FROM task_links WHERE child_id = ?", [(f["id"],) for f in states])
        self.conn.executemany(schema.TASK_INSERT, [schema.task_row(f) for f in states])
        self.conn.executemany("INSERT OR IGNORE INTO task_links (parent_id, child_id) VALUES (?, ?)",
                              [(p, f["id"]) for f in states for p in schema.parents(f)])

    def put_events(self, events: str) -> None:
        """Append task events (a JSON array of history lines) in order, keeping task_runs in step."""
        if events == "[]":
            return
        last = self.conn.execute("SELECT coalesce(max(id), 0) FROM task_events").fetchone()[0]
        self.conn.execute(_EVENTS_INSERT, (events,))
        for tid, kind, payload, at in self.conn.execute(_RUN_EVENTS, (last,)).fetchall():
            self._track_run(tid, kind, json.loads(payload), at)

    def _track_run(self, tid: str, kind: str, data: Mapping[str, Any], at: float | None) -> None:
        if kind == "claimed":
            profile = self.conn.execute("SELECT assignee FROM tasks WHERE id = ?", (tid,)).fetchone()
            self.conn.execute(
                "INSERT INTO task_runs (task_id, profile, status, claim_lock, started_at, attempt) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                (tid, profile[0] if profile else None, data.get("worker"), at, data.get("attempt")))
        elif kind in RUN_ENDS:
            status, outcome = RUN_ENDS[kind]
            if kind == "failed" and "retry_in_ms" not in data:
                outcome = "gave_up"
            self.conn.execute(
                "UPDATE task_runs SET status = ?, outcome = ?, ended_at = ?, error = ? "
                "WHERE id = (SELECT MAX(id) FROM task_runs WHERE task_id = ? AND status = 'running')",
                (status, outcome, at, data.get("error"), tid))

    def put_comments(self, comments: str) -> None:
        """Insert or replace comments (a JSON array of comment lines)."""
        if comments != "[]":
            self.conn.execute(_COMMENTS_INSERT, (comments,))

    def drop_after(self, task_ids: Iterable[str], seq: int) -> None:
        """Forget events, runs and comments of these tasks newer than ``seq`` (they are replayed)."""
        ids = list(task_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" for _ in chunk)
            self.conn.execute(f"DELETE FROM task_events WHERE seq > ? AND task_id IN ({marks})", (seq, *chunk))
            self.conn.execute(f"DELETE FROM task_comments WHERE id > ? AND task_id IN ({marks})", (seq, *chunk))

    def rebuild_runs(self, task_ids: Iterable[str]) -> None:
        """Recompute task_runs of these tasks from their events (after drop_after)."""
        for tid in task_ids:
            self.conn.execute("DELETE FROM task_runs WHERE task_id = ?", (tid,))
            for kind, payload, at in self.conn.execute(
                    "SELECT kind, payload, created_at FROM task_events WHERE task_id = ? ORDER BY id", (tid,)
            ).fetchall():
                self._track_run(tid, kind, json.loads(payload or "{}"), at)

    def set_meta(self, meta: Mapping[str, Any]) -> None:
        count = self.conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        schema.write_meta(self.conn, {**meta, "task_count": count, "schema_version": schema.SCHEMA_VERSION})

    def commit(self) -> None:
        self.conn.commit()
        if self._rebuilding:
            fresh = rebuild_path(self.path)
            self.conn.close()
            fsync_file(fresh)
            # a -wal of the old copy must never be read as the new one's (its connection, closed
            # by rebuild(), checkpointed and removed it: this only matters after a crash)
            self._remove_journals()
            os.rename(fresh, self.path)
            self._rebuilding = False
            self.conn = self._open()

    def rollback(self) -> None:
        """Undo the open transaction; in a rebuild, drop the new file and reopen the old copy."""
        if self._rebuilding:
            self.close()
            self._start()
        else:
            self.conn.rollback()
