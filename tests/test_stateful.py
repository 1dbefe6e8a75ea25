"""Random sequences of board operations against a pure-Python model of the rules.

After every step the board and the model must agree on each task's status,
attempts, rev, claim token, block kind and history length, on every index
(status sets, ready queues in claim order, leases, scheduled), on ``seq``,
on the change log's length and on what its newest entry carries; and the
board rebuilt from the change log alone must equal every task's hash (lease
times aside: heartbeats do not log). The same machine runs on fakeredis and
on the real server; the clock is injected, so time is part of the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from kanban_redis import Board, Task
from kanban_redis.errors import (DependencyCycle, InvalidTransition, KanbanError, StaleClaim,
                                 TaskNotFound)
from kanban_redis.models import ALLOWED_MOVES, Status

START_MS = 1_800_000_000_000
LANES = (None, "a", "b")
MISSING = "999999"
BOGUS_TOKEN = "0" * 32
BACKOFF_MS = (10_000, 3_600_000)  # Board's defaults: retry_backoff=10 s, cap 1 h
LEASE_FIELDS = {"claim_expires_at": None, "heartbeat_at": None}


@dataclass
class MTask:
    id: str
    lane: str | None
    priority: int
    max_attempts: int
    parents: list[str]
    status: str
    not_before: int | None
    rev: int
    ready_rev: int = 0
    attempts: int = 0
    token: str | None = None
    tokens: list[str] = field(default_factory=list)
    expires: int | None = None
    ttl: int | None = None
    completed: bool = False  # completed_at is set: done now or once
    block_kind: str | None = None
    events: int = 0
    children: set[str] = field(default_factory=set)


class Model:
    """The rules of the board, written plainly. Raises the board's exception types."""

    def __init__(self) -> None:
        self.tasks: dict[str, MTask] = {}
        self.idem: dict[str, str] = {}
        self.seq = 0
        self.log = 0
        self.now = START_MS
        self.begin()

    # -- one script's bookkeeping -------------------------------------------

    def begin(self) -> None:
        self.touched: list[str] = []
        self.records = 0
        self.logged: str | None = None

    def touch(self, t: MTask) -> int:
        self.seq += 1
        t.rev = self.seq
        if t.id not in self.touched:
            self.touched.append(t.id)
        return self.seq

    def record(self, t: MTask) -> None:
        t.events += 1
        self.records += 1

    def commit(self, op: str, always: bool = False) -> None:
        if self.touched or always:
            self.log += 1
            self.logged = op

    def get(self, tid: str) -> MTask:
        if tid not in self.tasks:
            raise TaskNotFound(tid)
        return self.tasks[tid]

    # -- rules --------------------------------------------------------------

    def finished(self, t: MTask) -> bool:
        return t.status == "done" or (t.status == "archived" and t.completed)

    def unfinished(self, t: MTask) -> list[str]:
        return [p for p in t.parents if not self.finished(self.tasks[p])]

    def runnable(self, t: MTask) -> str:
        if self.unfinished(t):
            return "todo"
        if t.not_before is not None and t.not_before > self.now:
            return "scheduled"
        return "ready"

    def set_status(self, t: MTask, status: str, rev: int) -> None:
        t.status = status
        if status == "ready":
            t.ready_rev = rev

    def block_task(self, t: MTask, rev: int, kind: str) -> None:
        self.set_status(t, "blocked", rev)
        t.block_kind = kind
        self.record(t)

    def end_lease(self, t: MTask) -> None:
        t.expires = t.ttl = None

    def release_children(self, t: MTask) -> None:
        for cid in sorted(t.children, key=int):
            c = self.tasks[cid]
            if c.status == "todo" and (to := self.runnable(c)) != "todo":
                self.set_status(c, to, self.touch(c))
                self.record(c)

    def promote_due(self) -> int:
        due = sorted((t for t in self.tasks.values() if t.status == "scheduled" and t.not_before <= self.now),
                     key=lambda t: (t.not_before, t.id))
        for t in due:
            self.set_status(t, "ready", self.touch(t))
            self.record(t)
        return len(due)

    def reclaim_expired(self) -> int:
        expired = sorted((t for t in self.tasks.values() if t.status == "running" and t.expires <= self.now),
                         key=lambda t: (t.expires, t.id))
        for t in expired:
            rev = self.touch(t)
            self.end_lease(t)
            self.record(t)
            if t.attempts >= t.max_attempts:
                self.block_task(t, rev, "transient")
            else:
                self.set_status(t, "ready", rev)
        return len(expired)

    def claim_head(self, lane: str | None, token: str, ttl: int) -> str | None:
        ready = [t for t in self.tasks.values() if t.status == "ready" and t.lane == lane]
        if not ready:
            return None
        t = min(ready, key=lambda t: (-t.priority, t.ready_rev))
        rev = self.touch(t)
        t.attempts += 1
        t.token, t.ttl, t.expires = token, ttl, self.now + ttl
        t.tokens.append(token)
        self.set_status(t, "running", rev)
        self.record(t)
        return t.id

    def check_claim(self, tid: str, token: str) -> MTask:
        t = self.get(tid)
        if t.status != "running" or t.token != token:
            raise StaleClaim(tid)
        return t

    def check_move(self, t: MTask, to: str) -> None:
        if t.status == "running" or to == "running":
            raise InvalidTransition(t.id)
        if Status(to) not in ALLOWED_MOVES[Status(t.status)]:
            raise InvalidTransition(t.id)
        if to in ("ready", "scheduled") and self.unfinished(t):
            raise InvalidTransition(t.id)
        if to == "scheduled" and not (t.not_before is not None and t.not_before > self.now):
            raise InvalidTransition(t.id)

    def apply_move(self, t: MTask, to: str, rev: int) -> None:
        if t.status == "blocked":
            t.block_kind = None
        if to == "ready":
            t.not_before = None
        self.set_status(t, to, rev)
        if to == "done":
            t.completed = True
        self.record(t)
        if to == "done":
            self.release_children(t)

    # -- operations (one script each) -----------------------------------------

    def create(self, specs: list[dict[str, Any]]) -> list[str]:
        for s in specs:
            for p in s.get("parents", ()):
                self.get(p)
        ids = []
        for s in specs:
            key = s.get("idempotency_key")
            if key in self.idem:
                ids.append(self.idem[key])
                continue
            self.seq += 1
            tid = str(self.seq)
            nb = s.get("not_before")
            t = MTask(id=tid, lane=s.get("assignee"), priority=s.get("priority", 0),
                      max_attempts=s.get("max_attempts", 3), parents=list(dict.fromkeys(s.get("parents", ()))),
                      status="todo", not_before=None if nb is None else int(nb * 1000), rev=self.seq)
            self.tasks[tid] = t
            self.touched.append(tid)
            for p in t.parents:
                self.tasks[p].children.add(tid)
            if key is not None:
                self.idem[key] = tid
            status = s.get("status")
            self.set_status(t, status if status in ("triage", "todo") else self.runnable(t), t.rev)
            self.record(t)
            ids.append(tid)
        self.commit("create")
        return ids

    def claim(self, lane: str | None, token: str | None, ttl: int) -> str | None:
        self.promote_due()
        self.reclaim_expired()
        tid = self.claim_head(lane, token, ttl) if token else None
        self.commit("claim")
        return tid

    def complete(self, tid: str, token: str, next_token: str | None, ttl: int | None) -> str | None:
        t = self.check_claim(tid, token)
        lease = t.ttl
        self.set_status(t, "done", self.touch(t))
        self.end_lease(t)
        t.completed = True
        self.record(t)
        self.release_children(t)
        nxt = None
        if next_token:
            self.promote_due()
            self.reclaim_expired()
            nxt = self.claim_head(t.lane, next_token, ttl or lease)
        self.commit("complete")
        return nxt

    def fail(self, tid: str, token: str, retry: bool, delay_ms: int | None) -> str:
        t = self.check_claim(tid, token)
        rev = self.touch(t)
        self.end_lease(t)
        self.record(t)
        if retry and t.attempts < t.max_attempts:
            delay = delay_ms if delay_ms is not None else min(BACKOFF_MS[1], BACKOFF_MS[0] * 2 ** (t.attempts - 1))
            if delay > 0:
                t.not_before = self.now + delay
                self.set_status(t, "scheduled", rev)
            else:
                self.set_status(t, "ready", rev)
        else:
            self.block_task(t, rev, "transient" if retry else "failed")
        self.commit("fail")
        return tid

    def housekeeping(self, op: str) -> int:
        n = self.reclaim_expired() if op == "reclaim" else self.promote_due()
        self.commit(op)
        return n

    def heartbeat(self, tid: str, token: str, ttl: int | None) -> int:
        t = self.check_claim(tid, token)
        t.ttl = ttl or t.ttl
        t.expires = self.now + t.ttl
        return t.expires

    def move(self, tid: str, to: str) -> str:
        t = self.get(tid)
        self.check_move(t, to)
        self.apply_move(t, to, self.touch(t))
        if to == "blocked":
            t.block_kind = "manual"
        self.commit("move")
        return tid

    def block(self, tid: str, kind: str) -> str:
        t = self.get(tid)
        self.check_move(t, "blocked")
        self.block_task(t, self.touch(t), kind)
        self.commit("block")
        return tid

    def unblock(self, tid: str) -> str:
        t = self.get(tid)
        if t.status != "blocked":
            raise InvalidTransition(tid)
        rev = self.touch(t)
        if t.block_kind == "transient":
            t.attempts = 0
        self.apply_move(t, self.runnable(t), rev)
        self.commit("unblock")
        return tid

    def cancel(self, tid: str) -> str:
        t = self.get(tid)
        if t.status in ("running", "archived"):
            raise InvalidTransition(tid)
        self.apply_move(t, "archived", self.touch(t))
        self.commit("cancel")
        return tid

    def comment(self, tid: str) -> str:
        t = self.get(tid)
        self.touch(t)
        self.record(t)
        self.commit("comment", always=True)
        return tid

    def link(self, pid: str, cid: str) -> str:
        p, c = self.get(pid), self.get(cid)
        if pid in c.parents:
            return cid
        seen, stack = set(), [pid]
        while stack:
            cur = stack.pop()
            if cur == cid:
                raise DependencyCycle(cid)
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.tasks[cur].parents)
        done = self.finished(p)
        if not done and c.status in ("running", "done", "archived"):
            raise InvalidTransition(cid)
        rev = self.touch(c)
        c.parents.append(pid)
        p.children.add(cid)
        if not done and c.status in ("ready", "scheduled"):
            self.set_status(c, "todo", rev)
        self.record(c)
        self.commit("link")
        return cid


TOKEN_CHOICES = st.sampled_from(["live", "live", "live", "old", "bogus"])
TASK = st.integers(min_value=-1, max_value=50)  # -1: an id that does not exist
STATUSES = st.sampled_from([s.value for s in Status])


class BoardMachine(RuleBasedStateMachine):
    """Drives one board and the model with the same operations."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.model = Model()
        self.board = Board(client, "sm", clock=lambda: self.model.now / 1000)
        self.client = client
        # the board as a reader rebuilds it from the change log alone
        self.replayed: dict[str, Task] = {}
        self.replayed_history: dict[str, list[str]] = {}

    # -- helpers ------------------------------------------------------------

    def pick(self, i: int, status: str | None = None) -> str:
        """Task number ``i`` (-1: a missing id), among those in ``status`` when there are any."""
        ids = sorted(self.model.tasks, key=int)
        if status:
            ids = [t for t in ids if self.model.tasks[t].status == status] or ids
        return MISSING if i < 0 or not ids else ids[i % len(ids)]

    def has(self, status: str) -> bool:
        return any(t.status == status for t in self.model.tasks.values())

    def token(self, tid: str, choice: str) -> str:
        tokens = self.model.tasks[tid].tokens if tid in self.model.tasks else []
        if choice == "live" and tokens:
            return tokens[-1]
        if choice == "old" and len(tokens) > 1:
            return tokens[-2]
        return BOGUS_TOKEN

    def both(self, on_board: Callable[[], Any], on_model: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Run one operation on both sides: same outcome or same error type, same log entry."""
        log_before = self.client.xlen(self.board.keys.log)
        self.model.begin()
        got: Any = None
        got_err: type[KanbanError] | None = None
        try:
            got = on_board()
        except KanbanError as e:
            got_err = type(e)
        want: Any = None
        want_err: type[KanbanError] | None = None
        try:
            want = on_model(got)
        except KanbanError as e:
            want_err = type(e)
        assert got_err == want_err, f"board raised {got_err}, model {want_err}"
        self.check_log_entry(log_before)
        return got, want

    def check_log_entry(self, log_before: int) -> None:
        m = self.model
        assert self.client.xlen(self.board.keys.log) == log_before + (1 if m.logged else 0)
        if not m.logged:
            return
        (entry,) = self.board.events(after=m.seq - 1)
        assert entry.seq == m.seq
        assert entry.op == m.logged
        assert sorted(t.id for t in entry.tasks) == sorted(m.touched)
        assert len(entry.history) == m.records
        for t in entry.tasks:
            assert (t.status.value, t.rev) == (m.tasks[t.id].status, m.tasks[t.id].rev)
            self.replayed[t.id] = t
        for ev in entry.history:
            self.replayed_history.setdefault(ev.task_id, []).append(ev.kind)

    def transition(self, tid: str, on_board: Callable[[], Any], on_model: Callable[[], Any]) -> None:
        """An operation that returns the task: same outcome, and the returned task as modelled."""
        got, _ = self.both(on_board, lambda _: on_model())
        if got is not None:
            self.same_task(got, tid)

    def same_task(self, task: Any, tid: str | None) -> None:
        if tid is None:
            assert task is None
            return
        assert task is not None and task.id == tid
        mt = self.model.tasks[tid]
        assert (task.status.value, task.rev, task.attempts) == (mt.status, mt.rev, mt.attempts)

    # -- rules --------------------------------------------------------------

    @initialize(specs=st.lists(st.fixed_dictionaries({"assignee": st.sampled_from(LANES),
                                                      "max_attempts": st.integers(1, 2)}),
                               max_size=4))
    def seed_tasks(self, specs: list[dict[str, Any]]) -> None:
        if specs:
            self.create_many(specs)

    @rule(lane=st.sampled_from(LANES), priority=st.integers(-1, 1),
          parents=st.lists(TASK, max_size=2), key=st.sampled_from([None, "k1", "k2"]),
          status=st.sampled_from([None, "triage", "todo", "ready", "scheduled"]),
          nb=st.sampled_from([None, -10, 0, 20]), max_attempts=st.integers(1, 3))
    def create(self, lane: str | None, priority: int, parents: list[int], key: str | None,
               status: str | None, nb: int | None, max_attempts: int) -> None:
        spec: dict[str, Any] = {"title": "t", "assignee": lane, "priority": priority,
                                "parents": [self.pick(i) for i in parents], "idempotency_key": key,
                                "status": status, "max_attempts": max_attempts,
                                "not_before": None if nb is None else self.model.now / 1000 + nb}
        got, want = self.both(lambda: self.board.create(**spec), lambda _: self.model.create([spec])[0])
        if got is not None:
            self.same_task(got, want)

    @rule(specs=st.lists(st.fixed_dictionaries({"assignee": st.sampled_from(LANES),
                                                "priority": st.integers(-1, 1),
                                                "idempotency_key": st.sampled_from([None, "k2", "k3"])}),
                         min_size=1, max_size=3))
    def create_many(self, specs: list[dict[str, Any]]) -> None:
        specs = [{"title": "m", **s} for s in specs]
        got, want = self.both(lambda: self.board.create_many(specs), lambda _: self.model.create(specs))
        assert [t.id for t in got] == want
        for t in got:
            self.same_task(t, t.id)

    @rule(lane=st.sampled_from(LANES), ttl=st.sampled_from([5, 30]))
    def claim(self, lane: str | None, ttl: int) -> None:
        got, want = self.both(lambda: self.board.claim(assignee=lane, worker="w", ttl=ttl),
                              lambda c: self.model.claim(lane, c.token if c else "-", ttl * 1000))
        self.same_task(got.task if got else None, want)

    @rule(i=TASK, choice=TOKEN_CHOICES, claim_next=st.booleans(), ttl=st.sampled_from([None, 7]))
    @precondition(lambda self: self.has("running"))
    def complete(self, i: int, choice: str, claim_next: bool, ttl: int | None) -> None:
        tid = self.pick(i, "running")
        token = self.token(tid, choice)
        if claim_next:
            got, want = self.both(
                lambda: self.board.complete(tid, token, result={"ok": 1}, claim_next=True, ttl=ttl),
                lambda r: self.model.complete(tid, token, r[1].token if r and r[1] else "-",
                                              None if ttl is None else ttl * 1000))
            if got is not None:
                self.same_task(got[0], tid)
                self.same_task(got[1].task if got[1] else None, want)
        else:
            self.transition(tid, lambda: self.board.complete(tid, token),
                            lambda: self.model.complete(tid, token, None, None))

    @rule(i=TASK, choice=TOKEN_CHOICES, retry=st.booleans(), delay=st.sampled_from([None, 0, 0, 5]))
    @precondition(lambda self: self.has("running"))
    def fail(self, i: int, choice: str, retry: bool, delay: int | None) -> None:
        tid = self.pick(i, "running")
        token = self.token(tid, choice)
        self.transition(tid, lambda: self.board.fail(tid, token, error="boom", retry=retry, delay=delay),
                        lambda: self.model.fail(tid, token, retry, None if delay is None else delay * 1000))

    @rule(i=TASK, choice=TOKEN_CHOICES, ttl=st.sampled_from([None, 20]))
    @precondition(lambda self: self.has("running"))
    def heartbeat(self, i: int, choice: str, ttl: int | None) -> None:
        tid = self.pick(i, "running")
        token = self.token(tid, choice)
        got, want = self.both(lambda: self.board.heartbeat(tid, token, ttl=ttl),
                              lambda _: self.model.heartbeat(tid, token, None if ttl is None else ttl * 1000))
        if got is not None:
            assert int(got.timestamp() * 1000) == want

    @rule(i=TASK, to=STATUSES)
    def move(self, i: int, to: str) -> None:
        tid = self.pick(i)
        self.transition(tid, lambda: self.board.move(tid, to), lambda: self.model.move(tid, to))

    @rule(i=TASK, kind=st.sampled_from(["manual", "external"]))
    def block(self, i: int, kind: str) -> None:
        tid = self.pick(i)
        self.transition(tid, lambda: self.board.block(tid, reason="why", kind=kind),
                        lambda: self.model.block(tid, kind))

    @rule(i=TASK)
    @precondition(lambda self: self.has("blocked"))
    def unblock(self, i: int) -> None:
        tid = self.pick(i, "blocked")
        self.transition(tid, lambda: self.board.unblock(tid), lambda: self.model.unblock(tid))

    @rule(i=TASK)
    def cancel(self, i: int) -> None:
        tid = self.pick(i)
        self.transition(tid, lambda: self.board.cancel(tid), lambda: self.model.cancel(tid))

    @rule(i=TASK)
    def comment(self, i: int) -> None:
        tid = self.pick(i)
        got, _ = self.both(lambda: self.board.comment(tid, author="me", body="hi"),
                           lambda _: self.model.comment(tid))
        if got is not None:
            assert got.task_id == tid and got.seq == self.model.seq

    @rule(i=TASK, j=TASK)
    def link(self, i: int, j: int) -> None:
        pid, cid = self.pick(i), self.pick(j)
        self.transition(cid, lambda: self.board.link(pid, cid), lambda: self.model.link(pid, cid))

    @rule(seconds=st.sampled_from([1, 6, 25, 60]))
    def advance_clock(self, seconds: int) -> None:
        self.model.now += seconds * 1000

    @rule()
    def reclaim(self) -> None:
        got, want = self.both(self.board.reclaim_expired, lambda _: self.model.housekeeping("reclaim"))
        assert got == want

    @rule()
    def promote(self) -> None:
        got, want = self.both(self.board.promote_due, lambda _: self.model.housekeeping("promote"))
        assert got == want

    # -- agreement after every step -------------------------------------------

    @invariant()
    def agree(self) -> None:
        m, k = self.model, self.board.keys
        ids = sorted(m.tasks, key=int)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(k.seq)
        pipe.xlen(k.log)
        for tid in ids:
            pipe.hgetall(k.task(tid))
            pipe.lrange(k.task_events(tid), 0, -1)
        for s in Status:
            pipe.zrange(k.status(s.value), 0, -1)
        for lane in LANES:
            pipe.zrange(k.ready(lane), 0, -1)
        pipe.zrange(k.leases, 0, -1, withscores=True)
        pipe.zrange(k.scheduled, 0, -1, withscores=True)
        out = iter(pipe.execute())

        assert int(next(out) or 0) == m.seq
        assert next(out) == m.log
        for tid in ids:
            t = m.tasks[tid]
            task = Task.from_fields(next(out))
            assert (tid, task.status.value, task.attempts, task.rev, task.claim_token, task.block_kind) == (
                tid, t.status, t.attempts, t.rev, t.tokens[-1] if t.tokens else None, t.block_kind)
            # heartbeats extend leases without logging: everything else is in the log
            assert task.model_copy(update=LEASE_FIELDS) == self.replayed[tid].model_copy(update=LEASE_FIELDS)
            history = [json.loads(e)["kind"] for e in next(out)]
            assert len(history) == t.events and history == self.replayed_history[tid], f"history of task {tid}"
        for s in Status:
            assert next(out) == [tid for tid in ids if m.tasks[tid].status == s.value], f"index {s.value}"
        for lane in LANES:
            ready = sorted((t for t in m.tasks.values() if t.status == "ready" and t.lane == lane),
                           key=lambda t: (-t.priority, t.ready_rev))
            assert next(out) == [t.id for t in ready], f"ready queue of lane {lane!r}"
        assert dict(next(out)) == {t.id: t.expires for t in m.tasks.values() if t.status == "running"}
        assert dict(next(out)) == {t.id: t.not_before for t in m.tasks.values() if t.status == "scheduled"}


SETTINGS = settings(max_examples=30, stateful_step_count=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("backend", ["fake", "real"])
def test_board_agrees_with_model(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "real":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)

        def connect() -> Any:
            client.flushdb()
            return client
    else:
        def connect() -> Any:
            return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)

    try:
        run_state_machine_as_test(lambda: BoardMachine(connect()), settings=SETTINGS)
    finally:
        if backend == "real":
            client.close()
