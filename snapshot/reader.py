"""Reading a board out of Redis without stopping it.

Nothing here runs a long command: tasks are read with paged ZRANGEBYSCORE
and HGETALL/LRANGE sent a page at a time (:class:`~snapshot.wire.Wire`),
the change log with paged XRANGE, so Redis keeps serving gateways while a
100,000-task board is read (see :mod:`snapshot.sync` for how the reads
become one point-in-time cut).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from kanban_redis.connection import reply_fields, reply_text
from kanban_redis.connection import translate
from kanban_redis.keys import BoardKeys

from .wire import Wire

#: Tasks per round trip when reading the whole board (3 small commands each).
#: Redis runs a page's commands back to back before it serves another client
#: (they arrive together), so the page bounds that wait: the commands of 100
#: tasks take about 0.3 ms, of 500 about 1.6 ms (a PING behind the first
#: page of 500 waited 3-5 ms). The extra round trips overlap (see pages).
TASK_PAGE = 100
#: Change-log entries per XRANGE.
LOG_PAGE = 500
#: Most change-log entries one XTRIM drops (see BoardReader.trim).
TRIM_CHUNK = 1000


def _hash(raw: Any) -> dict[str, str]:
    """An HGETALL reply (a map in RESP3, flat pairs in RESP2; text or bytes) as a dict of text."""
    if not isinstance(raw, dict):
        pairs = iter(raw)
        raw = dict(zip(pairs, pairs))
    return raw if isinstance(next(iter(raw)), str) else reply_fields(raw)


class LogGap(Exception):
    """The change log no longer holds every entry after the requested seq (it was trimmed)."""


@dataclass(frozen=True)
class Head:
    """The board's sequence and identity, read atomically."""

    seq: int
    incarnation: str | None
    created_at: str | None
    restored_from: str | None
    restoring: str | None
    task_count: int


@dataclass
class Entry:
    """One change-log entry: the full new state of every task a script touched.

    ``events`` (a JSON array) and ``comment`` (a JSON object) stay text: the
    working copy parses them in SQLite.
    """

    seq: int
    op: str
    tasks: list[dict[str, str]]
    events: str
    comment: str | None

    @classmethod
    def parse(cls, entry_id: Any, raw: dict[Any, Any]) -> Entry:
        f = reply_fields(raw)
        tasks = json.loads(f.get("tasks") or "[]")
        return cls(seq=int(reply_text(entry_id).split("-", 1)[0]), op=f["op"],
                   tasks=[{k: str(v) for k, v in t.items()} for t in tasks] if isinstance(tasks, list) else [],
                   events=f.get("events") or "[]", comment=f.get("comment") or None)


@dataclass(frozen=True)
class LogPage:
    """Log entries read with the head (see :meth:`BoardReader.head_and_log`)."""

    entries: list[Entry]
    gap: bool  # the entry the read started from is gone: entries may be missing
    full: bool  # as many as one page holds: more may follow


@dataclass
class TaskPage:
    """Tasks read in one round trip; their history lines and comments as JSON arrays."""

    states: list[dict[str, str]]
    events: str
    comments: str


def _json_array(lines: list[Any]) -> str:
    return "[" + ",".join(map(reply_text, lines)) + "]"


class BoardReader:
    """Reads one board (client made with ``decode_responses`` either way)."""

    def __init__(self, client: Any, board: str) -> None:
        self.redis = client
        self.keys = BoardKeys(board)
        self.board = board

    def head(self) -> Head:
        """seq, meta and the restore marker in one MULTI/EXEC."""
        return self._head(None)[0]

    def head_and_log(self, after: int) -> tuple[Head, LogPage]:
        """The head and the first page of log entries after ``after``, in one MULTI/EXEC.

        Every script bumps seq and appends its entry together, so the page ends
        at ``head.seq`` exactly unless it is full: a board that changed by
        less than a page is read as one cut, in one round trip.
        """
        head, raw = self._head(after)
        start = self._starting_at(raw or [], after)
        page = LogPage(self._page(start, after, first=True), gap=start is None, full=len(raw or ()) == LOG_PAGE)
        return head, page

    def _head(self, log_after: int | None) -> tuple[Head, list[Any] | None]:
        """The head, and the log from the entry ``log_after`` on (one page) when asked for."""
        with translate(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self.keys.seq)
            pipe.hgetall(self.keys.meta)
            pipe.get(self.keys.restoring)
            pipe.zcard(self.keys.tasks)
            if log_after is not None:
                pipe.xrange(self.keys.log, self._log_from(log_after), "+", count=LOG_PAGE)
            seq, meta, restoring, count, *log = pipe.execute()
        m = reply_fields(meta or {})
        head = Head(seq=int(seq or 0), incarnation=m.get("incarnation"), created_at=m.get("created_at"),
                    restored_from=m.get("restored_from"),
                    restoring=None if restoring is None else reply_text(restoring), task_count=int(count))
        return head, (log[0] if log else None)

    def pages(self) -> Iterator[TaskPage]:
        """Every task, in id order, one round trip per page.

        A page's round trip asks for the ids of the page after it, then HGETALL
        and two LRANGE (history, comments) per task. The next page is sent as
        soon as its ids are known, before this one is parsed and written, so
        Redis reads it meanwhile.
        """
        with Wire(self.redis) as wire:
            wire.send([self._ids_after("-inf")])
            ids = self._ids(wire.receive(1)[0])
            if ids:
                wire.send(self._reads(ids))
            while ids:
                following = self._ids(wire.receive(1)[0])
                if following:
                    wire.send(self._reads(following))
                replies = wire.receive(3 * len(ids))
                for reply in replies:
                    if isinstance(reply, redis.ResponseError):
                        raise reply
                states: list[dict[str, str]] = []
                events: list[Any] = []
                comments: list[Any] = []
                for i in range(0, len(replies), 3):
                    raw, history, notes = replies[i:i + 3]
                    if raw:
                        states.append(_hash(raw))
                        events += history
                        comments += notes
                yield TaskPage(states, _json_array(events), _json_array(comments))
                ids = following

    def _ids_after(self, low: str) -> tuple[Any, ...]:
        return ("ZRANGEBYSCORE", self.keys.tasks, low, "+inf", "LIMIT", 0, TASK_PAGE)

    @staticmethod
    def _ids(reply: Any) -> list[str]:
        if isinstance(reply, redis.ResponseError):
            raise reply
        return [reply_text(i) for i in reply]

    def _reads(self, ids: list[str]) -> list[tuple[Any, ...]]:
        """The next page's ids, then each task's hash, history and comments."""
        commands = [self._ids_after(f"({ids[-1]}")]
        for tid in ids:
            commands += [("HGETALL", self.keys.task(tid)), ("LRANGE", self.keys.task_events(tid), 0, -1),
                         ("LRANGE", self.keys.task_comments(tid), 0, -1)]
        return commands

    def entries(self, after: int, upto: int | None = None) -> Iterator[list[Entry]]:
        """Log entries with after < seq <= upto (to the end when None), a page at a time.

        Raises:
            LogGap: the entry ``after`` itself is gone (``after`` > 0), so entries
                just after it may have been trimmed too.
        """
        hi = "+" if upto is None else f"{upto}-0"
        lo = self._log_from(after)
        first = True
        while True:
            with translate(self.redis):
                raw = self.redis.xrange(self.keys.log, lo, hi, count=LOG_PAGE)
            if first and self._starting_at(raw, after) is None:
                raise LogGap(f"change log no longer holds seq {after}")
            page = self._page(raw, after, first)
            first = False
            if page:
                yield page
            if len(raw) < LOG_PAGE:
                return
            lo = f"({reply_text(raw[-1][0])}"

    @staticmethod
    def _log_from(after: int) -> str:
        """XRANGE's start: the entry ``after`` itself (read to prove it is still there)."""
        return f"{after}-0" if after > 0 else "-"

    @staticmethod
    def _starting_at(raw: list[Any], after: int) -> list[Any] | None:
        """``raw`` if it starts at the entry ``after`` (or ``after`` is 0), else None: a gap."""
        if after > 0 and (not raw or reply_text(raw[0][0]) != f"{after}-0"):
            return None
        return raw

    @staticmethod
    def _page(raw: list[Any] | None, after: int, first: bool) -> list[Entry]:
        skip = 1 if first and after > 0 else 0
        return [Entry.parse(eid, f) for eid, f in (raw or [])[skip:]]

    def trim(self, seq: int) -> None:
        """Drop log entries older than ``seq`` (the entry ``seq`` stays: it proves no gap).

        In chunks of TRIM_CHUNK entries: one XTRIM drops at most 10,000 by
        default (so a long log was never trimmed to ``seq``), and freeing that
        many holds Redis for about 2 ms; a chunk takes about 0.2 ms.
        """
        with translate(self.redis):
            while self.redis.xtrim(self.keys.log, minid=f"{seq}-0", approximate=True, limit=TRIM_CHUNK):
                pass
