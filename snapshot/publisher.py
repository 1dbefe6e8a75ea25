"""Publishing: ``kanban.db`` is replaced whole, never written in place.

A new snapshot is copied from the working copy into a temporary file in the
same directory (SQLite's backup API, then the header set to rollback-journal
mode), checked and fsynced (at the same time: the check only reads), and
renamed over ``kanban.db``; then the directory is fsynced. Before the rename
the old ``kanban.db`` gets a second name ``kanban.db.<taken_at_ms>`` (a hard
link, no copy), which makes it one of the kept copies; only the newest
``keep`` of those stay (the oldest is removed while the new file is copied,
before the link, so there are never more). A kill at any instant leaves the
old or the new file whole, plus at most one temporary file, removed by the
next publish.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from . import schema

#: Kept copies of earlier snapshots beside kanban.db (the current one not counted).
DEFAULT_KEEP = 5

_TEMP_INFIX = ".tmp-"

#: Address space (not memory) the new file's check maps.
_CHECK_MMAP_BYTES = 1 << 30


def temp_prefix(db_path: Path) -> str:
    return f".{db_path.name}{_TEMP_INFIX}"


def copy_pattern(db_path: Path) -> re.Pattern[str]:
    return re.compile(re.escape(db_path.name) + r"\.(\d{13,})")


def kept_copies(db_path: Path) -> list[Path]:
    """The kept copies of ``db_path``, newest first (none when its directory is missing)."""
    if not db_path.parent.is_dir():
        return []
    pattern = copy_pattern(db_path)
    found = [(int(m.group(1)), p) for p in db_path.parent.iterdir() if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quick_check(path: Path) -> str:
    conn = schema.connect(str(path), readonly=True)
    try:
        # read through mmap, not a read() per page: a third less time at 1,000 tasks
        # (the temp file is this process's alone, so nothing truncates it while mapped)
        conn.execute(f"PRAGMA mmap_size={_CHECK_MMAP_BYTES}")
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    finally:
        conn.close()


def _mark_rollback_journal(path: Path) -> None:
    """Set the closed copy's header to rollback-journal mode, as the working copy's WAL mode came with it.

    Bytes 18 and 19 of an SQLite file (its write and read format versions) are
    2 in WAL mode and 1 in the rollback-journal modes: all they say is which.
    ``PRAGMA journal_mode=DELETE`` would write the same two bytes after making
    and removing a -wal and a -shm file beside the copy (a tenth of an
    incremental snapshot at 1,000 tasks). The check that follows opens the
    result.
    """
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x01\x01", 18)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temps(db_path: Path) -> int:
    """Delete temporary files left by a killed publish (only the lock holder calls this)."""
    n = 0
    for p in db_path.parent.glob(temp_prefix(db_path) + "*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


@dataclass(frozen=True)
class Published:
    path: Path
    size: int


def publish(source: sqlite3.Connection, db_path: Path, *, keep: int = DEFAULT_KEEP,
            current_stamp: int | None = None, fsyncs: Executor | None = None,
            before_rename: Callable[[Path], None] | None = None) -> Published:
    """Publish the database open on ``source`` as ``db_path``.

    Args:
        source: a connection to the working copy, with no open write transaction.
        keep: how many earlier snapshots to keep beside ``db_path`` (>= 0).
        current_stamp: the ``taken_at_ms`` of the current ``db_path`` when the caller
            knows it (else it is read from the file), which names its kept copy.
        fsyncs: where old kept copies are removed while the new file is
            copied, and the new file is fsynced while it is checked (a thread
            made for this call when None; a caller that publishes again and
            again keeps one: starting a thread costs ~0.2 ms).
        before_rename: test hook, called with the finished temp file.

    Raises:
        sqlite3.DatabaseError: the copy failed its integrity check (nothing replaced).
    """
    directory = db_path.parent
    remove_temps(db_path)
    temp = directory / f"{temp_prefix(db_path)}{os.getpid()}"
    with ExitStack() as stack:
        pool = fsyncs or stack.enter_context(ThreadPoolExecutor(1))
        # the oldest kept copies go while the new file is built: down to keep - 1, as the
        # current kanban.db becomes a kept copy before the rename (never more than keep)
        pruned = pool.submit(_prune, db_path, max(keep - 1, 0))
        try:
            dest = sqlite3.connect(str(temp))
            try:
                # no syncs while the temp file is built: it is checked and fsynced whole before the rename
                dest.execute("PRAGMA synchronous=OFF")
                source.backup(dest)
            finally:
                dest.close()
            _mark_rollback_journal(temp)
            # the file is complete: it is fsynced while it is checked (the check only reads it)
            synced = pool.submit(fsync_file, temp)
            try:
                verdict = _quick_check(temp)
            finally:
                wait([synced])  # done with the file before a failed check removes it
            synced.result()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"new snapshot failed its check: {verdict}")
            if before_rename is not None:
                before_rename(temp)
            wait([pruned])  # (its error, if any, is raised once the new file is published)
            if keep:
                _keep_current(db_path, current_stamp)
            os.rename(temp, db_path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    # one directory fsync makes the rename and the pruning durable together (a
    # crash before it leaves the old or the new kanban.db, both sound, and at
    # worst copies that were to go): one disk flush per publish, not two
    fsync_dir(directory)
    pruned.result()
    return Published(db_path, db_path.stat().st_size)


def _prune(db_path: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` kept copies (an unlink frees the file's blocks: ~0.4 ms
    for 0.5 MB, done while the new snapshot is copied)."""
    for old in kept_copies(db_path)[keep:]:
        old.unlink(missing_ok=True)


def _keep_current(db_path: Path, stamp: int | None) -> None:
    """Give the current kanban.db its kept-copy name before it is replaced."""
    if not db_path.exists():
        return
    if stamp is None:
        stamp = _stamp_of(db_path)
    target = db_path.with_name(f"{db_path.name}.{stamp:013d}")
    if not target.exists():
        os.link(db_path, target)


def _stamp_of(db_path: Path) -> int:
    """The ``taken_at_ms`` in the file's meta (its mtime when unreadable)."""
    try:
        conn = schema.connect(str(db_path), readonly=True)
        try:
            taken = schema.read_meta(conn).get("taken_at_ms")
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        taken = None
    return int(taken) if taken else int(db_path.stat().st_mtime * 1000)
