"""kanban-snapshot install-boot: the systemd user units it writes, parsed and run."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from clitools import clean_env
from kanban_redis import Board, Status
from kanban_redis.local import find_server
from snapshot import fscheck
from snapshot.boot import systemd_enabled

BIN = Path(sys.executable).parent
SNAPSHOT = str(BIN / "kanban-snapshot")
UNITS = {"kanban-redis.service", "kanban-restore.service", "kanban-snapshot.service", "kanban-worker@.service"}


def install(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SNAPSHOT, "install-boot", *args], capture_output=True, text=True, timeout=60,
                          env=clean_env(**env))


def parse(path: Path) -> dict[str, dict[str, str]]:
    unit = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",), comment_prefixes=("#",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return {name: dict(unit[name]) for name in unit.sections()}


def argv(line: str) -> list[str]:
    words = shlex.split(line)
    assert os.access(words[0], os.X_OK), words[0]
    return words


@pytest.mark.skipif(find_server() is None, reason="no redis-server for kanban-redis.service")
def test_units_carry_this_installations_paths_and_the_boot_order(tmp_path: Path) -> None:
    db = tmp_path / "data" / "kanban.db"
    done = install("--dir", str(tmp_path / "units"), "--board", "ops", "--db", str(db), "--interval", "30",
                   "--lane", "research", "--lane", "code", "--handler", "workers.handlers:command",
                   "--concurrency", "2", REDIS_URL=None)
    assert done.returncode == 0, done.stderr
    units = {p.name: parse(p) for p in (tmp_path / "units").iterdir()}
    assert set(units) == UNITS
    assert all("{" not in p.read_text() for p in (tmp_path / "units").iterdir())  # every field filled in
    url = "redis://127.0.0.1:6380/0"

    redis_cmd = argv(units["kanban-redis.service"]["Service"]["ExecStart"])
    assert redis_cmd[0] == find_server() and redis_cmd[1:] == [
        "--port", "6380", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    restore = units["kanban-restore.service"]
    assert restore["Unit"]["Requires"] == restore["Unit"]["After"] == "kanban-redis.service"
    assert restore["Unit"]["ConditionPathExists"] == str(db)
    assert restore["Service"]["Type"] == "oneshot" and restore["Service"]["RemainAfterExit"] == "yes"
    assert restore["Service"]["Environment"] == f"REDIS_URL={url}"
    assert argv(restore["Service"]["ExecStart"]) == [SNAPSHOT, "restore", "--board", "ops", "--db", str(db),
                                                     "--if-empty"]
    wait = argv(restore["Service"]["ExecStartPre"])
    assert wait[:4] == ["/usr/bin/timeout", "60", "/bin/sh", "-c"] and f"{SNAPSHOT} status" in wait[4]

    snap = units["kanban-snapshot.service"]
    assert snap["Unit"]["Requires"] == snap["Unit"]["After"] == "kanban-restore.service"
    assert argv(snap["Service"]["ExecStart"]) == [SNAPSHOT, "run", "--board", "ops", "--db", str(db),
                                                  "--interval", "30"]
    assert snap["Service"]["KillMode"] == "mixed" and snap["Service"]["RestartPreventExitStatus"] == "3 4 5"

    worker = units["kanban-worker@.service"]
    assert worker["Unit"]["Requires"] == worker["Unit"]["After"] == "kanban-restore.service"
    assert argv(worker["Service"]["ExecStart"]) == [str(BIN / "kanban-worker"), "--board", "ops", "--lane", "%i",
                                                    "--handler", "workers.handlers:command", "--concurrency", "2"]
    assert worker["Service"]["KillMode"] == "mixed" and int(worker["Service"]["TimeoutStopSec"]) > 25
    for unit in units.values():
        assert unit["Install"]["WantedBy"] == "default.target"

    out = done.stdout
    assert ("systemctl --user enable --now kanban-redis.service kanban-restore.service kanban-snapshot.service "
            "kanban-worker@research.service kanban-worker@code.service") in out
    assert "[boot]" in out and "systemd=true" in out and "/etc/wsl.conf" in out
    assert f"export REDIS_URL={url}" in out
    assert db.parent.is_dir()
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "units").iterdir()} == {0o644}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    units = tmp_path / "units"
    done = install("--dir", str(units), "--db", str(tmp_path / "kanban.db"), "--lane", "code",
                   "--handler", "workers.handlers:command", "--redis-url", "redis://127.0.0.1:6390/0")
    assert done.returncode == 0, done.stderr
    shutil.copy(units / "kanban-worker@.service", units / "kanban-worker@code.service")
    names = [str(p) for p in sorted(units.iterdir()) if p.name != "kanban-worker@.service"]
    check = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    assert check.returncode == 0 and check.stderr == "", check.stderr


def test_a_given_redis_url_gets_no_redis_unit_and_edited_units_are_kept(tmp_path: Path) -> None:
    units = tmp_path / "units"
    args = ("--dir", str(units), "--db", str(tmp_path / "kanban.db"))
    done = install(*args, REDIS_URL="redis://:s3cret@10.0.0.5:6379/2")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in units.iterdir()} == UNITS - {"kanban-redis.service"}
    restore = parse(units / "kanban-restore.service")
    assert "Requires" not in restore["Unit"] and "After" not in restore["Unit"]
    assert restore["Service"]["Environment"] == "REDIS_URL=redis://:s3cret@10.0.0.5:6379/2"
    assert {p.stat().st_mode & 0o777 for p in units.iterdir()} == {0o600}  # the password is in them
    assert "enable --now kanban-restore.service kanban-snapshot.service\n" in done.stdout
    assert "export REDIS_URL" not in done.stdout

    again = install(*args, REDIS_URL="redis://:s3cret@10.0.0.5:6379/2")
    assert again.returncode == 0 and again.stdout.count("unchanged ") == 3
    edited = units / "kanban-snapshot.service"
    edited.write_text(edited.read_text().replace("--interval 60", "--interval 5"))
    refused = install(*args, "--interval", "10", REDIS_URL="redis://:s3cret@10.0.0.5:6379/2")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert "--interval 5" in edited.read_text()  # nothing was written
    forced = install(*args, "--interval", "10", "--force", REDIS_URL="redis://:s3cret@10.0.0.5:6379/2")
    assert forced.returncode == 0 and f"replaced {edited}" in forced.stdout
    assert "--interval 10" in edited.read_text()
    assert not [p for p in units.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("args, message", [
    (["--db", "/tmp/my data/kanban.db"], "holds a space"),
    (["--lane", "code"], "--handler"),
    (["--lane", "code", "--handler", "m:f", "--board", "all"], "one board"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = install("--dir", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0", *args)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


def test_kanban_db_on_memory_is_refused(tmp_path: Path) -> None:
    if fscheck.check(Path("/dev/shm")) is None:
        pytest.skip("/dev/shm is not a tmpfs here")
    done = install("--dir", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0", "--db", "/dev/shm/kb/kanban.db")
    assert done.returncode == 5 and "tmpfs" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_restore_unit_brings_a_wiped_board_back(tmp_path: Path, redis_url: str,
                                                     real_redis: redis.Redis) -> None:
    """What systemd runs at boot, run the same way: the wait, then restore --if-empty."""
    db = tmp_path / "kanban.db"
    done = install("--dir", str(tmp_path / "units"), "--db", str(db), "--board", "b", "--redis-url", redis_url)
    assert done.returncode == 0, done.stderr
    service = parse(tmp_path / "units" / "kanban-restore.service")["Service"]
    env = clean_env(**dict([service["Environment"].split("=", 1)]))

    def boot() -> subprocess.CompletedProcess[str]:
        for step in ("ExecStartPre", "ExecStart"):
            ran = subprocess.run(argv(service[step]), capture_output=True, text=True, timeout=60, env=env)
            assert ran.returncode == 0, ran.stderr
        return ran

    board = Board.from_url(redis_url, board="b")
    first = board.create("first", assignee="code")
    board.create("second", assignee="code", parents=[first.id])
    taken = subprocess.run([SNAPSHOT, "now", "--board", "b", "--db", str(db)], capture_output=True, text=True,
                           timeout=60, env=env)
    assert taken.returncode == 0, taken.stderr
    assert "already holds data" in boot().stdout  # Redis kept the board: nothing to do
    real_redis.flushdb()  # the reboot
    assert "restored 2 tasks" in boot().stdout
    assert [(t.title, t.status) for t in board.list()] == [("first", Status.READY), ("second", Status.TODO)]


def test_wsl_conf_turns_systemd_on_only_under_boot() -> None:
    assert systemd_enabled("[boot]\nsystemd=true\n")
    assert systemd_enabled("[network]\nhostname=x\n\n[ boot ]\n  systemd = True  # on\n")
    assert not systemd_enabled("[boot]\nsystemd=false\n")
    assert not systemd_enabled("[user]\nsystemd=true\n")
    assert not systemd_enabled("# [boot]\n# systemd=true\n")
    assert not systemd_enabled("")
