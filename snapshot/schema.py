"""The SQLite schema of a snapshot, and the mapping between task hashes and rows.

Table and column names follow hermes-agent's ``kanban.db`` where the meaning
matches, so its read-only tools can read a snapshot: times are epoch seconds
(REAL here, with millisecond precision, so a restore gets the exact value
back). Columns of our own (``rev``, ``attempts``, ...) are added beside them;
hash fields the schema does not know are kept in ``tasks.extra`` (JSON) so
nothing is lost. The claim token is never written: a snapshot is readable by
anyone who can read the file, and a restore turns running tasks back to ready.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

SCHEMA_VERSION = 1

#: Hash fields never written to a snapshot (see the module docstring).
SECRET_FIELDS = frozenset({"claim_token"})

#: (column, hash field, kind) of the tasks table; kind is "text", "int" or "time".
TASK_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "id", "text"),
    ("board", "board", "text"),
    ("title", "title", "text"),
    ("body", "body", "text"),
    ("assignee", "assignee", "text"),
    ("status", "status", "text"),
    ("priority", "priority", "int"),
    ("created_by", "created_by", "text"),
    ("created_at", "created_at", "time"),
    ("updated_at", "updated_at", "time"),
    ("started_at", "started_at", "time"),
    ("completed_at", "completed_at", "time"),
    ("claim_lock", "claim_worker", "text"),
    ("claim_expires", "claim_expires_at", "time"),
    ("claimed_at", "claimed_at", "time"),
    ("last_heartbeat_at", "heartbeat_at", "time"),
    ("claim_ttl_ms", "claim_ttl", "int"),
    ("result", "result", "text"),
    ("idempotency_key", "idempotency_key", "text"),
    ("last_failure_error", "error", "text"),
    ("block_kind", "block_kind", "text"),
    ("block_reason", "block_reason", "text"),
    ("not_before", "not_before", "time"),
    ("attempts", "attempts", "int"),
    ("max_attempts", "max_attempts", "int"),
    ("parents", "parents", "text"),
    ("metadata", "metadata", "text"),
    ("progress", "progress", "text"),
    ("rev", "rev", "int"),
)
_KNOWN_FIELDS = frozenset(f for _, f, _ in TASK_COLUMNS) | SECRET_FIELDS
_SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "time": "REAL"}

DDL = f"""
CREATE TABLE IF NOT EXISTS snapshot_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    {", ".join(f"{c} {_SQL_TYPES[k]}" + (" PRIMARY KEY" if c == "id" else "") for c, _, k in TASK_COLUMNS)},
    extra TEXT
);
CREATE TABLE IF NOT EXISTS task_links (
    parent_id TEXT NOT NULL,
    child_id  TEXT NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);
CREATE TABLE IF NOT EXISTS task_comments (
    id         INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS task_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    run_id     INTEGER,
    kind       TEXT NOT NULL,
    payload    TEXT,
    created_at REAL NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS task_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     TEXT NOT NULL,
    profile     TEXT,
    status      TEXT NOT NULL,
    claim_lock  TEXT,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    outcome     TEXT,
    error       TEXT,
    attempt     INTEGER
);
CREATE INDEX IF NOT EXISTS idx_tasks_assignee_status ON tasks(assignee, status);
CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS idx_links_child ON task_links(child_id);
CREATE INDEX IF NOT EXISTS idx_comments_task ON task_comments(task_id, created_at);
CREATE INDEX IF NOT EXISTS idx_events_task ON task_events(task_id, seq);
CREATE INDEX IF NOT EXISTS idx_runs_task ON task_runs(task_id, started_at);
"""

#: snapshot_meta keys every sound snapshot has.
REQUIRED_META = ("board", "seq", "taken_at", "schema_version", "tool_version", "incarnation", "task_count")

TASK_INSERT = (f"INSERT OR REPLACE INTO tasks ({', '.join(c for c, _, _ in TASK_COLUMNS)}, extra) "
               f"VALUES ({', '.join('?' for _ in TASK_COLUMNS)}, ?)")


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(DDL)


def ms_to_s(value: Any) -> float | None:
    """Epoch ms (any numeric text) as epoch seconds; ``None`` for unset."""
    if value in (None, ""):
        return None
    return int(float(value)) / 1000


def s_to_ms(value: float | None) -> int | None:
    return None if value is None else round(value * 1000)


def task_row(fields: Mapping[str, str]) -> tuple[Any, ...]:
    """The tasks row of a task hash (the same flat strings as the change log)."""
    row: list[Any] = []
    for _, field, kind in TASK_COLUMNS:
        value = fields.get(field)
        if value is None or value == "":
            row.append(None if value is None else ("" if kind == "text" else None))
        elif kind == "int":
            row.append(int(float(value)))
        elif kind == "time":
            row.append(ms_to_s(value))
        else:
            row.append(value)
    extra = {k: v for k, v in fields.items() if k not in _KNOWN_FIELDS}
    row.append(json.dumps(extra, separators=(",", ":")) if extra else None)
    return tuple(row)


def task_fields(row: Mapping[str, Any] | sqlite3.Row) -> dict[str, str]:
    """The task hash of a tasks row: the inverse of :func:`task_row` (without the claim token)."""
    fields: dict[str, str] = {}
    for column, field, kind in TASK_COLUMNS:
        value = row[column]
        if value is None:
            continue
        fields[field] = str(s_to_ms(value)) if kind == "time" else str(value)
    if row["extra"]:
        fields.update(json.loads(row["extra"]))
    return fields


def ms_sql(column: str, *, text: bool = True) -> str:
    """SQL for :func:`s_to_ms` of ``column`` (as text, like a hash field, unless ``text`` is false)."""
    ms = f"CAST(round({column} * 1000) AS INTEGER)"
    return f"CAST({ms} AS TEXT)" if text else ms


def _field_sql(column: str, kind: str) -> str:
    return ms_sql(column) if kind == "time" else f"CAST({column} AS TEXT)" if kind == "int" else column


#: SQL for the JSON text of :func:`task_fields` of a tasks row, written by SQLite: a
#: restore turns 100,000 rows into hashes. json_patch drops the NULL columns and adds ``extra``.
TASK_FIELDS_SQL = (
    "json_patch(json_patch('{}', json_object("
    + ", ".join(f"'{field}', {_field_sql(column, kind)}" for column, field, kind in TASK_COLUMNS)
    + ")), coalesce(extra, '{}'))")


def parents(fields: Mapping[str, str]) -> list[str]:
    raw = fields.get("parents")
    return [str(p) for p in json.loads(raw)] if raw and raw not in ("{}", "[]") else []


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute("SELECT key, value FROM snapshot_meta")}


def write_meta(conn: sqlite3.Connection, meta: Mapping[str, Any]) -> None:
    conn.executemany("INSERT OR REPLACE INTO snapshot_meta (key, value) VALUES (?, ?)",
                     [(k, str(v)) for k, v in meta.items()])


def connect(path: str, *, readonly: bool = False, any_thread: bool = False) -> sqlite3.Connection:
    """A connection with rows addressable by column name (read-only opens never create).

    ``any_thread``: usable from threads other than the opening one (the caller
    makes sure only one uses it at a time).
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=not any_thread)
    else:
        conn = sqlite3.connect(path, check_same_thread=not any_thread)
    conn.row_factory = sqlite3.Row
    return conn
