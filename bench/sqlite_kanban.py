"""The baseline: a kanban board in one SQLite file, claimed the way hermes-agent does it.

WAL journal, ``synchronous=FULL``, a busy timeout, and every transition in a
``BEGIN IMMEDIATE`` transaction whose UPDATE is a compare-and-swap on
``status``/``claim_lock``, with a row in ``task_events`` (and ``task_runs``)
per transition. Every process opens the same file.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
CLAIM_TTL_S = 900

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT,
    assignee TEXT,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    claim_lock TEXT,
    claim_expires INTEGER,
    worker_pid INTEGER,
    result TEXT
);
CREATE INDEX IF NOT EXISTS idx_tasks_ready ON tasks(status, assignee, priority, id);
CREATE TABLE IF NOT EXISTS task_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS task_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    claim_lock TEXT NOT NULL,
    worker_pid INTEGER,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT
);
"""


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def init(path: str) -> None:
    conn = connect(path)
    conn.executescript(SCHEMA)
    conn.close()


class SqliteBoard:
    """create / claim / complete on the shared file, one IMMEDIATE transaction each."""

    def __init__(self, path: str) -> None:
        self.conn = connect(path)
        self.pid = os.getpid()

    def _write(self, fn: Callable[[int], T]) -> T:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn(int(time.time()))
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return out

    def create(self, title: str) -> int:
        def tx(now: int) -> int:
            cur = self.conn.execute(
                "INSERT INTO tasks (title, status, created_at) VALUES (?, 'ready', ?)", (title, now))
            self.conn.execute("INSERT INTO task_events (task_id, kind, created_at) VALUES (?, 'created', ?)",
                              (cur.lastrowid, now))
            return int(cur.lastrowid or 0)

        return self._write(tx)

    def claim(self) -> tuple[int, str] | None:
        lock = secrets.token_hex(16)

        def tx(now: int) -> tuple[int, str] | None:
            row = self.conn.execute(
                "SELECT id FROM tasks WHERE status = 'ready' AND assignee IS NULL "
                "ORDER BY priority DESC, id LIMIT 1").fetchone()
            if row is None:
                return None
            cur = self.conn.execute(
                "UPDATE tasks SET status = 'running', claim_lock = ?, claim_expires = ?, worker_pid = ?, "
                "started_at = ? WHERE id = ? AND status = 'ready' AND claim_lock IS NULL",
                (lock, now + CLAIM_TTL_S, self.pid, now, row[0]))
            if cur.rowcount != 1:
                return None
            self.conn.execute("INSERT INTO task_runs (task_id, claim_lock, worker_pid, started_at) "
                              "VALUES (?, ?, ?, ?)", (row[0], lock, self.pid, now))
            self.conn.execute("INSERT INTO task_events (task_id, kind, created_at) VALUES (?, 'claimed', ?)",
                              (row[0], now))
            return int(row[0]), lock

        return self._write(tx)

    def complete(self, task_id: int, lock: str) -> bool:
        def tx(now: int) -> bool:
            cur = self.conn.execute(
                "UPDATE tasks SET status = 'done', completed_at = ?, claim_lock = NULL, claim_expires = NULL "
                "WHERE id = ? AND status = 'running' AND claim_lock = ?", (now, task_id, lock))
            if cur.rowcount != 1:
                return False
            self.conn.execute("UPDATE task_runs SET ended_at = ?, outcome = 'completed' "
                              "WHERE task_id = ? AND claim_lock = ?", (now, task_id, lock))
            self.conn.execute("INSERT INTO task_events (task_id, kind, created_at) VALUES (?, 'completed', ?)",
                              (task_id, now))
            return True

        return self._write(tx)

    def close(self) -> None:
        self.conn.close()
