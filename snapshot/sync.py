"""Bringing the working copy to one point-in-time cut of the board.

Incremental: apply the change-log entries after the working copy's seq, in
order, committing after each page; the cut is the last entry applied. Each
entry carries the full new state of what it changed, so cost follows the
number of changes. The first page is read in the same MULTI/EXEC as the
board's seq: a board that changed by less than a page costs one round trip.

Full resync (first run, a trimmed log, another incarnation): read seq S0,
read every task with pipelined pages, read seq S1, then replay the log
entries in (S0, S1] over what was read. A task changed in that window takes
its state (and its history after S0) from the log; any other task was not
changed while it was read. The result is the board exactly at S1. When the
entry S0 was trimmed meanwhile, or the board was replaced, it starts over.
It fills a new file that replaces the working copy only once it is whole
(:meth:`~snapshot.writer.WorkingCopy.rebuild`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Literal

from kanban_redis import __version__
from kanban_redis.errors import BoardRestoring, KanbanError

from .reader import BoardReader, Entry, Head, LogGap, LogPage
from .writer import WorkingCopy

#: Full-resync attempts before giving up on a board that changes too fast to cut.
FULL_ATTEMPTS = 5


class RedisBehind(KanbanError):
    """Redis holds the same board (incarnation) at an older seq than what was already taken."""


class CutFailed(KanbanError):
    """No consistent cut could be read (the log was trimmed faster than the board was read)."""


@dataclass(frozen=True)
class SyncResult:
    mode: Literal["unchanged", "incremental", "full"]
    seq: int
    head: Head


def _ensure_not_restoring(head: Head) -> None:
    if head.restoring is not None:
        raise BoardRestoring(f"board is being restored ({head.restoring}); run again when it ends")


def _apply(wc: WorkingCopy, entries: list[Entry]) -> None:
    """Apply log entries in order, a few statements for the lot.

    A task changed by several entries only needs its last state, and events
    and comments keep their order; the run a 'claimed' event opens takes the
    task's lane, which never changes after create.
    """
    wc.put_tasks({t["id"]: t for e in entries for t in e.tasks}.values())
    wc.put_events(_joined(e.events for e in entries))
    wc.put_comments(_joined(f"[{e.comment}]" for e in entries if e.comment))


def _joined(arrays: Iterable[str]) -> str:
    """One JSON array of the elements of JSON arrays (texts as the scripts write them: ``[...]``)."""
    return "[" + ",".join(a[1:-1] for a in arrays if a != "[]") + "]"


def _meta(reader: BoardReader, head: Head, seq: int) -> dict[str, object]:
    now = time.time()
    return {"board": reader.board, "seq": seq, "incarnation": head.incarnation or "",
            "board_created_at": head.created_at or "", "restored_from": head.restored_from or "",
            "taken_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "taken_at_ms": int(now * 1000), "tool_version": __version__}


def bring_forward(reader: BoardReader, wc: WorkingCopy) -> SyncResult:
    """Make ``wc`` equal the board at one seq; returns how.

    Raises:
        BoardRestoring: a restore is running. RedisBehind: same board, older seq.
        CutFailed: see the class. RedisUnavailable.
    """
    meta = wc.meta
    seq = int(meta.get("seq", -1))
    if meta.get("board") == reader.board:
        head, log = reader.head_and_log(seq)
    else:
        head, log = reader.head(), None
    _ensure_not_restoring(head)
    if log is not None and meta.get("incarnation") == (head.incarnation or ""):
        if head.seq == seq:
            return SyncResult("unchanged", head.seq, head)
        if head.seq < seq:
            raise RedisBehind(f"Redis has board {reader.board!r} at seq {head.seq}, "
                              f"older than the working copy's {seq}")
        try:
            return _incremental(reader, wc, head, seq, log)
        except LogGap:
            wc.rollback()
    return _full(reader, wc)


def _incremental(reader: BoardReader, wc: WorkingCopy, head: Head, cut: int, log: LogPage) -> SyncResult:
    if log.gap:
        raise LogGap(f"change log no longer holds seq {cut}")
    pages: Iterable[list[Entry]] = [log.entries] if log.entries else []
    if log.full:
        pages = chain(pages, reader.entries(log.entries[-1].seq if log.entries else cut, head.seq))
    for page in pages:
        _apply(wc, page)
        cut = page[-1].seq
        wc.set_meta(_meta(reader, head, cut))
        wc.commit()  # a kill keeps the pages applied so far (each ends at a whole cut)
    if log.full and reader.head().incarnation != head.incarnation:
        raise LogGap("board replaced while the log was read")
    return SyncResult("incremental", cut, head)


def _full(reader: BoardReader, wc: WorkingCopy) -> SyncResult:
    for _ in range(FULL_ATTEMPTS):
        h0 = reader.head()
        _ensure_not_restoring(h0)
        wc.rebuild()
        for page in reader.pages():
            wc.put_tasks(page.states, fresh=True)
            wc.put_events(page.events)
            wc.put_comments(page.comments)
        h1 = reader.head()
        _ensure_not_restoring(h1)
        if h1.incarnation != h0.incarnation or (h0.seq == 0 and h1.seq > 0):
            wc.rollback()
            continue
        try:
            window = [e for page in reader.entries(h0.seq, h1.seq) for e in page] if h1.seq > h0.seq else []
        except LogGap:
            wc.rollback()
            continue
        touched = list(dict.fromkeys(t["id"] for e in window for t in e.tasks))
        wc.drop_after(touched, h0.seq)
        wc.rebuild_runs(touched)
        _apply(wc, window)
        wc.set_meta(_meta(reader, h1, h1.seq))
        wc.commit()
        return SyncResult("full", h1.seq, h1)
    raise CutFailed(f"board {reader.board!r} changed faster than it could be read "
                    f"({FULL_ATTEMPTS} attempts); is the change log trimmed too short?")
