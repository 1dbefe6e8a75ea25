"""Many real processes on one real server: nothing lost, nothing done twice.

These run with the ``spawn`` start method (no state inherited from pytest)
against the session's real ``redis-server``; fakeredis cannot show this.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections import Counter
from typing import Any

import pytest
import redis

from kanban_redis import Board

pytestmark = pytest.mark.slow

CTX = mp.get_context("spawn")
TASKS = 20_000
PRODUCERS = 4
CLAIMERS = 8  # PRODUCERS + CLAIMERS = 12 processes; claimers 0 and 1 do not use claim_next
LANES = (None, "x")
FAIL_EVERY = 7  # tasks whose id is a multiple of this fail their first attempt


def failing(task_id: str, attempt: int) -> bool:
    return int(task_id) % FAIL_EVERY == 0 and attempt == 1


def produce(url: str, n: int, me: int, out: Any) -> None:
    """Create ``n`` tasks, alternating lanes: batches through create_many, some one by one."""
    board = Board.from_url(url, board="mp")
    ids: list[str] = []
    i = 0
    while i < n:
        if i % 500 == 0:
            ids.append(board.create(f"p{me}-{i}", assignee=LANES[i % 2]).id)
            i += 1
            continue
        size = min(200, n - i)
        ids.extend(t.id for t in board.create_many(
            {"title": f"p{me}-{i + k}", "assignee": LANES[(i + k) % 2]} for k in range(size)))
        i += size
    out.put(("produced", ids))


def consume(url: str, lane: str | None, me: int, claim_next: bool, producers_done: Any, out: Any) -> None:
    """Claim and finish tasks of a lane until the producers are done and nothing is left."""
    board = Board.from_url(url, board="mp")
    done: list[tuple[str, str]] = []
    claim = None
    while True:
        if claim is None:
            finished = producers_done.is_set()
            claim = board.claim(assignee=lane, worker=f"c{me}", block=0.2)
            if claim is None:
                if finished:
                    break
                continue
        task = claim.task
        if failing(task.id, task.attempts):
            board.fail(task.id, claim.token, error="first attempt fails", delay=0)
            claim = None
        elif claim_next:
            _, nxt = board.complete(task.id, claim.token, result=me, claim_next=True)
            done.append((task.id, claim.token))
            claim = nxt
        else:
            board.complete(task.id, claim.token, result=me)
            done.append((task.id, claim.token))
            claim = None
    out.put(("completed", done))


def log_events(client: redis.Redis, log_key: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    lo = "-"
    while True:
        chunk = client.xrange(log_key, lo, "+", count=5000)
        if not chunk:
            return events
        for _, fields in chunk:
            events.extend(json.loads(fields["events"]))
        lo = "(" + chunk[-1][0]


def test_twelve_processes_complete_every_task_exactly_once(real_redis: redis.Redis, redis_url: str) -> None:
    out = CTX.Queue()
    producers_done = CTX.Event()
    producers = [CTX.Process(target=produce, args=(redis_url, TASKS // PRODUCERS, p, out))
                 for p in range(PRODUCERS)]
    claimers = [CTX.Process(target=consume, args=(redis_url, LANES[c % 2], c, c >= 2, producers_done, out))
                for c in range(CLAIMERS)]
    for proc in claimers + producers:
        proc.start()

    created: list[str] = []
    completed: list[tuple[str, str]] = []
    for _ in range(PRODUCERS):
        kind, ids = out.get(timeout=120)
        assert kind == "produced"
        created.extend(ids)
    producers_done.set()
    for _ in range(CLAIMERS):
        kind, done = out.get(timeout=120)
        assert kind == "completed"
        completed.extend(done)
    for proc in producers + claimers:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    # none lost, none done twice: every created task completed by exactly one complete()
    assert len(created) == len(set(created)) == TASKS
    done_ids = [tid for tid, _ in completed]
    assert len(done_ids) == len(set(done_ids)) == TASKS
    assert set(done_ids) == set(created)

    board = Board(real_redis, "mp")
    assert real_redis.zcard(board.keys.status("done")) == TASKS
    for status in ("ready", "running", "scheduled", "todo", "blocked"):
        assert real_redis.zcard(board.keys.status(status)) == 0, status

    # the winner's token is the task's last claim token; attempts count the claims
    pipe = real_redis.pipeline(transaction=False)
    for tid, _ in completed:
        pipe.hmget(board.keys.task(tid), "status", "claim_token", "attempts")
    for (tid, token), (status, last_token, attempts) in zip(completed, pipe.execute()):
        assert (status, last_token, int(attempts)) == ("done", token, 2 if int(tid) % FAIL_EVERY == 0 else 1)

    # the change log tells the same story: one completion per task, a claim per attempt
    kinds = Counter((e["task_id"], e["kind"]) for e in log_events(real_redis, board.keys.log))
    for tid in created:
        attempts = 2 if int(tid) % FAIL_EVERY == 0 else 1
        assert (kinds[tid, "created"], kinds[tid, "claimed"], kinds[tid, "failed"], kinds[tid, "completed"]) == (
            1, attempts, attempts - 1, 1), tid


ROUNDS = 20
RACERS = 12


def race(url: str, me: int, barrier: Any, out: Any) -> None:
    """Each round: wait for the task to exist, then all claim at the same moment."""
    board = Board.from_url(url, board="race")
    won: list[str | None] = []
    for _ in range(ROUNDS):
        barrier.wait()
        claim = board.claim(worker=f"r{me}")
        won.append(claim.task.id if claim else None)
        barrier.wait()
    out.put(won)


def test_concurrent_claims_have_exactly_one_winner(real_redis: redis.Redis, redis_url: str) -> None:
    board = Board(real_redis, "race")
    out = CTX.Queue()
    barrier = CTX.Barrier(RACERS + 1, timeout=60)
    procs = [CTX.Process(target=race, args=(redis_url, i, barrier, out)) for i in range(RACERS)]
    for proc in procs:
        proc.start()
    ids = []
    for _ in range(ROUNDS):
        ids.append(board.create("one prize").id)
        barrier.wait()  # go
        barrier.wait()  # everyone has claimed
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    for rnd, tid in enumerate(ids):
        winners = [won[rnd] for won in results if won[rnd] is not None]
        assert winners == [tid], f"round {rnd}: {winners}"
        task = board.get(tid)
        assert (task.status.value, task.attempts) == ("running", 1)
