"""The Board API: every state change is one Lua script, reads are plain commands.

Transitions are never re-sent after a connection error (the script may have
run; its outcome is unknown): the caller gets :class:`RedisUnavailable` and
can re-read the task. Reads and heartbeats, which are safe to repeat, are
retried with redis-py's backoff.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

import redis
from pydantic import ValidationError
from pydantic_core import from_json, to_json
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .config import Settings
from .connection import connect, credentials_checked, reply_fields, reply_text, translate
from .errors import ErrorCode, InvalidInput, TaskNotFound, error_for
from .inputs import (PROGRESS_MAX_BYTES, RESULT_MAX_BYTES, TTL_MAX_SECONDS, ClaimArgs, CommentArgs, Reason,
                     TaskSpec, delay_ms, invalid, json_text, tail_bytes, validated)
from .keys import BoardKeys
from .models import Claim, Comment, Event, Status, Task, TaskEvent, constructed, from_ms, to_ms
from .scripts import BATCH, Scripts

T = TypeVar("T")

#: Most ids read per pipeline when listing.
READ_CHUNK = 500
#: Margin kept between a blocking wait and the socket timeout, in seconds.
BLOCK_MARGIN = 1.0


def _task_id(task_id: str | int) -> str:
    tid = str(task_id)
    if not tid or len(tid) > 64:
        raise InvalidInput(f"task_id: {task_id!r} is not a task id")
    return tid


class Board:
    """One board (an isolated namespace of tasks) on a Redis server.

    Args:
        redis_client: a redis-py client (``decode_responses`` either way). Prefer
            :meth:`from_url`, whose client has timeouts and no blind retries.
        board: the board's slug, ``[a-z0-9][a-z0-9_-]{0,63}``.
        clock: epoch seconds for scripts to use instead of Redis's TIME (tests).
        retry_backoff / retry_backoff_cap: seconds, for ``fail`` without a delay.

    Raises:
        InvalidInput: the slug is not valid.
    """

    def __init__(self, redis_client: Any, board: str = "default", *, clock: Callable[[], float] | None = None,
                 retry_backoff: float = 10.0, retry_backoff_cap: float = 3600.0) -> None:
        self.keys = BoardKeys(board)
        self.name = board
        self.redis = redis_client
        self._clock = clock
        self._backoff = (int(retry_backoff * 1000), int(retry_backoff_cap * 1000))
        self._scripts = Scripts(redis_client)
        # Encoded once: redis-py encodes every str argument of every call in Python.
        self._script_keys = [k.encode() for k in self.keys.script_keys()]
        self._prefix = self.keys.prefix.encode()
        self._retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3,
                            supported_errors=(redis.ConnectionError, redis.TimeoutError))

    @classmethod
    def from_url(cls, url: str | None = None, board: str | None = None, **settings: Any) -> Board:
        """A board on a new client for ``url`` (default ``REDIS_URL``); see :class:`Settings`."""
        s = Settings.from_env(redis_url=url, board=board, **settings)
        return cls(connect(s), s.board, retry_backoff=s.retry_backoff, retry_backoff_cap=s.retry_backoff_cap)

    def __repr__(self) -> str:
        return f"Board({self.name!r})"

    # -- plumbing ---------------------------------------------------------

    def _run(self, name: str, *args: Any, task_id: str | None = None, retry: bool = False) -> list[Any]:
        """Run a script; ``retry`` only for scripts that are safe to apply twice."""
        now = b"" if self._clock is None else str(to_ms(self._clock()))
        script = self._scripts[name]

        def call() -> Any:
            return script(keys=self._script_keys, args=[self._prefix, now, *args])

        if retry:
            reply = self._read(call)
        else:
            with translate(self.redis):
                reply = call()
        code = int(reply[0])
        if code != ErrorCode.OK:
            raise error_for(code, reply_text(reply[1]), task_id)
        return builtins.list(reply)

    def _read(self, fn: Callable[[], T]) -> T:
        """Run a command that is safe to repeat, retrying connection errors (not bad credentials)."""

        def once() -> T:
            with credentials_checked(self.redis):
                return fn()

        with translate(self.redis):
            return self._retry.call_with_retry(once, lambda _e: None)

    @staticmethod
    def _task(state: Any) -> Task:
        """A task state a script returned (its hash form as JSON)."""
        return Task.from_fields(from_json(state))

    # -- creating ---------------------------------------------------------

    def create(self, title: str, *, body: str = "", assignee: str | None = None, priority: int = 0,
               parents: Iterable[str] = (), idempotency_key: str | None = None, max_attempts: int = 3,
               not_before: datetime | float | None = None, status: Status | str | None = None,
               metadata: dict[str, Any] | None = None, created_by: str | None = None) -> Task:
        """Create a task; with a known ``idempotency_key``, return that task instead.

        It lands in ``status`` (triage or todo) or, when runnable, in todo while a
        parent is unfinished, scheduled until ``not_before``, else ready.

        Raises:
            InvalidInput: a field is invalid. TaskNotFound: a parent does not exist.
        """
        # Only the arguments off their defaults go through validation (the defaults
        # are valid): for a typical create that halves the validation's cost.
        given: dict[str, Any] = {"title": title, "priority": priority, "max_attempts": max_attempts}
        if body != "":
            given["body"] = body
        ids = tuple(map(str, parents))
        if ids:
            given["parents"] = ids
        for name, value in (("assignee", assignee), ("idempotency_key", idempotency_key), ("not_before", not_before),
                            ("status", status), ("metadata", metadata), ("created_by", created_by)):
            if value is not None:
                given[name] = value
        return self._create([validated(TaskSpec, **given)])[0]

    def create_many(self, specs: Iterable[TaskSpec | Mapping[str, Any]]) -> list[Task]:
        """Create many tasks in few round trips (one script per 200), in order.

        Each item takes ``create``'s arguments as a mapping (or a :class:`TaskSpec`).
        All items are validated before anything is written.
        """
        checked: list[TaskSpec] = []
        for i, s in enumerate(specs):
            try:
                checked.append(s if isinstance(s, TaskSpec) else TaskSpec(**s))
            except ValidationError as e:
                raise InvalidInput(f"specs[{i}].{invalid(e)}") from None
            except TypeError as e:  # not a mapping
                raise InvalidInput(f"specs[{i}]: {e}") from None
        tasks: list[Task] = []
        for start in range(0, len(checked), BATCH):
            tasks.extend(self._create(checked[start:start + BATCH]))
        return tasks

    def _create(self, specs: list[TaskSpec]) -> list[Task]:
        # pydantic-core's encoder: 4x faster than json's, and every value is a
        # validated str, int or list of str (UTF-8 as is instead of \u escapes).
        payload = to_json([s.to_script() for s in specs])
        reply = self._run("create", self.name, secrets.token_hex(8), payload)
        return [self._task(state) for state in reply[2:]]

    # -- reading ----------------------------------------------------------

    def get(self, task_id: str | int) -> Task:
        """The task; TaskNotFound if it does not exist."""
        tid = _task_id(task_id)
        raw = self._read(lambda: self.redis.hgetall(self.keys.task(tid)))
        if not raw:
            raise TaskNotFound(f"task {tid} not found")
        return Task.from_fields(reply_fields(raw))

    def list(self, *, status: Status | str | None = None, assignee: str | None = None,
             limit: int | None = None) -> list[Task]:
        """Tasks in id (creation) order, filtered by status and lane."""
        try:
            st = Status(status) if status is not None else None
        except ValueError:
            raise InvalidInput(f"status: unknown status {status!r}") from None
        if limit is not None and limit < 0:
            raise InvalidInput("limit: must be >= 0")
        index = self.keys.status(st.value) if st else self.keys.tasks
        out: list[Task] = []
        start = 0
        while limit is None or len(out) < limit:
            ids = self._read(lambda: self.redis.zrange(index, start, start + READ_CHUNK - 1))
            if not ids:
                break
            start += len(ids)

            def fetch(ids: list[Any] = ids) -> list[Any]:
                pipe = self.redis.pipeline(transaction=False)
                for tid in ids:
                    pipe.hgetall(self.keys.task(reply_text(tid)))
                replies: list[Any] = pipe.execute()
                return replies

            for raw in self._read(fetch):
                if raw:
                    task = Task.from_fields(reply_fields(raw))
                    if assignee is None or task.assignee == assignee:
                        out.append(task)
        return out if limit is None else out[:limit]

    def history(self, task_id: str | int) -> builtins.list[TaskEvent]:
        """The task's events, oldest first."""
        tid = _task_id(task_id)
        return [TaskEvent.from_json(e) for e in self._read(lambda: self.redis.lrange(self.keys.task_events(tid), 0, -1))]

    def comments(self, task_id: str | int) -> builtins.list[Comment]:
        tid = _task_id(task_id)
        return [Comment.from_json(c) for c in self._read(lambda: self.redis.lrange(self.keys.task_comments(tid), 0, -1))]

    def events(self, *, after: int | None = None, count: int = 100) -> builtins.list[Event]:
        """Change-log entries with seq > ``after`` (from the oldest kept), oldest first."""
        lo = "-" if after is None else f"({int(after)}-0"
        entries = self._read(lambda: self.redis.xrange(self.keys.log, lo, "+", count=count))
        return [Event.from_entry(reply_text(eid), reply_fields(f)) for eid, f in entries]

    @property
    def seq(self) -> int:
        """The board sequence: bumped by every mutation; a task's rev is one of its values."""
        return int(self._read(lambda: self.redis.get(self.keys.seq)) or 0)

    # -- running ----------------------------------------------------------

    def claim(self, *, assignee: str | None = None, worker: str, ttl: float = 900,
              block: float | None = None) -> Claim | None:
        """Claim the next ready task of a lane (``None``: the unassigned lane).

        Highest priority first, FIFO among equals. With ``block`` (seconds) it
        waits on the lane's signal key (BZPOPMIN, no polling) and returns as soon
        as a task is ready, or ``None`` at the timeout.
        """
        args = validated(ClaimArgs, assignee=assignee, worker=worker, ttl=ttl, block=block)
        deadline = time.monotonic() + (args.block or 0)
        woke = False
        while True:
            token = secrets.token_hex(16)
            reply = self._run("claim", args.assignee or "", token, args.worker, str(int(args.ttl * 1000)),
                              *(("1",) if woke else ()))
            if reply[1]:
                return constructed(Claim, {"task": self._task(reply[1]), "token": token})
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = remaining
            if len(reply) > 2 and reply[2] is not None:  # a scheduled task or lease falls due
                wait = min(wait, max(int(reply[2]), 1) / 1000)
            sock = self.redis.connection_pool.connection_kwargs.get("socket_timeout")
            if sock:
                wait = min(wait, max(sock - BLOCK_MARGIN, 0.1))
            with translate(self.redis):
                woke = self.redis.bzpopmin(self.keys.signal(args.assignee), timeout=max(wait, 0.01)) is not None

    def heartbeat(self, task_id: str | int, token: str, *, ttl: float | None = None) -> datetime:
        """Extend the claim's lease (by ``ttl`` seconds, default the claim's); returns the new expiry.

        Raises StaleClaim when ``token`` is no longer the live claim.
        """
        tid = _task_id(task_id)
        if ttl is not None and not 0 < ttl <= TTL_MAX_SECONDS:
            raise InvalidInput("ttl: must be > 0 and at most a week")
        ms = "" if ttl is None else str(int(ttl * 1000))
        reply = self._run("heartbeat", tid, token, ms, task_id=tid, retry=True)
        expires = from_ms(reply_text(reply[1]))
        assert expires is not None
        return expires

    @overload
    def complete(self, task_id: str | int, token: str, *, result: Any = None,
                 claim_next: Literal[False] = False) -> Task: ...

    @overload
    def complete(self, task_id: str | int, token: str, *, result: Any = None, claim_next: Literal[True],
                 worker: str | None = None, ttl: float | None = None) -> tuple[Task, Claim | None]: ...

    def complete(self, task_id: str | int, token: str, *, result: Any = None, claim_next: bool = False,
                 worker: str | None = None, ttl: float | None = None) -> Task | tuple[Task, Claim | None]:
        """Mark the claimed task done; children whose parents are all done become ready.

        With ``claim_next=True`` the same script claims the next task of the lane
        (same worker and ttl unless given) and ``(done_task, next_claim_or_None)``
        is returned.

        Raises:
            StaleClaim: ``token`` is not the live claim. InvalidInput: result not JSON.
        """
        tid = _task_id(task_id)
        try:
            payload = "" if result is None else json_text(result, RESULT_MAX_BYTES)
        except ValueError as e:
            raise InvalidInput(f"result: {e}") from None
        if not claim_next:  # the claim_next arguments are left off: every argument costs redis-py encoding
            return self._task(self._run("complete", tid, token, payload, task_id=tid)[1])
        next_token = secrets.token_hex(16)
        reply = self._run("complete", tid, token, payload, next_token, worker or "",
                          "" if ttl is None else str(int(ttl * 1000)), task_id=tid)
        done = self._task(reply[1])
        return done, (constructed(Claim, {"task": self._task(reply[2]), "token": next_token}) if reply[2] else None)

    def fail(self, task_id: str | int, token: str, *, error: str, retry: bool = True,
             delay: float | None = None, kind: str | None = None) -> Task:
        """Record a failed run: retry (after ``delay`` s, else exponential backoff) while
        attempts < max_attempts, then block with kind ``transient``; ``retry=False``
        blocks at once with ``kind`` (default ``failed``). Long error texts keep their last 64 KiB.
        """
        tid = _task_id(task_id)
        ms = "" if delay is None else str(delay_ms(delay))
        if kind is not None and not 0 < len(kind) <= 64:
            raise InvalidInput("kind: must be 1 to 64 characters")
        reply = self._run("fail", tid, token, tail_bytes(str(error)), "1" if retry else "0",
                          ms, *self._backoff, kind or "",
                          task_id=tid)
        return self._task(reply[1])

    def release(self, task_id: str | int, token: str, *, reason: str, delay: float = 0) -> Task:
        """Give a claimed task back without counting the run against max_attempts:
        ready at once, or scheduled ``delay`` seconds from now.

        For a run that did not really happen: a worker stopping, or a run that
        asks to be tried again later.

        Raises:
            StaleClaim: ``token`` is not the live claim. InvalidInput: bad reason or delay.
        """
        tid = _task_id(task_id)
        ms = delay_ms(delay)
        why = validated(Reason, reason=reason).reason
        return self._task(self._run("release", tid, token, why, str(ms), task_id=tid)[1])

    def progress(self, task_id: str | int, token: str, value: Any) -> Task:
        """Record how far the claimed task has got (any JSON value, replacing the last one).

        Raises:
            StaleClaim: ``token`` is not the live claim. InvalidInput: value not JSON or too large.
        """
        tid = _task_id(task_id)
        try:
            payload = json_text(value, PROGRESS_MAX_BYTES)
        except ValueError as e:
            raise InvalidInput(f"progress: {e}") from None
        return self._task(self._run("progress", tid, token, payload, task_id=tid)[1])

    # -- by hand ----------------------------------------------------------

    def move(self, task_id: str | int, status: Status | str, *, reason: str | None = None) -> Task:
        """Move a task by hand, as ``models.ALLOWED_MOVES`` allows (never into or out of running)."""
        tid = _task_id(task_id)
        try:
            st = Status(status)
        except ValueError:
            raise InvalidInput(f"status: unknown status {status!r}") from None
        why = validated(Reason, reason=reason).reason if reason else ""
        return self._task(self._run("move", tid, st.value, why, task_id=tid)[1])

    def block(self, task_id: str | int, *, reason: str, kind: str | None = None) -> Task:
        tid = _task_id(task_id)
        args = validated(Reason, reason=reason, kind=kind or "manual")
        return self._task(self._run("block", tid, args.reason, args.kind, task_id=tid)[1])

    def unblock(self, task_id: str | int) -> Task:
        tid = _task_id(task_id)
        return self._task(self._run("unblock", tid, task_id=tid)[1])

    def cancel(self, task_id: str | int) -> Task:
        tid = _task_id(task_id)
        return self._task(self._run("cancel", tid, task_id=tid)[1])

    def comment(self, task_id: str | int, *, author: str, body: str) -> Comment:
        tid = _task_id(task_id)
        args = validated(CommentArgs, author=author, body=body)
        return Comment.from_json(self._run("comment", tid, args.author, args.body, task_id=tid)[2])

    def link(self, parent_id: str | int, child_id: str | int) -> Task:
        """Make ``child_id`` depend on ``parent_id``; returns the child.

        Raises: TaskNotFound, DependencyCycle, InvalidTransition (running/done child).
        """
        pid, cid = _task_id(parent_id), _task_id(child_id)
        return self._task(self._run("link", pid, cid, task_id=cid)[1])

    # -- housekeeping -----------------------------------------------------

    def reclaim_expired(self) -> int:
        """Requeue (or dead-letter) running tasks whose lease expired; returns how many."""
        return self._drain("reclaim")

    def promote_due(self) -> int:
        """Move scheduled tasks whose not_before has passed to ready; returns how many."""
        return self._drain("promote")

    def _drain(self, script: str) -> int:
        total = 0
        while True:
            n = int(self._run(script)[1])  # at most BATCH tasks per call
            total += n
            if n < BATCH:
                return total
