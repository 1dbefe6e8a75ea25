"""``make demo`` end to end, at a small scale: the whole story must hold and leave nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fakeredis
import pytest
import redis

from clitools import clean_env
from kanban_redis import Board, Status, localdefault
from kanban_redis.demo.story import differences, read_snapshot
from kanban_redis.demo.tasks import LANES
from kanban_redis.local import find_server
from snapshot import fscheck
from snapshot.verify import verify

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SCALE = "0.25"  # one request per gateway: 36 tasks
TASKS = 12 * len(LANES)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    if fscheck.check(tmp_path):
        pytest.skip(f"{tmp_path} is on a filesystem where the snapshotter refuses to write")
    return tmp_path / "home"


def demo(home: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "kanban_redis.demo"], capture_output=True, text=True, timeout=80,
                          env=clean_env(HOME=str(home), XDG_DATA_HOME=None, KANBAN_DEMO_SCALE=SCALE, **env))


def still_running(marker: str) -> list[str]:
    """Command lines of processes that mention ``marker`` (the demo's paths)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and proc.name != str(os.getpid()):
            found.append(cmdline)
    return found


def check_snapshot(db: Path) -> None:
    assert verify(db).ok
    meta, tasks = read_snapshot(db)
    assert meta["task_count"] == str(TASKS)
    assert all(t.status == Status.DONE for t in tasks.values())
    assert {t.assignee for t in tasks.values()} == set(LANES)
    assert sum(1 for t in tasks.values() if t.parents) == 12 * (len(LANES) - 1)


@pytest.mark.skipif(find_server() is None, reason="no redis-server to start")
def test_the_demo_on_the_local_default_tells_the_whole_story(home: Path) -> None:
    done = demo(home, REDIS_URL=None)
    assert done.returncode == 0, done.stdout + done.stderr
    demo_dir = home / ".local" / "share" / "kanban-redis" / "demo"
    db = demo_dir / "kanban.db"
    out = done.stdout
    assert f"kanban.db: {db}" in out
    assert "started local Redis" in out and str(demo_dir / "redis") in out
    # the shutdown lost Redis, the restore brought back every snapshotted task, the workers went on
    shutdown = out.index("WSL shuts down")
    assert "board 'demo' in Redis now: seq 0, 0 tasks" in out[shutdown:]
    assert f"restored {TASKS} tasks" in out
    assert f"nothing lost: all {TASKS} snapshotted tasks are back" in out
    left = int(out.split(" still to do")[0].rsplit("; ", 1)[1])
    assert 0 < left < TASKS and f"all {TASKS} tasks done" in out
    check_snapshot(db)
    # the demo's Redis is stopped and no worker or snapshotter is left
    assert localdefault.running(demo_dir) is None
    assert still_running(str(home)) == []
    # the user's own local default was never started
    assert not (home / ".local" / "share" / "kanban-redis" / "server.json").exists()


def test_with_redis_url_the_demo_touches_only_its_own_board(home: Path, redis_url: str,
                                                             real_redis: redis.Redis) -> None:
    mine = Board.from_url(redis_url, board="mine")
    task = mine.create("keep me", assignee="research")
    seq = mine.seq
    done = demo(home, REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"nothing lost: all {TASKS} snapshotted tasks are back" in done.stdout
    check_snapshot(home / ".local" / "share" / "kanban-redis" / "demo" / "kanban.db")
    # the user's board is as it was, and the demo's board and rq queues are gone
    assert mine.get(task.id).status == Status.READY and mine.seq == seq
    assert real_redis.keys("kb:{demo-*") == []
    assert real_redis.smembers("rq:queues") == set()
    assert still_running(str(home)) == []


def test_the_restore_check_names_what_was_lost() -> None:
    board = Board(fakeredis.FakeRedis(decode_responses=True), "t")
    a = board.create("a", assignee="code")
    b = board.create("b", assignee="code", parents=[a.id])
    claim = board.claim(assignee="code", worker="w", ttl=30)
    assert claim is not None
    running = board.get(a.id)
    snapshotted = {a.id: running, b.id: b}
    requeued = running.model_copy(update={"status": Status.READY})
    assert differences(snapshotted, {a.id: requeued, b.id: b}) == []
    assert differences(snapshotted, {a.id: requeued}) == [f"#{b.id} is missing"]
    assert differences(snapshotted, {a.id: requeued.model_copy(update={"title": "x"}), b.id: b}) == \
        [f"#{a.id} title differs"]
