"""Board semantics, each on fakeredis and on a real server (the ``r`` fixture)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from kanban_redis import (ALLOWED_MOVES, Board, BoardRestoring, Claim, DependencyCycle, InvalidInput,
                          InvalidTransition, StaleClaim, Status, Task, TaskNotFound)


def ops(board: Board) -> list[str]:
    return [e.op for e in board.events(count=10_000)]


# -- create -----------------------------------------------------------------


def test_create_returns_a_ready_task_whose_rev_is_the_board_seq(board: Board) -> None:
    t = board.create("write docs", body="b", assignee="docs", priority=3, metadata={"k": [1]}, created_by="me")
    assert (t.status, t.title, t.body, t.assignee, t.priority, t.metadata, t.created_by) == (
        Status.READY, "write docs", "b", "docs", 3, {"k": [1]}, "me")
    assert t.rev == board.seq == int(t.id) and t.attempts == 0 and t.max_attempts == 3
    assert board.get(t.id) == t


def test_get_unknown_task_raises(board: Board) -> None:
    with pytest.raises(TaskNotFound):
        board.get("999")


def test_idempotency_key_returns_the_first_task_and_writes_nothing(board: Board) -> None:
    first = board.create("a", idempotency_key="req-1")
    seq = board.seq
    again = board.create("something else", idempotency_key="req-1")
    assert again == first and board.seq == seq and len(board.list()) == 1


def test_create_many_creates_in_order_in_one_log_entry(board: Board) -> None:
    tasks = board.create_many([{"title": f"t{i}", "priority": i % 2} for i in range(5)])
    assert [t.title for t in tasks] == [f"t{i}" for i in range(5)]
    assert ops(board) == ["create"]
    assert board.seq == 5 and len({t.rev for t in tasks}) == 5


def test_create_many_validates_every_item_before_writing(board: Board) -> None:
    with pytest.raises(InvalidInput, match=r"specs\[1\]\.title"):
        board.create_many([{"title": "ok"}, {"title": ""}])
    assert board.seq == 0


def test_create_with_unknown_parent_writes_nothing(board: Board) -> None:
    with pytest.raises(TaskNotFound, match="42"):
        board.create("child", parents=["42"])
    assert board.seq == 0 and board.list() == []


def test_created_statuses(board: Board, clock) -> None:  # noqa: ANN001
    b = Board(board.redis, "c", clock=clock)
    assert b.create("t", status="triage").status == Status.TRIAGE
    assert b.create("t", status="todo").status == Status.TODO
    later = b.create("t", not_before=clock.now + 60)
    assert later.status == Status.SCHEDULED and later.not_before is not None
    assert b.create("t", not_before=clock.now - 60).status == Status.READY
    with pytest.raises(InvalidInput, match="status"):
        b.create("t", status="done")
    with pytest.raises(InvalidInput, match="status"):
        b.create("t", status="nonsense")


# -- claims -----------------------------------------------------------------


def test_claim_takes_highest_priority_then_oldest(board: Board) -> None:
    low = board.create("low", priority=0)
    high1 = board.create("high1", priority=5)
    high2 = board.create("high2", priority=5)
    order = [board.claim(worker="w").task.id for _ in range(3)]
    assert order == [high1.id, high2.id, low.id]
    assert board.claim(worker="w") is None


def test_lanes_are_isolated(board: Board) -> None:
    a = board.create("a", assignee="alpha")
    u = board.create("unassigned")
    assert board.claim(assignee="beta", worker="w") is None
    assert board.claim(worker="w").task.id == u.id
    assert board.claim(worker="w") is None
    assert board.claim(assignee="alpha", worker="w").task.id == a.id


def test_claim_makes_running_with_token_and_counts_attempts(board: Board) -> None:
    t = board.create("t")
    c = board.claim(worker="w1", ttl=30)
    assert c is not None and c.task.id == t.id
    assert (c.task.status, c.task.attempts, c.task.claim_worker, c.task.claim_token) == (
        Status.RUNNING, 1, "w1", c.token)
    assert c.expires_at - c.task.claimed_at == timedelta(seconds=30)
    assert board.claim(worker="w2") is None  # one winner


def test_stale_token_is_refused_and_changes_nothing(board: Board) -> None:
    board.create("t")
    c = board.claim(worker="w")
    before, seq = board.get(c.id), board.seq
    for call in (lambda: board.heartbeat(c.id, "bogus"), lambda: board.complete(c.id, "bogus"),
                 lambda: board.fail(c.id, "bogus", error="x")):
        with pytest.raises(StaleClaim):
            call()
    assert board.get(c.id) == before and board.seq == seq
    board.complete(c.id, c.token)
    with pytest.raises(StaleClaim):
        board.complete(c.id, c.token)  # finished claims are not live either


def test_heartbeat_extends_the_lease_without_bumping_seq(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    board.create("t")
    c = board.claim(worker="w", ttl=10)
    seq, log = board.seq, len(board.events())
    clock.advance(8)
    expires = board.heartbeat(c.id, c.token)
    assert expires == c.expires_at + timedelta(seconds=8)
    assert board.heartbeat(c.id, c.token, ttl=100) == c.task.claimed_at + timedelta(seconds=108)
    assert board.seq == seq and len(board.events()) == log
    clock.advance(50)
    assert board.reclaim_expired() == 0


def test_expired_claim_is_reclaimed_by_reclaim_expired(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    board.create("t")
    c = board.claim(worker="dead", ttl=10)
    clock.advance(11)
    assert board.reclaim_expired() == 1
    t = board.get(c.id)
    assert t.status == Status.READY and t.attempts == 1
    assert [e.kind for e in board.history(c.id)][-1] == "reclaimed"
    with pytest.raises(StaleClaim):
        board.complete(c.id, c.token)
    again = board.claim(worker="alive")
    assert again.task.id == c.id and again.task.attempts == 2


def test_expired_claim_is_reclaimed_lazily_by_claim(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    board.create("t")
    c = board.claim(worker="dead", ttl=10)
    assert board.claim(worker="other") is None
    clock.advance(10.5)
    again = board.claim(worker="other")
    assert again is not None and again.task.id == c.id and again.token != c.token


def test_reclaim_at_max_attempts_dead_letters(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    board.create("t", max_attempts=2)
    for _ in range(2):
        board.claim(worker="w", ttl=1)
        clock.advance(2)
        board.reclaim_expired()
    t = board.get("1")
    assert (t.status, t.block_kind, t.attempts) == (Status.BLOCKED, "transient", 2)
    assert "lease expired" in t.block_reason


def test_blocking_claim_returns_when_a_task_arrives(board: Board) -> None:
    def later() -> None:
        time.sleep(0.3)
        board.create("arrives", assignee="q")

    producer = threading.Thread(target=later)
    producer.start()
    start = time.monotonic()
    c = board.claim(assignee="q", worker="w", block=30)
    producer.join()
    assert c is not None and c.task.title == "arrives"
    assert time.monotonic() - start < 10  # woken by the task, long before the 30 s timeout


def test_create_many_wakes_a_blocked_claimer_in_every_lane_it_fills(board: Board) -> None:
    claims: dict[str, Claim | None] = {}

    def wait(lane: str) -> None:
        claims[lane] = board.claim(assignee=lane, worker=f"w-{lane}", block=30)

    waiters = [threading.Thread(target=wait, args=(lane,)) for lane in ("a", "b")]
    for w in waiters:
        w.start()
    time.sleep(0.3)  # both blocked on their lane's signal
    start = time.monotonic()
    board.create_many([{"title": "a1", "assignee": "a"}, {"title": "b1", "assignee": "b"},
                       {"title": "a2", "assignee": "a"}, {"title": "b2", "assignee": "b"}])
    for w in waiters:
        w.join()
    assert time.monotonic() - start < 10  # woken by the batch, long before the 30 s timeout
    assert {lane: c.task.title if c else None for lane, c in claims.items()} == {"a": "a1", "b": "b1"}
    # the second task of each lane is still there for the next claimer
    for lane in ("a", "b"):
        c = board.claim(assignee=lane, worker="w", block=5)
        assert c is not None and c.task.title == f"{lane}2"


def test_blocking_claim_times_out_with_none(board: Board) -> None:
    start = time.monotonic()
    assert board.claim(assignee="q", worker="w", block=0.3) is None
    assert 0.25 < time.monotonic() - start < 10


def test_blocking_claim_wakes_when_a_scheduled_task_falls_due(board: Board) -> None:
    board.create("soon", not_before=time.time() + 0.4)
    c = board.claim(worker="w", block=30)
    assert c is not None and c.task.title == "soon"


# -- complete / fail ----------------------------------------------------------


def test_complete_stores_result_and_releases_children_in_the_same_entry(board: Board) -> None:
    p1, p2 = board.create("p1"), board.create("p2")
    child = board.create("child", parents=[p1.id, p2.id])
    assert child.status == Status.TODO
    for _ in range(2):
        c = board.claim(worker="w")
        done = board.complete(c.id, c.token, result={"n": 1})
        assert done.status == Status.DONE and done.result == {"n": 1} and done.completed_at
    assert board.get(child.id).status == Status.READY
    last = board.events()[-1]
    assert last.op == "complete" and {t.id: t.status for t in last.tasks} == {
        p2.id: Status.DONE, child.id: Status.READY}


def test_complete_with_claim_next(board: Board) -> None:
    board.create("a", assignee="l")
    b = board.create("b", assignee="l")
    c = board.claim(assignee="l", worker="w", ttl=60)
    done, nxt = board.complete(c.id, c.token, claim_next=True)
    assert done.status == Status.DONE and nxt is not None and nxt.task.id == b.id
    assert nxt.task.claim_worker == "w" and nxt.task.status == Status.RUNNING
    last, none = board.complete(nxt.id, nxt.token, claim_next=True)
    assert last.status == Status.DONE and none is None


def test_claim_next_promotes_due_tasks_and_reclaims_expired_leases_first(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    board.create("first", assignee="l")
    due = board.create("due", assignee="l", priority=5, not_before=clock.now + 30)
    lost = board.create("lost", assignee="l")
    c = board.claim(assignee="l", worker="w", ttl=60)
    gone = board.claim(assignee="l", worker="crashed", ttl=10)
    assert (c.task.title, gone.id) == ("first", lost.id)
    clock.advance(40)  # "due" falls due and the crashed worker's lease expires
    _, nxt = board.complete(c.id, c.token, claim_next=True)
    assert nxt is not None and nxt.id == due.id  # promoted, and the higher priority
    assert board.get(lost.id).status == Status.READY
    assert [e.kind for e in board.history(lost.id)][-1] == "reclaimed"


def test_fail_retries_then_dead_letters(board: Board) -> None:
    t = board.create("flaky", max_attempts=2)
    c = board.claim(worker="w")
    after = board.fail(c.id, c.token, error="boom 1", delay=0)
    assert (after.status, after.error, after.attempts) == (Status.READY, "boom 1", 1)
    c = board.claim(worker="w")
    final = board.fail(c.id, c.token, error="boom 2", delay=0)
    assert (final.status, final.block_kind, final.error, final.attempts) == (
        Status.BLOCKED, "transient", "boom 2", 2)
    assert "boom 2" in final.block_reason and board.claim(worker="w") is None
    unblocked = board.unblock(t.id)
    assert unblocked.status == Status.READY and unblocked.attempts == 0


def test_fail_without_delay_backs_off_exponentially(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock, retry_backoff=10)
    board.create("t", max_attempts=5)
    for attempt, wait in ((1, 10), (2, 20), (3, 40)):
        c = board.claim(worker="w")
        assert c.task.attempts == attempt
        t = board.fail(c.id, c.token, error="e")
        assert t.status == Status.SCHEDULED
        assert t.not_before - t.updated_at == timedelta(seconds=wait)
        clock.advance(wait - 1)
        assert board.promote_due() == 0
        clock.advance(1)
        assert board.promote_due() == 1


def test_fail_without_retry_blocks_as_failed(board: Board) -> None:
    board.create("t")
    c = board.claim(worker="w")
    t = board.fail(c.id, c.token, error="bad input", retry=False)
    assert (t.status, t.block_kind, t.block_reason) == (Status.BLOCKED, "failed", "bad input")


def test_long_errors_keep_their_tail(board: Board) -> None:
    board.create("t")
    c = board.claim(worker="w")
    t = board.fail(c.id, c.token, error="x" * 100_000 + "the end", retry=False)
    assert t.error.endswith("the end") and len(t.error.encode()) <= 64 * 1024


# -- moves ------------------------------------------------------------------


def _in_status(board: Board, status: Status) -> str:
    """A fresh task in ``status`` reached through the public API."""
    if status in (Status.TRIAGE, Status.TODO):
        return board.create("t", status=status).id
    if status == Status.SCHEDULED:
        return board.create("t", not_before=time.time() + 3600).id
    t = board.create("t", assignee=f"lane{board.seq}")
    if status == Status.READY:
        return t.id
    if status == Status.BLOCKED:
        return board.block(t.id, reason="r").id
    if status == Status.REVIEW:
        return board.move(t.id, "review").id
    c = board.claim(assignee=t.assignee, worker="w")
    if status == Status.RUNNING:
        return c.id
    board.complete(c.id, c.token)
    if status == Status.ARCHIVED:
        board.move(t.id, "archived")
    return t.id


def test_move_follows_the_documented_table(board: Board) -> None:
    for src in Status:
        for dst in Status:
            tid = _in_status(board, src)
            allowed = dst in ALLOWED_MOVES.get(src, ()) and not (dst == Status.SCHEDULED)
            if allowed:
                assert board.move(tid, dst).status == dst, (src, dst)
            else:
                seq = board.seq
                with pytest.raises(InvalidTransition):
                    board.move(tid, dst)
                assert board.seq == seq, (src, dst)


def test_move_to_ready_needs_parents_done(board: Board) -> None:
    p = board.create("p")
    child = board.create("c", parents=[p.id])
    board.move(child.id, "triage")
    with pytest.raises(InvalidTransition, match="parents not done"):
        board.move(child.id, "ready")


def test_move_to_done_releases_children(board: Board) -> None:
    p = board.create("p", status="todo")
    child = board.create("c", parents=[p.id])
    board.move(p.id, "done")
    assert board.get(child.id).status == Status.READY


def test_move_rejects_unknown_status(board: Board) -> None:
    t = board.create("t")
    with pytest.raises(InvalidInput, match="status"):
        board.move(t.id, "doing")


def test_block_unblock_and_cancel(board: Board) -> None:
    t = board.create("t")
    b = board.block(t.id, reason="waiting for keys", kind="needs-human")
    assert (b.status, b.block_reason, b.block_kind) == (Status.BLOCKED, "waiting for keys", "needs-human")
    assert board.claim(worker="w") is None
    u = board.unblock(t.id)
    assert u.status == Status.READY and u.block_reason is None
    with pytest.raises(InvalidTransition):
        board.unblock(t.id)
    assert board.cancel(t.id).status == Status.ARCHIVED
    assert board.claim(worker="w") is None
    with pytest.raises(InvalidTransition):
        board.cancel(t.id)


def test_cancel_refuses_a_running_task(board: Board) -> None:
    board.create("t")
    c = board.claim(worker="w")
    with pytest.raises(InvalidTransition):
        board.cancel(c.id)


# -- links and comments -------------------------------------------------------


def test_link_refuses_cycles_and_unknown_ids(board: Board) -> None:
    a, b, c = (board.create(x) for x in "abc")
    board.link(a.id, b.id)
    board.link(b.id, c.id)
    assert board.get(c.id).status == Status.TODO and board.get(c.id).parents == [b.id]
    seq = board.seq
    for parent, child in ((c.id, a.id), (a.id, a.id), (c.id, b.id)):
        with pytest.raises(DependencyCycle):
            board.link(parent, child)
    with pytest.raises(TaskNotFound):
        board.link("999", a.id)
    with pytest.raises(TaskNotFound):
        board.link(a.id, "999")
    assert board.seq == seq
    assert board.link(a.id, b.id).parents == [a.id] and board.seq == seq  # twice: no change


def test_link_to_running_child_is_refused(board: Board) -> None:
    board.create("child")
    parent = board.create("parent", status="todo")
    c = board.claim(worker="w")
    with pytest.raises(InvalidTransition):
        board.link(parent.id, c.id)


def test_comments_belong_to_the_task_and_the_log(board: Board) -> None:
    t = board.create("t")
    c = board.comment(t.id, author="ann", body="looks good")
    assert (c.task_id, c.author, c.body) == (t.id, "ann", "looks good")
    assert board.comments(t.id) == [c]
    last = board.events()[-1]
    assert last.op == "comment" and last.comment == c and board.get(t.id).rev == board.seq
    with pytest.raises(TaskNotFound):
        board.comment("999", author="a", body="b")


# -- the change log ------------------------------------------------------------


def test_every_mutation_bumps_seq_and_appends_one_entry(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    steps = [
        lambda: board.create("a"),
        lambda: board.create("b", parents=["1"]),
        lambda: board.claim(worker="w", ttl=5),
        lambda: board.comment("1", author="x", body="y"),
        lambda: board.fail("1", board.get("1").claim_token, error="e", delay=0),
        lambda: board.block("1", reason="r"),
        lambda: board.unblock("1"),
        lambda: board.move("2", "triage"),
    ]
    for step in steps:
        seq, entries = board.seq, len(board.events(count=1000))
        step()
        assert board.seq > seq
        new = board.events(after=seq)
        assert len(board.events(count=1000)) == entries + 1 and len(new) == 1
        assert new[0].seq == board.seq and all(t.rev <= board.seq for t in new[0].tasks)


def test_the_log_rebuilds_the_board(make_board, clock) -> None:  # noqa: ANN001
    board = make_board(clock=clock)
    ids = [t.id for t in board.create_many([{"title": f"t{i}", "assignee": "l"} for i in range(6)])]
    board.link(ids[0], ids[5])
    c = board.claim(assignee="l", worker="w", ttl=3)
    board.complete(c.id, c.token, result=[1, 2])
    c = board.claim(assignee="l", worker="w", ttl=3)
    board.fail(c.id, c.token, error="x", delay=30)
    board.claim(assignee="l", worker="w", ttl=3)
    clock.advance(5)
    board.reclaim_expired()
    board.block(ids[3], reason="r")
    board.cancel(ids[4])
    board.comment(ids[5], author="a", body="b")
    rebuilt = {}
    for event in board.events(count=1000):
        for task in event.tasks:
            rebuilt[task.id] = task
    current = {t.id: t for t in board.list()}
    assert rebuilt.keys() == current.keys()
    for tid, task in current.items():
        # leases are not board state; everything else must match
        assert rebuilt[tid].model_dump(exclude={"heartbeat_at", "claim_expires_at"}) == task.model_dump(
            exclude={"heartbeat_at", "claim_expires_at"})


def test_decoded_tasks_are_what_validation_makes_of_them(make_board, clock) -> None:  # noqa: ANN001
    """Tasks are decoded without pydantic validation: every field must already have its type."""
    board = make_board(clock=clock)
    parent = board.create("p", assignee="l", priority=5, created_by="me", idempotency_key="k",
                          metadata={"a": [1, {"b": None}]}, body="ü")
    tasks = [parent, board.create("c", parents=[parent.id], max_attempts=2),
             board.create("later", not_before=clock.now + 60), board.create("held", status="triage")]
    c = board.claim(assignee="l", worker="w")
    assert c is not None and c == Claim(task=c.task, token=c.token)
    tasks += [c.task, board.progress(c.id, c.token, {"done": 1}),
              board.complete(c.id, c.token, result=[1.5, "x"])]
    c = board.claim(worker="w")
    assert c is not None
    tasks += [c.task, board.fail(c.id, c.token, error="boom", delay=1), board.block(tasks[3].id, reason="r")]
    board.create("n", assignee="l")
    c = board.claim(assignee="l", worker="w")
    assert c is not None
    board.create("n2", assignee="l")
    done, nxt = board.complete(c.id, c.token, claim_next=True)
    assert nxt is not None and nxt == Claim(task=nxt.task, token=nxt.token)
    tasks += [done, nxt.task, *board.list()]
    tasks += [t for e in board.events(count=1000) for t in e.tasks]
    for task in tasks:
        validated = Task.model_validate(dict(task))
        assert validated == task and task.model_fields_set == set(Task.model_fields)
        assert {k: type(v) for k, v in task} == {k: type(v) for k, v in validated}


def test_list_filters(board: Board) -> None:
    board.create("a", assignee="x")
    board.create("b", assignee="y")
    board.create("c", assignee="x", status="triage")
    assert [t.title for t in board.list(assignee="x")] == ["a", "c"]
    assert [t.title for t in board.list(status="ready")] == ["a", "b"]
    assert [t.title for t in board.list(status=Status.READY, assignee="y")] == ["b"]
    assert [t.title for t in board.list(limit=2)] == ["a", "b"]
    with pytest.raises(InvalidInput):
        board.list(status="nope")


def test_scripts_refuse_while_restoring(board: Board) -> None:
    t = board.create("t")
    board.redis.set(board.keys.restoring, "restore in progress")
    with pytest.raises(BoardRestoring):
        board.create("u")
    with pytest.raises(BoardRestoring):
        board.claim(worker="w")
    with pytest.raises(BoardRestoring):
        board.move(t.id, "triage")
    board.redis.delete(board.keys.restoring)
    assert board.claim(worker="w").task.id == t.id


def test_boards_are_isolated(make_board) -> None:  # noqa: ANN001
    a, b = make_board("a"), make_board("b")
    a.create("only in a")
    assert b.list() == [] and b.claim(worker="w") is None and b.seq == 0
