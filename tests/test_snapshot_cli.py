"""``kanban-snapshot`` commands, exit codes, the one-writer lock and the filesystem check."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from kanban_redis import Board
from snapshot.cli import PROGRESS_MIN_TASKS, Exit, main
from snapshot.fscheck import check, filesystem_of
from snapshot.lock import SnapshotLock
from snapshot.publisher import kept_copies

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw
90 27 0:50 / /mnt/c rw,noatime - 9p drvfs rw,aname=drvfs
91 27 0:51 / /mnt/d rw,noatime - drvfs D: rw
92 27 0:52 / /srv/share rw - nfs4 server:/x rw
93 27 0:53 / /mnt/with\\040space rw - cifs //h/s rw
"""


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """``kanban-snapshot`` in this process (which ``now``/``run`` must not leave at a lower priority)."""
    return CliRunner().invoke(main, list(args), env={"KANBAN_SNAPSHOT_NICE": "0", **(env or {})},
                              catch_exceptions=False)


@pytest.fixture
def env(redis_url: str, real_redis: redis.Redis, tmp_path: Path) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "KANBAN_BOARD": "t", "KANBAN_DB": str(tmp_path / "kanban.db")}


def test_now_verify_list_status(env: dict[str, str], real_redis: redis.Redis, tmp_path: Path) -> None:
    b = Board(real_redis, "t")
    tid = b.create("x").id
    res = cli("now", env=env)
    assert res.exit_code == 0 and "published seq 1 (full" in res.output
    assert "unchanged at seq 1" in cli("now", env=env).output
    b.comment(tid, author="a", body="b")
    assert "(incremental" in cli("now", env=env).output
    res = cli("verify", env=env)
    assert res.exit_code == 0 and "sound; board t seq 2" in res.output
    lines = cli("list", env=env).output.splitlines()
    assert len(lines) == 2 and "seq 2" in lines[0] and "seq 1" in lines[1] and lines[1].endswith("ok")
    b.comment(tid, author="a", body="c")
    res = cli("status", env=env)
    assert res.exit_code == 0 and "redis seq 3; snapshot seq 2" in res.output and "1 behind" in res.output


def test_verify_and_restore_exit_codes(env: dict[str, str], real_redis: redis.Redis, tmp_path: Path) -> None:
    res = cli("verify", env=env)
    assert res.exit_code == Exit.NO_SNAPSHOT and "no such file" in res.output
    Board(real_redis, "t").create("x")
    cli("now", env=env)
    res = cli("restore", env=env)
    assert res.exit_code == Exit.BOARD_EXISTS and "--force" in res.output
    res = cli("restore", "--if-empty", env=env)
    assert res.exit_code == 0 and "nothing restored" in res.output
    real_redis.flushdb()
    res = cli("now", env=env)
    assert res.exit_code == Exit.REFUSED and "run kanban-snapshot restore" in res.output
    res = cli("restore", env=env)
    assert res.exit_code == 0 and "restored 1 tasks at seq 1" in res.output
    assert cli("now", env=env).exit_code == 0


def test_user_mistakes_are_one_line(env: dict[str, str]) -> None:
    res = cli("now", "--board", "Bad Slug!", env=env)
    assert res.exit_code == Exit.ERROR and res.output.count("\n") == 1 and "board" in res.output
    res = cli("now", "--redis-url", "redis://127.0.0.1:1/0", env=env)
    assert res.exit_code == Exit.REDIS_DOWN and res.output.count("\n") == 1
    assert cli("now", "--keep", "-1", env=env).exit_code == Exit.USAGE


def test_all_boards_get_a_file_each(env: dict[str, str], real_redis: redis.Redis, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        Board(real_redis, name).create(f"task of {name}")
    res = cli("now", "--board", "all", env=env)
    assert res.exit_code == 0
    assert (tmp_path / "kanban-alpha.db").exists() and (tmp_path / "kanban-beta.db").exists()
    real_redis.flushdb()
    res = cli("restore", "--all-boards", env=env)
    assert res.exit_code == 0 and "alpha: restored 1" in res.output and "beta: restored 1" in res.output
    assert Board(real_redis, "beta").list()[0].title == "task of beta"


#: Runs ``kanban-snapshot`` with the arguments given, then prints the nice value it left the process at.
NICE_AFTER = ("import os, sys; from snapshot.cli import main; main(sys.argv[1:], standalone_mode=False);"
              "print(os.getpriority(os.PRIO_PROCESS, 0))")


@pytest.mark.parametrize("start, args, expected", [
    (None, [], 10), (None, ["--nice", "0"], 0), (None, ["--nice", "19"], 19), (19, [], 19)])
def test_now_runs_at_a_lower_cpu_priority(env: dict[str, str], start: int | None, args: list[str],
                                          expected: int) -> None:
    """At nice 10 by default (never at a higher priority than it was started at)."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    done = subprocess.run([sys.executable, "-c", NICE_AFTER, "now", *args], env={**os.environ, **env},
                          preexec_fn=None if start is None else lambda: os.setpriority(os.PRIO_PROCESS, 0, start),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == max(base, expected)


def test_second_snapshotter_names_the_holder(env: dict[str, str], real_redis: redis.Redis, tmp_path: Path) -> None:
    Board(real_redis, "t").create("x")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from snapshot.lock import SnapshotLock;"
         "SnapshotLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
         str(tmp_path / "kanban.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = subprocess.run([sys.executable, "-m", "snapshot", "now"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == Exit.LOCKED
        assert f"pid {holder.pid}" in done.stderr and os.uname().nodename in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    with SnapshotLock(tmp_path / "kanban.db"):
        pass


def test_filesystem_check(env: dict[str, str], real_redis: redis.Redis) -> None:
    assert filesystem_of(Path("/mnt/c/Users/me"), MOUNTINFO) == ("/mnt/c", "9p")
    assert filesystem_of(Path("/mnt/with space/x"), MOUNTINFO) == ("/mnt/with space", "cifs")
    assert "9p" in (check(Path("/mnt/c/x"), mountinfo=MOUNTINFO) or "")
    assert "drvfs" in (check(Path("/mnt/d"), mountinfo=MOUNTINFO) or "")
    assert "nfs4" in (check(Path("/srv/share/k"), mountinfo=MOUNTINFO) or "")
    assert check(Path("/home/me"), mountinfo=MOUNTINFO) is None
    if not Path("/dev/shm").is_dir() or filesystem_of(Path("/dev/shm"))[1] != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    Board(real_redis, "t").create("x")
    target = Path("/dev/shm") / f"kanban-test-{os.getpid()}"
    db = target / "kanban.db"
    try:
        res = cli("now", "--db", str(db), env=env)
        assert res.exit_code == Exit.UNSAFE_FS and "tmpfs" in res.output and "--force" in res.output
        res = cli("now", "--db", str(db), "--force", env=env)
        assert res.exit_code == 0 and "warning:" in res.output and db.exists()
    finally:
        for p in target.glob("*"):
            p.unlink()
        target.rmdir() if target.exists() else None


def test_kept_copies_never_exceed_keep(env: dict[str, str], real_redis: redis.Redis, tmp_path: Path) -> None:
    b = Board(real_redis, "t")
    tid = b.create("x").id
    for i in range(4):
        b.comment(tid, author="a", body=str(i))
        assert cli("now", "--keep", "2", env=env).exit_code == 0
    assert len(kept_copies(tmp_path / "kanban.db")) == 2


def test_restore_if_empty_without_any_snapshot_is_a_no_op(tmp_path: Path, redis_url: str) -> None:
    """First boot: no kanban.db yet must not block what runs after the restore."""
    for db in (tmp_path / "kanban.db", tmp_path / "missing-dir" / "kanban.db"):
        done = subprocess.run([sys.executable, "-m", "snapshot", "restore", "--board", "fresh", "--db", str(db),
                               "--redis-url", redis_url, "--if-empty"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "nothing to restore" in done.stdout


def test_restore_into_a_missing_directory_is_one_line(tmp_path: Path, redis_url: str) -> None:
    done = subprocess.run([sys.executable, "-m", "snapshot", "restore", "--board", "fresh",
                           "--db", str(tmp_path / "nope" / "kanban.db"), "--redis-url", redis_url],
                          capture_output=True, text=True)
    assert done.returncode == 7 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _restore_stderr(env: dict[str, str], *, tty: bool) -> str:
    """What ``kanban-snapshot restore --force`` writes on stderr when it is a terminal (a pty) or a pipe."""
    command = [sys.executable, "-m", "snapshot", "restore", "--force"]
    if not tty:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.parametrize("tasks, tty, bar", [(PROGRESS_MIN_TASKS, True, True), (PROGRESS_MIN_TASKS, False, False),
                                             (PROGRESS_MIN_TASKS - 1, True, False)])
def test_restore_draws_a_progress_bar_for_a_large_board_on_a_terminal(
        tasks: int, tty: bool, bar: bool, redis_url: str, real_redis: redis.Redis, tmp_path: Path) -> None:
    Board(real_redis, "t").create_many([{"title": f"task {i}"} for i in range(tasks)])
    env = {**os.environ, "REDIS_URL": redis_url, "KANBAN_BOARD": "t", "KANBAN_DB": str(tmp_path / "kanban.db"),
           "COLUMNS": "80"}
    assert subprocess.run([sys.executable, "-m", "snapshot", "now"], env=env, capture_output=True).returncode == 0
    stderr = _restore_stderr(env, tty=tty)
    drawn = "loading tasks" in stderr and "[####" in stderr and "100%" in stderr
    assert drawn == bar, stderr
    assert bar or "loading tasks" not in stderr
    assert real_redis.zcard(Board(real_redis, "t").keys.tasks) == tasks
