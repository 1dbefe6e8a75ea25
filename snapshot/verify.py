"""Is a snapshot file sound? Integrity, schema version, meta, and the board's own rules.

Used by ``kanban-snapshot verify``/``list`` and by restore, which falls back
to the newest sound kept copy when ``kanban.db`` is not.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import schema


@dataclass(frozen=True)
class Verdict:
    path: Path
    ok: bool
    reason: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return int(self.meta.get("seq", -1))


def _problem(conn: sqlite3.Connection, meta: dict[str, str]) -> str | None:
    verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        return f"integrity check failed: {verdict}"
    missing = [k for k in schema.REQUIRED_META if k not in meta]
    if missing:
        return f"snapshot_meta lacks {', '.join(missing)}"
    if meta["schema_version"] != str(schema.SCHEMA_VERSION):
        return f"schema version {meta['schema_version']} (this tool reads {schema.SCHEMA_VERSION})"
    count, top = conn.execute("SELECT COUNT(*), MAX(rev) FROM tasks").fetchone()
    if count != int(meta["task_count"]):
        return f"{count} tasks but snapshot_meta says {meta['task_count']}"
    if top is not None and top > int(meta["seq"]):
        return f"a task has rev {top}, after the snapshot's seq {meta['seq']}"
    orphan = conn.execute("SELECT child_id FROM task_links WHERE child_id NOT IN (SELECT id FROM tasks) "
                          "OR parent_id NOT IN (SELECT id FROM tasks) LIMIT 1").fetchone()
    if orphan:
        return f"task_links names a task that is not in the snapshot ({orphan[0]})"
    return None


def peek(path: Path) -> dict[str, str] | None:
    """The snapshot_meta of ``path`` without checking the file (None if unreadable or incomplete)."""
    try:
        conn = schema.connect(str(path), readonly=True)
        try:
            meta = schema.read_meta(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return meta if all(k in meta for k in schema.REQUIRED_META) else None


def verify(path: Path) -> Verdict:
    """The verdict on one file; never raises for a bad file."""
    if not path.is_file():
        return Verdict(path, False, "no such file")
    try:
        conn = schema.connect(str(path), readonly=True)
        try:
            try:
                meta = schema.read_meta(conn)
            except sqlite3.OperationalError:
                return Verdict(path, False, "not a snapshot (no snapshot_meta table)")
            problem = _problem(conn, meta)
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return Verdict(path, False, f"not a sound SQLite file: {e}")
    return Verdict(path, problem is None, problem or "ok", meta)
