"""Client-side cost per task lifecycle: the Board's Python work against bare EVALSHAs.

One process, a throwaway redis-server, the client ``Board.from_url`` makes (as
``bench/claims.py``). Modes:

    raw        3 EVALSHAs of ``return 1`` with 1 key and 1 argument (the baseline)
    raw-args   the same with a claim's KEYS and ARGV (1 key, 8 arguments): what
               redis-py alone spends packing the script contract's arguments
    raw-busy   raw-args with a Lua loop that keeps the server busy per call as
               long as a transition does (calibrated with INFO commandstats in
               the same run): a client that waits longer for its reply spends
               more CPU on the same instructions, so this is the floor in CPU
               time for three transitions (not measured with --instructions)
    lifecycle  Board.create + Board.claim + Board.complete
    next       Board.create + Board.complete(claim_next=True)
    batch      Board.create_many(100), then complete(claim_next=True) per task

Two measures, each printed with its ratio to ``raw``:

* default: ``time.process_time`` of this process (Redis runs in another one,
  and waiting for a reply costs no CPU here), modes interleaved round by
  round, the median of the rounds. On a shared VM it moves by 10-20% from run
  to run; compare ratios taken in the same run.
* ``--instructions``: user-space instructions counted by ``valgrind
  --tool=cachegrind`` (one process per mode, N and 3N lifecycles, the
  difference per lifecycle: start-up cancels out). The same on a busy machine;
  it leaves out kernel time (the socket calls, the same in every mode).

Usage: .venv/bin/python bench/client_cost.py [--n N] [--rounds 5] [--instructions]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from kanban_redis import Board
from kanban_redis.local import RedisServer

BATCH = 100
MODES = ("raw", "raw-args", "raw-busy", "lifecycle", "next", "batch")
SPIN = "for i = 1, tonumber(ARGV[8]) do end return 1"
SPIN_PROBE = 20_000


def modes(board: Board, busy_loops: int = SPIN_PROBE) -> dict[str, Callable[[int], None]]:
    trivial = board.redis.register_script("return 1")
    spin = board.redis.register_script(SPIN)
    keys = board.keys.script_keys()
    claim_args = [board.keys.prefix, "", "l", "0123456789abcdef0123456789abcdef", "w", 900000, 200, "0"]

    def raw(n: int) -> None:
        for _ in range(3 * n):
            trivial(keys=["a"], args=[1])

    def raw_args(n: int) -> None:
        for _ in range(3 * n):
            trivial(keys=keys, args=claim_args)

    def raw_busy(n: int) -> None:
        for _ in range(3 * n):
            spin(keys=keys, args=[*claim_args, busy_loops])

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
            board.create_many([{"title": "t", "assignee": "b"}] * min(BATCH, n - done))
            claim = board.claim(assignee="b", worker="w")
            while claim is not None:
                _, claim = board.complete(claim.id, claim.token, claim_next=True)
                done += 1

    return {"raw": raw, "raw-args": raw_args, "raw-busy": raw_busy, "lifecycle": lifecycle, "next": claim_next,
            "batch": batch}


def server_usec_per_call(board: Board, fn: Callable[[], None]) -> float:
    """Redis CPU per script call while ``fn`` runs (INFO commandstats, EVALSHA and FCALL)."""
    board.redis.config_resetstat()
    fn()
    stats = board.redis.info("commandstats")
    calls = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "fcall"))
    usec = sum(int(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("evalsha", "fcall"))
    return usec / max(calls, 1)


def busy_loops(board: Board) -> int:
    """The loop count that makes a SPIN call cost the server as much as a transition."""
    probe = modes(board)
    transition = server_usec_per_call(board, lambda: probe["lifecycle"](BATCH))
    spin = server_usec_per_call(board, lambda: probe["raw-busy"](BATCH // 3))
    loops = max(1, round(SPIN_PROBE * transition / spin))
    print(f"raw-busy: {loops} loops per call (a transition costs Redis {transition:.0f} us per call)")
    return loops


def cpu_times(n: int, rounds: int) -> dict[str, float]:
    """Median usec of process CPU per lifecycle, modes interleaved round by round."""
    with RedisServer() as server:
        board = Board.from_url(server.url, board="bench")
        for run in modes(board).values():  # warm-up: scripts loaded, code paths imported
            run(BATCH)
        runs = modes(board, busy_loops(board))
        usec: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                board.redis.flushall()
                c0 = time.process_time()
                run(n)
                usec[name].append(1e6 * (time.process_time() - c0) / n)
    return {name: statistics.median(values) for name, values in usec.items()}


def run_one(mode: str, n: int) -> None:
    """The process ``--instructions`` counts: warm-up, then ``n`` lifecycles of ``mode``."""
    with RedisServer() as server:
        board = Board.from_url(server.url, board="bench")
        run = modes(board)[mode]
        run(BATCH)
        run(n)


def instructions(n: int) -> dict[str, float]:
    """User-space instructions per lifecycle of each mode (cachegrind, N and 3N runs)."""
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")

    def count(mode: str, calls: int) -> int:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                              sys.executable, __file__, "--only", mode, "--n", str(calls)],
                             capture_output=True, text=True, check=True).stderr
        found = re.search(r"I\s+refs:\s+([\d,]+)", out)
        if found is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{out}")
        return int(found.group(1).replace(",", ""))

    return {mode: (count(mode, 3 * n) - count(mode, n)) / (2 * n) for mode in MODES if mode != "raw-busy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, help="lifecycles per mode and round (default 3000; 200 with --instructions)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--only", choices=MODES, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.only:
        run_one(opts.only, opts.n)
        return
    if opts.instructions:
        cost, unit = instructions(opts.n or 200), "instructions"
        print("client user-space instructions per lifecycle (cachegrind, 3N - N runs)")
    else:
        n = opts.n or 3000
        cost, unit = cpu_times(n, opts.rounds), "us CPU"
        print(f"client CPU per lifecycle, median of {opts.rounds} rounds x {n}")
    print(f"{'mode':10} {unit:>14} {'x raw':>7}")
    for name, value in cost.items():
        print(f"{name:10} {value:14,.1f} {value / cost['raw']:7.2f}")


if __name__ == "__main__":
    main()
