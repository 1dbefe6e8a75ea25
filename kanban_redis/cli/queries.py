"""Reads the commands need beyond the Board API, kept cheap for large boards.

Status counts come from the status indexes (ZCARD); lane breakdowns read one
or two fields per task in pipelined chunks; cards read a few fields of the
few tasks shown. Whole task hashes (bodies up to 256 KiB) are read only by
``show`` and ``list``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..board import BLOCK_MARGIN, READ_CHUNK, Board
from ..connection import reply_fields, reply_text, translate
from ..keys import ALL_BOARDS_META, board_from_meta_key
from ..models import Event, Status, Task

#: Hash fields read for a card (a task shown in a column).
CARD_FIELDS = ("id", "board", "title", "status", "priority", "assignee", "created_at", "updated_at",
               "attempts", "max_attempts", "claim_worker", "claim_expires_at", "not_before",
               "block_reason", "block_kind", "rev")
#: Statuses whose tasks are few enough to scan for lane counts on every refresh.
OPEN = tuple(s for s in Status if s not in (Status.DONE, Status.ARCHIVED))
#: Longest single blocking read, in seconds: well under the client's socket timeout.
BLOCK_SLICE = 5.0


def _event(entry_id: Any, fields: dict[Any, Any]) -> Event:
    return Event.from_entry(reply_text(entry_id), reply_fields(fields))


def counts(board: Board) -> dict[Status, int]:
    with translate(board.redis):
        pipe = board.redis.pipeline(transaction=False)
        for s in Status:
            pipe.zcard(board.keys.status(s.value))
        return dict(zip(Status, (int(n) for n in pipe.execute())))


def ids_in(board: Board, status: Status, *, newest_first: bool = False, limit: int = -1) -> list[str]:
    with translate(board.redis):
        fn = board.redis.zrevrange if newest_first else board.redis.zrange
        return [reply_text(i) for i in fn(board.keys.status(status.value), 0, limit - 1 if limit > 0 else -1)]


def fields_of(board: Board, ids: list[str], names: Iterable[str]) -> list[dict[str, str]]:
    """The named hash fields of each task (absent tasks give empty dicts), pipelined."""
    names = list(names)
    rows: list[dict[str, str]] = []
    with translate(board.redis):
        for start in range(0, len(ids), READ_CHUNK):
            pipe = board.redis.pipeline(transaction=False)
            for tid in ids[start:start + READ_CHUNK]:
                pipe.hmget(board.keys.task(tid), names)
            for values in pipe.execute():
                rows.append({n: reply_text(v) for n, v in zip(names, values) if v is not None})
    return rows


def cards(board: Board, ids: list[str]) -> list[Task]:
    return [Task.from_fields(f) for f in fields_of(board, ids, CARD_FIELDS) if f.get("id")]


def scan(board: Board, statuses: Iterable[Status], names: Iterable[str]) -> dict[Status, list[dict[str, str]]]:
    """Fields ``id`` and ``names`` of every task in each status, read once for all uses."""
    wanted = ["id", *(n for n in names if n != "id")]
    return {s: [r for r in fields_of(board, ids_in(board, s), wanted) if r.get("id")] for s in statuses}


def lane_counts(rows: dict[Status, list[dict[str, str]]]) -> dict[str, Counter[str]]:
    """lane ("" for unassigned) -> status -> number of tasks, from :func:`scan` rows with ``assignee``."""
    lanes: dict[str, Counter[str]] = {}
    for status, found in rows.items():
        for row in found:
            lanes.setdefault(row.get("assignee", ""), Counter())[status.value] += 1
    return lanes


def column(board: Board, status: Status, rows: list[dict[str, str]] | None, *, lane: str | None,
           limit: int) -> list[Task]:
    """Up to ``limit`` cards of a status: open ones by priority (then age), finished ones newest first.

    ``rows`` are the status's :func:`scan` rows (with priority and assignee) when it was scanned.
    """
    if rows is None:  # not scanned: a finished column of the whole board
        return cards(board, ids_in(board, status, newest_first=True, limit=limit))
    mine = [r for r in rows if lane is None or r.get("assignee", "") == lane]
    if status in OPEN:
        mine.sort(key=lambda r: (-int(r.get("priority", 0)), int(r["id"])))
    else:
        mine.sort(key=lambda r: -int(r["id"]))
    return cards(board, [r["id"] for r in mine[:limit]])


def children(board: Board, task_id: str) -> list[str]:
    with translate(board.redis):
        return sorted((reply_text(c) for c in board.redis.smembers(board.keys.task_children(task_id))), key=int)


def recent_events(board: Board, count: int, upto: int) -> list[Event]:
    """The last ``count`` change-log entries up to seq ``upto``, oldest first."""
    with translate(board.redis):
        entries = board.redis.xrevrange(board.keys.log, f"{upto}-0", "-", count=count)
    return [_event(eid, f) for eid, f in reversed(entries)]


def follow(board: Board, after: str, block_ms: int) -> list[Event]:
    """Entries after stream id ``after``, waiting up to ``block_ms`` for the first (XREAD BLOCK)."""
    with translate(board.redis):
        reply = board.redis.xread({board.keys.log: after}, count=500, block=block_ms)
    entries = reply[0][1] if reply else []
    return [_event(eid, f) for eid, f in entries]


def log_info(board: Board) -> dict[str, Any]:
    """Length and first/last seq of the change log, the board's meta hash."""
    with translate(board.redis):
        pipe = board.redis.pipeline(transaction=False)
        pipe.xlen(board.keys.log)
        pipe.xrange(board.keys.log, "-", "+", count=1)
        pipe.xrevrange(board.keys.log, "+", "-", count=1)
        pipe.hgetall(board.keys.meta)
        pipe.exists(board.keys.restoring)
        pipe.zrangebyscore(board.keys.leases, "-inf", "+inf", start=0, num=1, withscores=True)
        length, first, last, meta, restoring, lease = pipe.execute()
    return {
        "log_length": int(length),
        "log_first_seq": int(reply_text(first[0][0]).split("-")[0]) if first else None,
        "log_last_seq": int(reply_text(last[0][0]).split("-")[0]) if last else None,
        "meta": reply_fields(meta),
        "restoring": bool(restoring),
        "next_lease_expiry_ms": int(lease[0][1]) if lease else None,
    }


def block_slice(board: Board) -> float:
    """Seconds one blocking read may wait: under the client's socket timeout."""
    sock = board.redis.connection_pool.connection_kwargs.get("socket_timeout")
    return min(BLOCK_SLICE, max(sock - BLOCK_MARGIN, 0.1)) if sock else BLOCK_SLICE


def changed_within(board: Board, seq: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for a log entry after ``seq`` (XREAD BLOCK, no polling)."""
    most = block_slice(board)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if follow(board, f"{seq}-0", max(int(min(left, most) * 1000), 1)):
            return True
    return False


def boards(board: Board) -> list[str]:
    """Slugs of every board on the server (those with a meta hash), sorted."""
    with translate(board.redis):
        return sorted(board_from_meta_key(reply_text(k)) for k in board.redis.scan_iter(match=ALL_BOARDS_META, count=1000))


def expired_leases(board: Board, now_ms: int) -> int:
    with translate(board.redis):
        return int(board.redis.zcount(board.keys.leases, "-inf", now_ms))
