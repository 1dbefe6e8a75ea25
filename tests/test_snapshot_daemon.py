"""``kanban-snapshot run`` as a real process: final snapshot on SIGTERM, and kill -9 at random moments."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from kanban_redis import Board
from snapshot.cli import Exit
from snapshot.lock import read_holder
from snapshot.publisher import kept_copies, temp_prefix
from snapshot.verify import verify
from snapshot.writer import rebuild_path, work_path

pytestmark = pytest.mark.slow

#: A writer process: parents and children, claims, completions and comments.
WRITER = """
import sys, itertools, time
from kanban_redis import Board
b = Board.from_url(sys.argv[1], board="t")
for i in itertools.count():
    p = b.create(f"parent {i}", assignee="w")
    b.create(f"child {i}", parents=[p.id], assignee="w")
    c = b.claim(assignee="w", worker=f"writer {sys.argv[2]}")
    if c is not None:
        b.comment(c.task.id, author="writer", body=str(i))
        b.complete(c.task.id, c.token)
    time.sleep(0.01)
"""


@contextmanager
def daemon(redis_url: str, db: Path, interval: float) -> Iterator[subprocess.Popen[str]]:
    """A `kanban-snapshot run` process for the block (killed at its end if still running)."""
    env = {**os.environ, "REDIS_URL": redis_url, "KANBAN_BOARD": "t", "KANBAN_DB": str(db)}
    proc = subprocess.Popen([sys.executable, "-m", "snapshot", "run", "--interval", str(interval), "--keep", "3"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]


def nice_values(pid: int) -> list[int]:
    """The nice value of each thread of process ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    stats = [(Path(f"/proc/{pid}/task") / tid / "stat").read_text() for tid in os.listdir(f"/proc/{pid}/task")]
    return [int(stat.rsplit(")", 1)[1].split()[16]) for stat in stats]


def published_seq(db: Path, at_least: int, timeout: float = 20) -> int:
    """The seq of the snapshot at ``db`` once it reaches ``at_least`` (or what it is at the timeout)."""
    deadline = time.monotonic() + timeout
    while (not db.exists() or verify(db).seq < at_least) and time.monotonic() < deadline:
        time.sleep(0.05)
    return verify(db).seq


def coherent(db: Path) -> None:
    """The file is sound and no child ran or finished before its parent was done."""
    v = verify(db)
    assert v.ok, v.reason
    conn = sqlite3.connect(db)
    try:
        bad = conn.execute(
            "SELECT c.id FROM tasks c JOIN task_links l ON l.child_id = c.id JOIN tasks p ON p.id = l.parent_id "
            "WHERE c.status IN ('ready', 'running', 'done') AND p.status != 'done'").fetchall()
    finally:
        conn.close()
    assert not bad, f"children ahead of their parents in seq {v.seq}: {bad}"


def test_final_snapshot_on_sigterm_and_refusal_exit(redis_url: str, real_redis: redis.Redis, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    b = Board(real_redis, "t")
    b.create("first")
    with daemon(redis_url, db, 30) as proc:
        assert published_seq(db, 1) == 1
        b.create("second")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert verify(db).seq == b.seq == 2
    real_redis.flushdb()
    with daemon(redis_url, db, 30) as proc:
        assert proc.wait(timeout=20) == Exit.REFUSED
        assert "run kanban-snapshot restore" in proc.stderr.read()  # type: ignore[union-attr]


def test_scheduled_ticks_publish_each_change(redis_url: str, real_redis: redis.Redis, tmp_path: Path) -> None:
    """Ticks run on the scheduler's threads and share one working copy, kept open between them;
    every thread of the daemon runs at nice 10."""
    db = tmp_path / "kanban.db"
    b = Board(real_redis, "t")
    b.create("first")
    with daemon(redis_url, db, 0.2) as proc:
        for expected in range(1, 4):
            assert published_seq(db, expected) == expected and proc.poll() is None
            b.create(f"task {expected + 1}")
        threads = nice_values(proc.pid)
        assert len(threads) > 1 and set(threads) == {max(os.getpriority(os.PRIO_PROCESS, 0), 10)}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None and "Error" not in proc.stderr.read()
    assert verify(db).seq == b.seq == 4


#: Forks a `kanban-snapshot run` daemon per input line (imports paid once, so kills come fast);
#: prints the child's pid, then how it ended.
LAUNCHER = """
import os, sys
from snapshot.cli import main
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        try:
            main(line.split(), standalone_mode=True)
        finally:
            os._exit(1)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def test_kill_9_at_random_moments_leaves_a_sound_file(redis_url: str, real_redis: redis.Redis,
                                                      tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    rng = random.Random(7)
    env = {**os.environ, "REDIS_URL": redis_url, "KANBAN_BOARD": "t", "KANBAN_DB": str(db)}
    Board(real_redis, "t").create("seed")
    subprocess.run([sys.executable, "-m", "snapshot", "now"], env=env, check=True, capture_output=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, redis_url, str(i)], stderr=subprocess.DEVNULL)
               for i in range(2)]
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert launcher.stdin is not None and launcher.stdout is not None
    seqs = []
    try:
        deadline = time.monotonic() + 30
        while Board(real_redis, "t").seq < 50 and time.monotonic() < deadline:  # writers are up
            time.sleep(0.05)
        for i in range(22):
            if i % 4 == 1:  # the working copy lost: this run rebuilds it in full (and may be killed doing it)
                for p in tmp_path.glob(work_path(db).name + "*"):
                    p.unlink()
            launcher.stdin.write("run --interval 0.01 --keep 3\n")
            launcher.stdin.flush()
            pid = int(launcher.stdout.readline())
            deadline = time.monotonic() + 10
            while read_holder(db).get("pid") != pid and time.monotonic() < deadline:
                time.sleep(0.005)
            if i % 4 == 3:  # every 4th run is let publish once first, so the file moves on under any load
                before, deadline = verify(db).seq, time.monotonic() + 15
                while verify(db).seq == before and time.monotonic() < deadline:
                    time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05 if i % 4 == 1 else 0.5))  # (a rebuild takes a few ms)
            os.kill(pid, signal.SIGKILL)
            assert int(launcher.stdout.readline()) == signal.SIGKILL
            if db.exists():
                coherent(db)
                seqs.append(verify(db).seq)
            # one interrupted publish may leave its temp file with SQLite's sidecars
            temps = {re.sub(r"-(journal|wal|shm)$", "", p.name) for p in tmp_path.glob(temp_prefix(db) + "*")}
            assert len(temps) <= 1, temps
            assert len(kept_copies(db)) <= 3  # --keep 3, whenever the kill came
        assert all(w.poll() is None for w in writers), "a writer died"
    finally:
        for w in writers:
            w.kill()
            w.wait()
        launcher.stdin.close()
        launcher.wait(timeout=10)
        launcher.stdout.close()
    assert len(seqs) == 22 and seqs == sorted(seqs) and seqs[-1] > seqs[0]
    for copy in kept_copies(db):
        coherent(copy)
    # once the writers stop, one more run publishes the board exactly, and cleans up
    final = Board(real_redis, "t").seq
    with daemon(redis_url, db, 30) as proc:
        assert published_seq(db, final) == final
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert verify(db).seq == final
    assert not list(tmp_path.glob(temp_prefix(db) + "*")) and len(kept_copies(db)) <= 3
    assert not rebuild_path(work_path(db)).exists()
