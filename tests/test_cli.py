"""The ``kanban`` CLI through its real entry point, on the real server."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from kanban_redis import Board
from kanban_redis.cli.health import snapshot_check

from clitools import KANBAN, clean_env, run


@pytest.fixture
def env(real_redis: Any, redis_url: str, tmp_path: Path) -> dict[str, str]:
    # XDG_DATA_HOME in tmp: a stray local-default start could never touch the real home.
    return clean_env(REDIS_URL=redis_url, XDG_DATA_HOME=str(tmp_path / "xdg"))


@pytest.fixture
def board(env: dict[str, str], redis_url: str) -> Board:
    return Board.from_url(redis_url, "default")


def ok(args: list[str], env: dict[str, str], **kw: Any) -> str:
    done = run(args, env, **kw)
    assert done.returncode == 0, done.stderr
    return done.stdout


def js(args: list[str], env: dict[str, str]) -> Any:
    return json.loads(ok([*args, "--json"], env))


def test_create_show_list_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    first = js(["create", "Resize images", "--lane", "gpu", "-p", "5", "--metadata", '{"size": 3}'], env)
    assert (first["status"], first["assignee"], first["priority"], first["metadata"]) == ("ready", "gpu", 5, {"size": 3})
    body = tmp_path / "body.txt"
    body.write_text("line one\nline two\n")
    child = js(["create", "Publish", "--parent", first["id"], "--body-file", str(body)], env)
    assert child["status"] == "todo" and child["parents"] == [first["id"]] and child["body"] == "line one\nline two\n"
    later = js(["create", "Later", "--not-before", "+1h", "--by", "ops"], env)
    assert later["status"] == "scheduled" and later["created_by"] == "ops"

    shown = js(["show", first["id"]], env)
    assert shown["task"]["title"] == "Resize images" and shown["children"] == [child["id"]]
    assert [e["kind"] for e in shown["events"]] == ["created"]

    assert [t["id"] for t in js(["list", "--lane", "gpu"], env)] == [first["id"]]
    assert [t["id"] for t in js(["list", "-s", "scheduled", "-s", "todo", "-n", "5"], env)] == [child["id"], later["id"]]
    assert [t["id"] for t in js(["list", "-n", "2"], env)] == [first["id"], child["id"]]

    text = ok(["show", first["id"]], env)
    assert "#1 Resize images" in text and "children" in text and "\x1b[" not in text  # no colour off a terminal


def test_body_from_stdin(env: dict[str, str]) -> None:
    task = json.loads(ok(["create", "Piped", "--body-file", "-", "--status", "triage", "--json"], env,
                         stdin="from stdin"))
    assert (task["status"], task["body"]) == ("triage", "from stdin")


def test_changes_by_hand_and_their_history(env: dict[str, str]) -> None:
    tid = js(["create", "Fix the build"], env)["id"]
    assert js(["block", tid, "--reason", "waiting for credentials", "--kind", "external"], env)["block_kind"] == "external"
    assert js(["unblock", tid], env)["status"] == "ready"
    assert js(["move", tid, "todo", "--reason", "not yet"], env)["status"] == "todo"
    assert ok(["comment", tid, "ship it", "--author", "ana"], env).startswith(f"commented on #{tid}")
    shown = js(["show", tid], env)
    assert [c["author"] for c in shown["comments"]] == ["ana"]
    assert [e["kind"] for e in shown["events"]] == ["created", "blocked", "unblocked", "moved", "commented"]
    text = ok(["show", tid], env)
    assert "ana: ship it" in text and "events (5)" in text


def test_runs_are_derived_from_claim_fail_reclaim_complete(env: dict[str, str], board: Board) -> None:
    tid = board.create("flaky", max_attempts=3).id
    claim = board.claim(worker="w1", ttl=60)
    assert claim is not None
    board.fail(tid, claim.token, error="boom\nlast line", delay=0)
    claim = board.claim(worker="w2", ttl=60)
    assert claim is not None
    board.complete(tid, claim.token, result={"ok": True})
    runs = js(["show", tid], env)["runs"]
    assert [(r["attempt"], r["worker"], r["outcome"]) for r in runs] == [(1, "w1", "failed"), (2, "w2", "done")]
    assert runs[0]["error"] == "boom\nlast line" and runs[1]["ended_at"] is not None
    text = ok(["show", tid], env)
    assert "attempt 1  w1" in text and "failed" in text and ": last line" in text


def test_board_columns_counts_and_lanes(env: dict[str, str], board: Board) -> None:
    a = board.create("a", assignee="gpu", priority=1)
    board.create("b", assignee="gpu", priority=9)
    board.create("c")
    board.block(a.id, reason="later")
    for title, lane in (("d1", "gpu"), ("d2", None), ("d3", "gpu")):
        board.move(board.create(title, assignee=lane, status="triage").id, "done")
    view = js(["board"], env)
    assert view["counts"]["ready"] == 2 and view["counts"]["blocked"] == 1 and view["seq"] == board.seq
    assert view["lanes"] == {"": {"ready": 1}, "gpu": {"ready": 1, "blocked": 1}}  # open statuses only
    assert [t["title"] for t in view["columns"]["ready"]] == ["b", "c"]  # priority first
    assert [t["title"] for t in view["columns"]["done"]] == ["d3", "d2", "d1"]  # newest first
    gpu = js(["board", "--lane", "gpu", "--limit", "1"], env)
    assert gpu["counts"]["ready"] == 1 and [t["title"] for t in gpu["columns"]["ready"]] == ["b"]
    assert gpu["counts"]["done"] == 2 and [t["title"] for t in gpu["columns"]["done"]] == ["d3"]
    text = ok(["board"], env)
    assert "READY (2)" in text and "BLOCKED (1)" in text and "gpu" in text and "\x1b[" not in text


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float = 30) -> str:
    """Output of ``proc`` up to and including ``needle`` (fails after ``timeout`` seconds)."""
    assert proc.stdout is not None
    fd, seen = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"exited {proc.wait()} before {needle!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and b"Traceback" not in err, err


def test_board_watch_redraws_on_change_and_stops_on_sigterm(env: dict[str, str], board: Board) -> None:
    board.create("before")
    proc = subprocess.Popen([KANBAN, "board", "--watch", "--interval", "30"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        _read_until(proc, "before")
        board.create("after")  # long before the 30 s interval: the change log wakes it
        _read_until(proc, "after")
    finally:
        _stop(proc)


def test_tail_prints_and_follows_the_change_log(env: dict[str, str], board: Board) -> None:
    for title in ("one", "two", "three"):
        board.create(title)
    last_two = [json.loads(line) for line in ok(["tail", "-n", "2", "--json"], env).splitlines()]
    assert [e["tasks"][0]["title"] for e in last_two] == ["two", "three"] and last_two[-1]["seq"] == board.seq
    after = [json.loads(line) for line in ok(["tail", "--after", "1", "--json"], env).splitlines()]
    assert [e["seq"] for e in after] == [2, 3]
    assert "create" in ok(["tail"], env).splitlines()[0]

    proc = subprocess.Popen([KANBAN, "tail", "-n", "1", "--follow", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        seen = _read_until(proc, "three")  # it has read the log: what comes next is followed
        board.create("four")
        seen += _read_until(proc, "four")
    finally:
        _stop(proc, signal.SIGINT)  # Ctrl-C ends a follow quietly too
    assert [json.loads(line)["tasks"][0]["title"] for line in seen.splitlines()] == ["three", "four"]


def test_stats_counts_dead_letters_and_log(env: dict[str, str], board: Board) -> None:
    tid = board.create("once", max_attempts=1, assignee="x").id
    claim = board.claim(assignee="x", worker="w", ttl=60)
    assert claim is not None
    board.fail(tid, claim.token, error="gave up")
    board.create("waiting")
    stats = js(["stats"], env)
    assert stats["counts"]["blocked"] == 1 and stats["dead_letter"] == 1
    assert stats["blocked_by_kind"] == {"transient": 1} and stats["tasks"] == 2
    assert stats["log"]["last_seq"] == board.seq and stats["oldest_ready_seconds"] is not None
    assert "dead_letter" in ok(["stats"], env)


def test_board_from_env_and_option_and_the_boards_here(env: dict[str, str], redis_url: str) -> None:
    ok(["create", "on ops"], {**env, "KANBAN_BOARD": "ops"})
    assert [t["board"] for t in js(["list"], {**env, "KANBAN_BOARD": "ops"})] == ["ops"]
    assert len(js(["list", "-b", "ops"], env)) == 1
    typo = run(["list", "--board", "opz", "--json"], {**env, "KANBAN_BOARD": "ops"})
    assert typo.returncode == 0 and json.loads(typo.stdout) == []
    assert typo.stderr == "kanban: board 'opz' has no tasks yet (boards here: ops)\n"
    ok(["create", "on default"], env)
    assert js(["boards"], env) == [{"board": "default", "seq": 1, "tasks": 1}, {"board": "ops", "seq": 1, "tasks": 1}]


def _snapshot(path: Path, **meta: Any) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT INTO snapshot_meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
    db.commit()
    db.close()
    return path


def test_health(env: dict[str, str], board: Board, tmp_path: Path) -> None:
    board.create("x")
    board.create("y")
    report = js(["health"], env)
    assert report["ok"] is True and [c["name"] for c in report["checks"]] == ["redis", "board"]
    stale = _snapshot(tmp_path / "stale.db", board="default", seq=1, taken_at=time.time() - 200)
    done = run(["health", "--db", str(stale)], env)
    assert done.returncode == 6 and "FAIL  snapshot" in done.stdout and "3 intervals" in done.stdout
    ok(["health", "--snapshot-interval", "100"], {**env, "KANBAN_DB": str(stale)})


@pytest.mark.parametrize(("meta", "healthy"), [
    ({"seq": 2, "taken_at": -3600}, True),  # old but current: nothing to lose
    ({"seq": 1, "taken_at": -10}, True),  # behind, within 3 intervals
    ({"seq": 1, "taken_at": -200}, False),  # behind and older than 3 x 60 s
    ({"seq": 5, "taken_at": 0}, False),  # Redis is behind the snapshot
    ({"seq": 2, "taken_at": 0, "board": "other"}, False),
    ({"seq": 1, "taken_at": "2020-01-01T00:00:00+00:00"}, False),  # ISO time
    ({"seq": 1, "taken_at": "ms"}, True),  # epoch milliseconds
    ({"seq": 1}, False),  # no taken_at: not a snapshot
])
def test_snapshot_check(tmp_path: Path, meta: dict[str, Any], healthy: bool) -> None:
    now = time.time()
    values = {"board": "default", **meta}
    if isinstance(values.get("taken_at"), int):
        values["taken_at"] = now + values["taken_at"]
    elif values.get("taken_at") == "ms":
        values["taken_at"] = int(now * 1000)
    check = snapshot_check(_snapshot(tmp_path / "s.db", **values), "default", 2, 60.0)
    assert check.ok is healthy, check.detail
    assert not snapshot_check(tmp_path / "missing.db", "default", 2, 60.0).ok


def test_health_unreachable_redis_masks_the_password(env: dict[str, str]) -> None:
    done = run(["health", "--json"], {**env, "REDIS_URL": "redis://app:s3cret@127.0.0.1:1/0"})
    assert done.returncode == 5
    report = json.loads(done.stdout)
    assert report["ok"] is False and "app:***@127.0.0.1:1" in report["checks"][0]["detail"]
    assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["list", "--board", "Bad Slug"], 2, "not a valid slug"),
    (["show", "424242"], 3, "task 424242 not found"),
    (["move", "1", "sideways"], 2, "'sideways' is not one of"),
    (["create", "x", "--body-file", "/no/such/file"], 2, "No such file"),
    (["create", "x", "--body-file", "/bin/sh"], 2, "not UTF-8 text"),
    (["create", "x", "--not-before", "tomorrowish"], 2, "ISO 8601"),
    (["create", "x", "--not-before", "+99999999999999d"], 2, "too far ahead"),
    (["create", "x", "--metadata", "[1]"], 2, "JSON object"),
    (["create", "x", "--parent", "999"], 3, "not found"),
    (["create", ""], 2, "title"),
    (["comment", "1"], 2, "BODY or --file"),
    (["list", "--redis-url", "redis://app:s3cret@127.0.0.1:1/0"], 5, "redis://app:***@127.0.0.1:1/0"),
    (["list", "--redis-url", "http://nowhere"], 2, "redis_url"),
    (["frobnicate"], 2, "No such command"),
])
def test_user_mistakes_give_one_line_and_a_named_exit_status(env: dict[str, str], args: list[str], code: int,
                                                             message: str) -> None:
    done = run(args, env)
    assert done.returncode == code
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("kanban: error: ")
    assert message in done.stderr and "Traceback" not in done.stderr and "s3cret" not in done.stderr
    assert done.stdout == ""


def test_wrong_state_is_a_conflict(env: dict[str, str], board: Board) -> None:
    parent = board.create("parent")
    child = board.create("child", parents=[parent.id])
    done = run(["move", child.id, "ready"], env)
    assert done.returncode == 4 and "parents not done" in done.stderr and done.stderr.count("\n") == 1
    board.claim(worker="w", ttl=60)
    assert run(["block", parent.id, "--reason", "no"], env).returncode == 4


def test_help_has_examples_and_exit_statuses(env: dict[str, str]) -> None:
    text = ok(["--help"], env)
    assert "Examples:" in text and "kanban board --watch" in text and "5 Redis unreachable" in text
    for command in ("board", "boards", "create", "show", "list", "move", "block", "unblock", "comment", "tail", "stats",
                    "health", "local"):
        assert f"  {command} " in text
    assert "--redis-url" in ok(["list", "--help"], env) and "KANBAN_BOARD" in ok(["board", "--help"], env)
