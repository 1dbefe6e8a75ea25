"""``make demo``: 12 gateway processes share one board on a local Redis.

Each gateway enqueues tasks in its lane (every third with a dependency) and
claims and completes tasks; the board is checked at the end: every task done
exactly once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time

from .board import Board
from .local import RedisServer
from .models import Status

GATEWAYS = 12
TASKS_PER_GATEWAY = 200
LANES = ("research", "code", "review")


def gateway(url: str, name: str, n: int) -> int:
    board = Board.from_url(url, board=name)
    lane = LANES[n % len(LANES)]
    previous = None
    for i in range(TASKS_PER_GATEWAY):
        parents: list[str] = [previous] if previous and i % 3 == 0 else []
        previous = board.create(f"gw{n} task {i}", assignee=lane, parents=parents, priority=i % 4).id
    done = 0
    while True:
        claim = board.claim(assignee=lane, worker=f"gateway-{n}", ttl=30, block=1)
        if claim is None:
            return done
        board.complete(claim.id, claim.token, result={"by": n})
        done += 1


def main() -> int:
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        server = RedisServer().start()
        url = server.url
        print(f"started a throwaway redis-server at {url}")
    try:
        name = f"demo-{int(time.time())}"  # a new board: never touches existing ones
        start = time.monotonic()
        with mp.get_context("spawn").Pool(GATEWAYS) as pool:
            counts = pool.starmap(gateway, [(url, name, n) for n in range(GATEWAYS)])
        board = Board.from_url(url, board=name)
        tasks = board.list()
        by_status: dict[str, int] = {}
        for t in tasks:
            by_status[t.status.value] = by_status.get(t.status.value, 0) + 1
        print(f"{GATEWAYS} gateways created {len(tasks)} tasks and completed {sum(counts)} "
              f"in {time.monotonic() - start:.1f}s; board seq {board.seq}")
        print("by status:", by_status)
        ok = all(t.status == Status.DONE and t.attempts == 1 for t in tasks) and sum(counts) == len(tasks)
        print("every task done exactly once" if ok else "MISMATCH")
        return 0 if ok else 1
    finally:
        if server:
            server.close()


if __name__ == "__main__":
    sys.exit(main())
