"""Client-side CPU per task lifecycle: the Board's Python work against bare EVALSHAs.

``time.process_time`` of this process only (Redis runs in another process, and
waiting for its replies costs no CPU here), so the figures hold on a busy
machine. One process, a throwaway redis-server, the client ``Board.from_url``
makes (as ``bench/claims.py``). Modes, interleaved round by round:

    raw        3 EVALSHAs of ``return 1`` (the floor for a 3-round-trip lifecycle)
    lifecycle  Board.create + Board.claim + Board.complete
    next       Board.create + Board.complete(claim_next=True)
    batch      Board.create_many(100), then complete(claim_next=True) per task

Prints the median over rounds of usec client CPU per lifecycle (per task for
``batch``) and its ratio to ``raw``.

Usage: .venv/bin/python bench/client_cost.py [--n 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from kanban_redis import Board
from kanban_redis.local import RedisServer

BATCH = 100


def modes(board: Board) -> dict[str, Callable[[int], None]]:
    trivial = board.redis.register_script("return 1")

    def raw(n: int) -> None:
        for _ in range(3 * n):
            trivial(keys=["a"], args=[1])

    def lifecycle(n: int) -> None:
        for _ in range(n):
            board.create("t", assignee="l")
            claim = board.claim(assignee="l", worker="w")
            assert claim is not None
            board.complete(claim.id, claim.token)

    def claim_next(n: int) -> None:
        board.create("t", assignee="n")
        claim = board.claim(assignee="n", worker="w")
        for _ in range(n):
            board.create("t", assignee="n")
            assert claim is not None
            _, claim = board.complete(claim.id, claim.token, claim_next=True)
        assert claim is not None
        board.complete(claim.id, claim.token)

    def batch(n: int) -> None:
        done = 0
        while done < n:
            board.create_many([{"title": "t", "assignee": "b"}] * BATCH)
            claim = board.claim(assignee="b", worker="w")
            while claim is not None:
                _, claim = board.complete(claim.id, claim.token, claim_next=True)
                done += 1

    return {"raw": raw, "lifecycle": lifecycle, "next": claim_next, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="lifecycles per mode and round")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    with RedisServer() as server:
        board = Board.from_url(server.url, board="bench")
        runs = modes(board)
        for run in runs.values():  # warm-up: scripts loaded, code paths imported
            run(BATCH)
        usec: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(opts.rounds):
            for name, run in runs.items():
                board.redis.flushall()
                c0 = time.process_time()
                run(opts.n)
                usec[name].append(1e6 * (time.process_time() - c0) / opts.n)
        floor = statistics.median(usec["raw"])
        print(f"client CPU per lifecycle, median of {opts.rounds} rounds x {opts.n}")
        print(f"{'mode':10} {'us':>8} {'x raw':>7}   rounds")
        for name, values in usec.items():
            med = statistics.median(values)
            print(f"{name:10} {med:8.1f} {med / floor:7.2f}   " + " ".join(f"{v:.0f}" for v in values))


if __name__ == "__main__":
    main()
