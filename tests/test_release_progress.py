"""Board.release, Board.progress and Board.fail's block kind: the scripts the workers use."""

from __future__ import annotations

import pytest

from kanban_redis import Board, InvalidInput, StaleClaim, Status


def claimed(board: Board, **kwargs: object):
    board.create("t", assignee="l", **kwargs)
    claim = board.claim(assignee="l", worker="w", ttl=30)
    assert claim is not None
    return claim


def test_release_gives_the_task_back_without_counting_the_run(board: Board) -> None:
    c = claimed(board, max_attempts=1)
    seq = board.seq
    task = board.release(c.id, c.token, reason="worker stopping")
    assert task.status == Status.READY and task.attempts == 0 and task.claim_expires_at is None
    assert board.seq == seq + 1
    [event] = board.events(after=seq)
    assert event.op == "release" and event.history[0].kind == "released"
    assert event.history[0].data["reason"] == "worker stopping"
    again = board.claim(assignee="l", worker="w2", ttl=30)  # max_attempts=1 still allows this run
    assert again is not None and again.task.attempts == 1


def test_release_with_delay_schedules(board: Board, clock) -> None:
    b = Board(board.redis, "t", clock=clock)
    c = claimed(b)
    task = b.release(c.id, c.token, reason="busy", delay=5)
    assert task.status == Status.SCHEDULED and task.attempts == 0
    assert b.claim(assignee="l", worker="w", ttl=30) is None
    clock.advance(5)
    assert b.claim(assignee="l", worker="w", ttl=30) is not None


def test_release_and_progress_refuse_a_stale_token(board: Board) -> None:
    c = claimed(board)
    with pytest.raises(StaleClaim):
        board.release(c.id, "not-the-token", reason="x")
    with pytest.raises(StaleClaim):
        board.progress(c.id, "not-the-token", 1)
    board.complete(c.id, c.token)
    with pytest.raises(StaleClaim):
        board.release(c.id, c.token, reason="late")
    with pytest.raises(StaleClaim):
        board.progress(c.id, c.token, 2)


def test_progress_is_logged_task_state(board: Board) -> None:
    c = claimed(board)
    seq = board.seq
    task = board.progress(c.id, c.token, {"done": 3, "of": 10})
    assert task.progress == {"done": 3, "of": 10} and task.status == Status.RUNNING
    assert board.get(c.id).progress == {"done": 3, "of": 10}
    [event] = board.events(after=seq)
    assert event.op == "progress" and event.tasks[0].progress == {"done": 3, "of": 10}
    with pytest.raises(InvalidInput):
        board.progress(c.id, c.token, {1, 2})


def test_fail_without_retry_blocks_with_the_given_kind(board: Board) -> None:
    c = claimed(board)
    task = board.fail(c.id, c.token, error="needs a human", retry=False, kind="handler")
    assert task.status == Status.BLOCKED and task.block_kind == "handler"
    assert task.block_reason == "needs a human"
    c2 = claimed(board)
    assert board.fail(c2.id, c2.token, error="bad", retry=False).block_kind == "failed"
