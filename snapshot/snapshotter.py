"""Taking one snapshot of one board: bring the working copy forward, check, publish, trim.

The caller holds the file's :class:`~snapshot.lock.SnapshotLock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_redis.errors import KanbanError

from .publisher import DEFAULT_KEEP, kept_copies, publish
from .reader import BoardReader, Head
from .sync import SyncResult, bring_forward
from .verify import peek
from .writer import WorkingCopy, work_path

RESTORE_HINT = "run kanban-snapshot restore"


class WouldClobber(KanbanError):
    """Publishing would replace a snapshot that holds more than Redis does (never done silently)."""


@dataclass(frozen=True)
class Outcome:
    board: str
    path: Path
    mode: str  # unchanged | incremental | full | empty
    seq: int
    published: bool
    size: int = 0


def last_published(db_path: Path) -> tuple[Path, dict[str, str]] | None:
    """The newest readable snapshot (``db_path``, else a kept copy) and its meta."""
    for candidate in [db_path, *kept_copies(db_path)]:
        meta = peek(candidate)
        if meta is not None:
            return candidate, meta
    return None


def clobber_reason(head: Head, board: str, last: tuple[Path, dict[str, str]] | None) -> str | None:
    """Why publishing the board at ``head`` must not replace ``last`` (None: it may)."""
    if last is None or int(last[1]["task_count"]) == 0:
        return None
    path, meta = last
    held = f"{path} holds {meta['task_count']} tasks at seq {meta['seq']}"
    if head.incarnation is None or head.task_count == 0:
        return f"board {board!r} is missing or empty in Redis but {held}: {RESTORE_HINT}"
    if head.incarnation == meta["incarnation"]:
        if head.seq < int(meta["seq"]):
            return f"Redis has board {board!r} at seq {head.seq}, behind the snapshot: {held}: {RESTORE_HINT}"
        return None
    if head.restored_from == meta["incarnation"]:
        return None
    return (f"Redis holds another board {board!r} (incarnation {head.incarnation}) than {path} "
            f"(incarnation {meta['incarnation']}): {RESTORE_HINT}, or --force to start a new history")


def take(client: Any, board: str, db_path: Path, *, keep: int = DEFAULT_KEEP, force: bool = False) -> Outcome:
    """Bring the board's snapshot at ``db_path`` up to date.

    Raises:
        WouldClobber: see :func:`clobber_reason` (unless ``force``).
        BoardRestoring, RedisBehind, CutFailed, RedisUnavailable: see :mod:`snapshot.sync`.
    """
    reader = BoardReader(client, board)
    last = last_published(db_path)
    wc = WorkingCopy(work_path(db_path))
    try:
        result: SyncResult = bring_forward(reader, wc)
        reason = clobber_reason(result.head, board, last)
        if reason and not force:
            raise WouldClobber(reason)
        if result.head.incarnation is None and last is None:
            return Outcome(board, db_path, "empty", 0, False)
        if (last is not None and last[0] == db_path and int(last[1]["seq"]) == result.seq
                and last[1]["incarnation"] == (result.head.incarnation or "")):
            return Outcome(board, db_path, "unchanged", result.seq, False)
        done = publish(wc.conn, db_path, keep=keep)
    finally:
        wc.close()
    reader.trim(result.seq)
    return Outcome(board, db_path, result.mode, result.seq, True, done.size)
