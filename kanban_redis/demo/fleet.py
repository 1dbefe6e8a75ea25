"""The demo's processes and its Redis: started, stopped gracefully, and nothing left behind.

With no REDIS_URL the demo runs its own local default server (the same
binary choice as the tools' local default, see :mod:`kanban_redis.localdefault`)
in the demo directory, so wiping it never touches the user's own boards. With
REDIS_URL the demo uses a board of its own on that server and wipes only that
board's keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis
from rq.serializers import JSONSerializer

from workers.dispatch import lane_queue

from .. import localdefault
from ..connection import mask_url
from ..board import Board
from ..errors import KanbanError
from ..keys import BoardKeys

#: Seconds a process gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 30.0
#: The console scripts the demo runs.
WORKER = "kanban-worker"
SNAPSHOT = "kanban-snapshot"


class DemoError(KanbanError):
    """A step of the demo failed; the message says which and why."""


def script(name: str) -> str:
    """Path of a console script of this installation: beside the interpreter, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise DemoError(f"{name} not found: install the project first (make demo does)")
    return found


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class Fleet:
    """Child processes whose output goes to ``<logs>/<name>.log``; :meth:`close` stops what is left.

    Each child gets its own session, so a Ctrl-C in the terminal reaches only
    the demo, which then stops the children with SIGTERM like a service manager.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str]) -> Child:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self, children: list[Child], timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """SIGTERM to each, then wait (SIGKILL to the process group past ``timeout``); their exit statuses."""
        for c in children:
            if c.alive:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int] = {}
        for c in children:
            try:
                codes[c.name] = c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(c.proc.pid, signal.SIGKILL)
                codes[c.name] = c.proc.wait()
            self.children.remove(c)
        return codes

    def close(self) -> None:
        self.stop(list(self.children))

    def tail(self, child: Child, lines: int = 3) -> str:
        """The last lines of a child's log, for an error message."""
        try:
            text = child.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


class DemoRedis:
    """The Redis the demo runs on; ``url`` changes when a wiped local server is started again.

    Args:
        home: the demo directory (a local server keeps its data in ``home/redis``).
        given_url: REDIS_URL, if the user set one.
        board: the demo's board (the only thing :meth:`wipe` removes from a given server).
    """

    def __init__(self, home: Path, given_url: str | None, board: str) -> None:
        self.home = home
        self.given_url = given_url
        self.board = board
        self.url = given_url or ""

    @property
    def local(self) -> bool:
        return not self.given_url

    def start(self) -> str:
        """Start the demo's local server (if it is one); a line saying which server is used."""
        if not self.local:
            self.url = self.given_url or ""
            return f"using REDIS_URL {self._masked()} with a new board {self.board!r} (nothing else is touched)"
        server = localdefault.ensure(self.home)
        self.url = server.url
        return server.describe()

    def wipe(self) -> str:
        """Lose the board as a WSL shutdown loses an in-memory Redis; what was done."""
        if self.local:
            server = localdefault.stop(self.home)
            if server is not None:
                shutil.rmtree(server.data_dir, ignore_errors=True)
            return f"stopped the demo's Redis and deleted its data ({self.home / 'redis'})"
        self.drop_board()
        return f"deleted every key of board {self.board!r} from {self._masked()}"

    def drop_board(self) -> int:
        """Delete the demo board's keys from the server; how many there were."""
        client = redis.Redis.from_url(self.url)
        try:
            keys = list(client.scan_iter(match=BoardKeys(self.board).pattern, count=500))
            for start in range(0, len(keys), 500):
                client.unlink(*keys[start:start + 500])
            return len(keys)
        finally:
            client.close()

    def drop_queues(self, lanes: Iterable[str]) -> None:
        """Delete the rq queues of the demo board's lanes and their jobs (``rq info`` forgets them)."""
        client = redis.Redis.from_url(self.url)
        try:
            board = Board(client, self.board)
            for lane in lanes:
                queue = lane_queue(client, board, lane)
                registries = (queue.started_job_registry, queue.finished_job_registry, queue.failed_job_registry,
                              queue.canceled_job_registry)
                ids = sorted({job_id for registry in registries for job_id in registry.get_job_ids()})
                for job in queue.job_class.fetch_many(ids, connection=client, serializer=JSONSerializer):
                    if job is not None:
                        job.delete()
                queue.delete()
        finally:
            client.close()

    def close(self, lanes: Iterable[str]) -> None:
        """Stop the demo's local server, or take the demo board and its queues off the user's server."""
        if self.local:
            localdefault.stop(self.home)
        elif self.url:
            self.drop_board()
            self.drop_queues(lanes)

    def _masked(self) -> str:
        return mask_url(self.url)
