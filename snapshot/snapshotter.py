"""Taking one snapshot of one board: bring the working copy forward, check, publish, trim.

The caller holds the file's :class:`~snapshot.lock.SnapshotLock`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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

#: Log entries a kept Snapshotter publishes between two trims of the log. An
#: approximate XTRIM drops whole stream nodes (stream-node-max-entries, 100 by
#: default), so trimming after every small change mostly frees nothing.
TRIM_EVERY = 100


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


class Snapshotter:
    """Snapshots of one board into one file, taken again and again (each ``run`` tick).

    Between takes it keeps its working copy open, its fsync thread running,
    and the meta of the file it published last (while that file is unchanged
    on disk), so that a tick pays neither the working copy's open and
    checkpoint-on-close, nor a thread start, nor a re-read of ``kanban.db``:
    at 1,000 tasks those were a third of an incremental snapshot. It trims
    the log after its first publish, then every TRIM_EVERY entries. After any
    error it closes the working copy; the next take reopens it. The caller
    holds the file's lock.
    """

    def __init__(self, client: Any, board: str, db_path: Path, *, keep: int = DEFAULT_KEEP,
                 force: bool = False) -> None:
        self.reader = BoardReader(client, board)
        self.board = board
        self.db_path = db_path
        self.keep = keep
        self.force = force
        self._wc: WorkingCopy | None = None
        self._mine: tuple[tuple[int, int, int], dict[str, str]] | None = None
        self._trimmed: int | None = None  # the seq the log was last trimmed to
        self._fsyncs: ThreadPoolExecutor | None = None

    def take(self) -> Outcome:
        """Bring the snapshot up to date.

        Raises:
            WouldClobber: see :func:`clobber_reason` (unless ``force``).
            BoardRestoring, RedisBehind, CutFailed, RedisUnavailable: see :mod:`snapshot.sync`.
        """
        try:
            outcome = self._take()
        except BaseException:
            self.close()
            raise
        # (a seq below the last trim's: a new board of the same name, whose log starts over)
        if outcome.published and (self._trimmed is None or not 0 <= outcome.seq - self._trimmed < TRIM_EVERY):
            self.reader.trim(outcome.seq)
            self._trimmed = outcome.seq
        return outcome

    def _take(self) -> Outcome:
        last = self._last_published()
        if self._wc is None:
            self._wc = WorkingCopy(work_path(self.db_path))
        wc = self._wc
        result: SyncResult = bring_forward(self.reader, wc)
        reason = clobber_reason(result.head, self.board, last)
        if reason and not self.force:
            raise WouldClobber(reason)
        if result.head.incarnation is None and last is None:
            return Outcome(self.board, self.db_path, "empty", 0, False)
        current = last[1] if last is not None and last[0] == self.db_path else None
        if (current is not None and int(current["seq"]) == result.seq
                and current["incarnation"] == (result.head.incarnation or "")):
            return Outcome(self.board, self.db_path, "unchanged", result.seq, False)
        stamp = current.get("taken_at_ms") if current is not None else None
        if self._fsyncs is None:
            self._fsyncs = ThreadPoolExecutor(1, thread_name_prefix="snapshot-fsync")
        done = publish(wc.conn, self.db_path, keep=self.keep, current_stamp=int(stamp) if stamp else None,
                       fsyncs=self._fsyncs)
        self._mine = (_signature(self.db_path), wc.meta)
        return Outcome(self.board, self.db_path, result.mode, result.seq, True, done.size)

    def _last_published(self) -> tuple[Path, dict[str, str]] | None:
        if self._mine is not None:
            signature, meta = self._mine
            if _signature(self.db_path) == signature:
                return self.db_path, meta
            self._mine = None
        return last_published(self.db_path)

    def close(self) -> None:
        """Close the working copy and stop the fsync thread (the next take opens them again)."""
        if self._wc is not None:
            self._wc.close()
            self._wc = None
        if self._fsyncs is not None:
            self._fsyncs.shutdown()
            self._fsyncs = None


def _signature(path: Path) -> tuple[int, int, int]:
    """What tells one file at ``path`` from another: inode, size, mtime (zeros when missing)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def take(client: Any, board: str, db_path: Path, *, keep: int = DEFAULT_KEEP, force: bool = False) -> Outcome:
    """Bring the board's snapshot at ``db_path`` up to date, once (see :meth:`Snapshotter.take`)."""
    snapshotter = Snapshotter(client, board, db_path, keep=keep, force=force)
    try:
        return snapshotter.take()
    finally:
        snapshotter.close()
