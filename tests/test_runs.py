"""Runs derived from a task's events, on fakeredis and the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kanban_redis import Board, TaskEvent
from kanban_redis.runs import runs_of

from conftest import Clock


def test_claim_fail_reclaim_complete(board: Board, clock: Clock) -> None:
    board = Board(board.redis, "runs", clock=clock)
    tid = board.create("job", max_attempts=5).id
    c1 = board.claim(worker="w1", ttl=30)
    assert c1 is not None
    clock.advance(5)
    board.fail(tid, c1.token, error="boom", delay=0)
    c2 = board.claim(worker="w2", ttl=30)
    assert c2 is not None
    clock.advance(31)
    assert board.reclaim_expired() == 1
    c3 = board.claim(worker="w3", ttl=30)
    assert c3 is not None
    clock.advance(2)
    board.complete(tid, c3.token)
    board.create("unrelated")
    runs = runs_of(board.history(tid))
    assert [(r.attempt, r.worker, r.outcome) for r in runs] == [(1, "w1", "failed"), (2, "w2", "reclaimed"),
                                                                (3, "w3", "done")]
    assert runs[0].error == "boom" and runs[0].seconds == 5.0
    assert runs[1].error == "lease expired" and runs[1].seconds == 31.0
    assert runs[2].error is None and runs[2].seconds == 2.0


def test_open_run_and_a_claim_without_known_ending() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)

    def ev(seq: int, kind: str, **data: object) -> TaskEvent:
        return TaskEvent(task_id="1", seq=seq, at=t0 + timedelta(seconds=seq), kind=kind, data=data)

    runs = runs_of([ev(1, "created"), ev(2, "claimed", attempt=1, worker="a"), ev(3, "released"),
                    ev(4, "claimed", attempt=2, worker="b"), ev(5, "commented")])
    assert [(r.attempt, r.outcome, r.ended_at) for r in runs] == [(1, "unknown", None), (2, "running", None)]
    assert runs_of([ev(1, "completed")]) == []  # an ending without a claim is no run
