"""One writer per snapshot file: an exclusive flock on ``<db>.lock``.

The holder writes who it is (host, pid, and, for the daemon, its schedule)
into the lock file, so a second snapshotter can name it and ``status`` can
show the next run. The kernel drops the lock when the holder dies, even by
``kill -9``, so there is never a stale lock to clean up by hand.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from kanban_redis.errors import KanbanError


#: Extra tries, 50 ms apart, before a held lock is reported (``is_held`` holds it for an instant).
PROBE_RETRIES = 3


class Locked(KanbanError):
    """Another snapshotter holds the lock of this snapshot file."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def read_holder(db_path: Path) -> dict[str, Any]:
    """What the last holder wrote into the lock file ({} when none)."""
    try:
        return json.loads(lock_path(db_path).read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}


def is_held(db_path: Path) -> bool:
    """True while some process holds the lock (probed without taking it for long)."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class SnapshotLock:
    """``with SnapshotLock(db_path):`` -- exclusive, non-blocking.

    Raises:
        Locked: another process holds it; the message names its host and pid.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self.fd: int | None = None
        self.info: dict[str, Any] = {}

    def acquire(self) -> SnapshotLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(PROBE_RETRIES + 1):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < PROBE_RETRIES:  # maybe only `status` probing for a moment
                    time.sleep(0.05)
        else:
            os.close(fd)
            holder = read_holder(self.db_path)
            who = f"{holder.get('host', '?')} pid {holder.get('pid', '?')}" if holder else "an unknown process"
            raise Locked(f"{self.path} is held by {who}: another snapshotter writes this file") from None
        self.fd = fd
        self.update(host=socket.gethostname(), pid=os.getpid(), since=time.time())
        return self

    def update(self, **info: Any) -> None:
        """Record more about the holder (e.g. the daemon's next run) in the lock file."""
        assert self.fd is not None
        self.info.update(info)
        data = json.dumps(self.info).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> SnapshotLock:
        return self.acquire()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()
