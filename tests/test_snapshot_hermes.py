"""import-hermes: a hermes-agent kanban.db becomes a working board."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kanban_redis import Board, Status
from snapshot.hermes import NotHermes, import_hermes
from snapshot.restore import BoardExists

#: The core of hermes-agent's schema (its column names and units: epoch seconds).
HERMES_DDL = """
CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT, assignee TEXT, status TEXT NOT NULL,
    priority INTEGER DEFAULT 0, created_by TEXT, created_at INTEGER NOT NULL, started_at INTEGER,
    completed_at INTEGER, workspace_kind TEXT NOT NULL DEFAULT 'scratch', claim_lock TEXT, claim_expires INTEGER,
    result TEXT, idempotency_key TEXT, block_kind TEXT);
CREATE TABLE task_links (parent_id TEXT NOT NULL, child_id TEXT NOT NULL, PRIMARY KEY (parent_id, child_id));
CREATE TABLE task_comments (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, author TEXT NOT NULL,
    body TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE task_events (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, run_id INTEGER,
    kind TEXT NOT NULL, payload TEXT, created_at INTEGER NOT NULL);
"""


def hermes_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(HERMES_DDL)
    conn.executemany("INSERT INTO tasks (id, title, assignee, status, priority, created_at, completed_at, result, "
                     "claim_lock, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                         ("t_aaaa", "design", "coder", "done", 1, 1_700_000_000, 1_700_000_100, "shipped it",
                          None, "idem-1"),
                         ("t_bbbb", "build", "coder", "ready", 0, 1_700_000_010, None, None, None, None),
                         ("t_cccc", "test", "coder", "todo", 0, 1_700_000_020, None, None, None, None),
                         ("t_dddd", "deploy", "ops", "running", 0, 1_700_000_030, None, None, "host:12", None),
                         ("t_eeee", "later", None, "scheduled", 0, 1_700_000_040, None, None, None, None),
                     ])
    conn.executemany("INSERT INTO task_links VALUES (?, ?)", [("t_aaaa", "t_bbbb"), ("t_bbbb", "t_cccc")])
    conn.execute("INSERT INTO task_comments (task_id, author, body, created_at) VALUES "
                 "('t_aaaa', 'ann', 'looks good', 1700000050)")
    conn.execute("INSERT INTO task_events (task_id, kind, payload, created_at) VALUES "
                 "('t_aaaa', 'completed', '{\"by\": \"coder\"}', 1700000100)")
    conn.commit()
    conn.close()
    return path


def test_import_hermes_makes_a_working_board(r: Any, tmp_path: Path) -> None:
    result = import_hermes(r, "h", hermes_db(tmp_path / "kanban.db"))
    assert result.tasks == 5 and result.requeued == 1
    b = Board(r, "h")
    by_hermes = {t.metadata["hermes_id"]: t for t in b.list()}
    design = by_hermes["t_aaaa"]
    assert design.status == Status.DONE and design.result == "shipped it"
    assert design.completed_at is not None and design.completed_at.timestamp() == 1_700_000_100
    assert by_hermes["t_cccc"].parents == [by_hermes["t_bbbb"].id]
    assert by_hermes["t_dddd"].status == Status.READY and by_hermes["t_eeee"].status == Status.TRIAGE
    assert [c.body for c in b.comments(design.id)] == ["looks good"]
    assert b.history(design.id)[0].kind == "completed"
    assert b.create("again", idempotency_key="idem-1").id == design.id
    c = b.claim(assignee="coder", worker="w")
    assert c is not None and c.task.id == by_hermes["t_bbbb"].id
    b.complete(c.task.id, c.token)
    assert b.get(by_hermes["t_cccc"].id).status == Status.READY
    with pytest.raises(BoardExists):
        import_hermes(r, "h", tmp_path / "kanban.db")


def test_import_refuses_a_file_that_is_not_hermes(r: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite" * 100)
    with pytest.raises(NotHermes):
        import_hermes(r, "h", junk)


def test_import_hermes_command(redis_url: str, real_redis: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from snapshot.cli import Exit, main

    path = hermes_db(tmp_path / "kanban.db")
    env = {"REDIS_URL": redis_url}
    res = CliRunner().invoke(main, ["import-hermes", str(path), "--board", "h"], env=env)
    assert res.exit_code == 0 and "imported 5 tasks" in res.output
    res = CliRunner().invoke(main, ["import-hermes", str(path), "--board", "h"], env=env)
    assert res.exit_code == Exit.BOARD_EXISTS
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 5000)
    res = CliRunner().invoke(main, ["import-hermes", str(junk), "--board", "h2"], env=env)
    assert res.exit_code == Exit.NO_SNAPSHOT and res.output.count("\n") == 1
