"""Redis-side cost of the Lua transitions, in instructions (repeatable on a busy machine).

Runs ``redis-server`` under ``valgrind --tool=callgrind`` twice per workload,
with N and 3N calls, and prints the difference per call: start-up and
warm-up cancel out, and instruction counts do not depend on what else the
machine is doing. Workloads, each against the same baseline in the same run:

    trivial       EVALSHA of ``return 1`` (the per-request floor, and the raw
                  limit of bench/claims.py)
    trivial fcall  FCALL of a library function returning 1 (the floor of a
                  transition, which is a function of the kanban library)
    20 calls      a script making 20 ``redis.call('EXISTS', k)`` (the cost of
                  one command issued from Lua is a twentieth of the excess)
    create        Board.create
    claim+complete  Board.claim then Board.complete
    create_many   Board.create_many of 100 tasks, per task (N a multiple of 100)
    complete+next  Board.complete(claim_next=True), per call: with create_many,
                  the batched lifecycle of bench/claims.py

Usage: .venv/bin/python bench/lua_cost.py [--calls 200]   (a multiple of 100)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from kanban_redis import Board
from kanban_redis.local import find_server, free_port


#: Tasks per create_many in the create_many workload.
BATCH = 100


def drive(port: int, workload: str, calls: int, prefill: int) -> None:
    r = redis.Redis(port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            r.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    board = Board(r, "bench")
    keys, prefix = board.keys.script_keys(), board.keys.prefix
    sources = {"trivial": "return 1",
               "20 calls": "for i = 1, 20 do redis.call('EXISTS', KEYS[1]) end return 1"}
    if workload == "trivial fcall":
        r.function_load("#!lua name=floor\nredis.register_function('floor', function(keys, args) return 1 end)")
        for _ in range(calls + 1):
            r.fcall("floor", len(keys), *keys, prefix, "", 1)
    elif workload in sources:
        src = sources[workload]
        script = r.register_script(src)
        for _ in range(calls + 1):
            script(keys=keys, args=[prefix, "", 1])
    elif workload == "create":
        for _ in range(calls + 1):
            board.create("t", assignee="l")
    elif workload == "create_many":
        for _ in range(calls // BATCH + 1):
            board.create_many([{"title": "t", "assignee": "l"}] * BATCH)
    else:  # the same prefill in both runs, so creating cancels out
        board.create_many([{"title": "t", "assignee": "l"}] * prefill)
        c = board.claim(assignee="l", worker="w")
        for _ in range(calls + 1):
            assert c is not None
            if workload == "complete+next":
                c = board.complete(c.id, c.token, claim_next=True)[1]
            else:
                board.complete(c.id, c.token)
                c = board.claim(assignee="l", worker="w")
    r.shutdown(nosave=True)


def instructions(workload: str, calls: int, prefill: int, out: Path) -> int:
    port = free_port()
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(find_server()),
                               "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        drive(port, workload, calls, prefill)
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    summary = subprocess.run(["callgrind_annotate", str(out)], capture_output=True, text=True).stdout
    match = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", summary)
    assert match, summary[:500]
    return int(match.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    if args.calls % BATCH:
        parser.error(f"--calls must be a multiple of {BATCH}")
    if not shutil.which("valgrind") or not find_server():
        print("needs valgrind and redis-server", file=sys.stderr)
        return 2
    n = args.calls
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload in ("trivial", "trivial fcall", "20 calls", "create", "claim+complete", "create_many",
                         "complete+next"):
            small = instructions(workload, n, 3 * n + 2, Path(tmp) / "a.out")
            large = instructions(workload, 3 * n, 3 * n + 2, Path(tmp) / "b.out")
            results[workload] = (large - small) / (2 * n)
    base = results["trivial"]
    print(f"{'workload':<16}{'instructions/call':>20}{'x trivial EVALSHA':>20}")
    for workload, per_call in results.items():
        print(f"{workload:<16}{per_call:>20,.0f}{per_call / base:>20.1f}")
    life = results["create"] + results["claim+complete"]
    print(f"lifecycle (create + claim + complete): {life:,.0f} instructions = {life / base:.1f}x a trivial EVALSHA")
    batched = results["create_many"] + results["complete+next"]
    print(f"lifecycle, batched (create_many + complete+next): {batched:,.0f} instructions = "
          f"{batched / base:.1f}x a trivial EVALSHA")
    return 0


if __name__ == "__main__":
    sys.exit(main())
