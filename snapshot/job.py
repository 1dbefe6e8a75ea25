"""What ``now`` and each ``run`` tick do: snapshot one board, or every board, each to its file.

With ``--board all`` every board found in Redis gets its own file, named by
:func:`db_for`. Each file is guarded by its lock (held until :meth:`close`)
and checked for a safe filesystem before its first publish; its
:class:`~snapshot.snapshotter.Snapshotter` stays open between ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kanban_redis.connection import reply_text, translate
from kanban_redis.keys import ALL_BOARDS_META, BOARD_SLUG, board_from_meta_key, validate_board

from . import fscheck
from .lock import SnapshotLock
from .snapshotter import Outcome, Snapshotter

ALL = "all"


def db_for(db_path: Path, board: str, every: bool) -> Path:
    """The snapshot file of ``board``: ``db_path`` itself, or with ``every`` a file per board.

    A ``{board}`` in the path is replaced by the slug; without one, ``kanban.db``
    becomes ``kanban-<board>.db`` beside it.
    """
    if "{board}" in str(db_path):
        return Path(str(db_path).replace("{board}", board))
    if not every:
        return db_path
    return db_path.with_name(f"{db_path.stem}-{board}{db_path.suffix}")


def boards_on_disk(db_path: Path) -> list[str]:
    """Boards that have a file named by :func:`db_for` with ``every`` (for ``restore --board all``)."""
    head, tail = f"{db_path.stem}-", db_path.suffix
    names = [p.name[len(head):len(p.name) - len(tail)] for p in db_path.parent.glob(f"{head}*{tail}")]
    return sorted(n for n in names if BOARD_SLUG.fullmatch(n))


def list_boards(client: Any) -> list[str]:
    with translate(client):
        keys = [reply_text(k) for k in client.scan_iter(match=ALL_BOARDS_META, count=500)]
    return sorted(board_from_meta_key(k) for k in keys)


class SnapshotJob:
    """Snapshots of ``board`` (or of every board, ``"all"``) into files named from ``db_path``.

    Raises (from :meth:`tick`): Locked, UnsafeFilesystem, and what
    :func:`snapshot.snapshotter.take` raises.
    """

    def __init__(self, client: Any, board: str, db_path: Path, *, keep: int, force: bool,
                 warn: Callable[[str], None]) -> None:
        self.client = client
        self.every = board == ALL
        self.board = board if self.every else validate_board(board)
        self.db_path = db_path
        self.keep = keep
        self.force = force
        self.warn = warn
        self.locks: dict[Path, SnapshotLock] = {}
        self.snapshotters: dict[Path, Snapshotter] = {}

    def targets(self) -> list[tuple[str, Path]]:
        boards = list_boards(self.client) if self.every else [self.board]
        return [(b, db_for(self.db_path, b, self.every)) for b in boards]

    def claim(self, path: Path) -> SnapshotLock:
        """Check the place and take the file's lock (once per file)."""
        lock = self.locks.get(path)
        if lock is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            problem = fscheck.check(path.parent)
            if problem:
                if not self.force:
                    raise fscheck.UnsafeFilesystem(problem)
                self.warn(f"warning: {problem} (continuing: --force)")
            lock = self.locks[path] = SnapshotLock(path).acquire()
        return lock

    def tick(self) -> list[Outcome]:
        outcomes = []
        targets = self.targets()
        for gone in self.snapshotters.keys() - {path for _, path in targets}:
            self.snapshotters.pop(gone).close()  # its board left Redis: free its working copy
        for board, path in targets:
            self.claim(path)
            snapshotter = self.snapshotters.get(path)
            if snapshotter is None:
                snapshotter = self.snapshotters[path] = Snapshotter(self.client, board, path, keep=self.keep,
                                                                    force=self.force)
            outcomes.append(snapshotter.take())
        return outcomes

    def note(self, **info: Any) -> None:
        """Record schedule facts (e.g. next_run) in every held lock file, for ``status``."""
        for lock in self.locks.values():
            lock.update(**info)

    def close(self) -> None:
        for snapshotter in self.snapshotters.values():
            snapshotter.close()
        self.snapshotters.clear()
        for lock in self.locks.values():
            lock.release()
        self.locks.clear()
