"""Task lifecycle throughput and claim latency: kanban-redis vs SQLite vs the raw round-trip limit.

Real processes (spawn) against a redis-server this script starts itself, and
against one SQLite file on local disk. For 1, 4 and 12 processes, interleaved
round by round so that machine noise hits every design alike, each process
runs for a fixed time:

  sqlite       create + claim + complete, hermes-agent style (WAL, synchronous=FULL,
               BEGIN IMMEDIATE, compare-and-swap UPDATE, busy_timeout)
  redis        Board.create + Board.claim + Board.complete (3 round trips)
  raw          3 trivial EVALSHA round trips (``return 1``): the limit for 3 round trips
  redis-next   Board.create + Board.complete(claim_next=True) (2 round trips)
  redis-batch  Board.create_many(100) + Board.complete(claim_next=True) (~1 round trip)
  create-many  Board.create_many(100) alone: tasks created per second

Then, in one process, the Redis CPU cost of each script (INFO commandstats,
usec per FCALL: the transitions are functions of one library; the lowest of 5
rounds) and their sum per task lifecycle, next to the cost of a trivial
EVALSHA and of the same lifecycle in a minimal design without the board's
features (bench/minimal_lifecycle.lua), measured the same way.

Run: ``.venv/bin/python bench/claims.py`` (``--help`` for options).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import redis

import sqlite_kanban
from minimal_lifecycle import MinimalLifecycle
from kanban_redis import Board
from kanban_redis.local import RedisServer

CTX = mp.get_context("spawn")
BATCH = 100
KINDS = ("sqlite", "redis", "raw", "redis-next", "redis-batch", "create-many")
BOARD = "bench"


# -- workloads (run inside worker processes) -----------------------------------


def _timed(fn: Callable[[], Any], lat: list[float]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    lat.append(time.perf_counter() - t0)
    return out


def w_sqlite(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    board = sqlite_kanban.SqliteBoard(ctx["db"])
    n = 0
    while time.perf_counter() < stop:
        board.create("bench")
        claim = _timed(board.claim, lat)
        if claim is not None and board.complete(*claim):
            n += 1
    board.close()
    return n


def w_redis(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    board, me = ctx["board"], ctx["me"]
    n = 0
    while time.perf_counter() < stop:
        board.create("bench")
        claim = _timed(lambda: board.claim(worker=me), lat)
        if claim is not None:
            board.complete(claim.task.id, claim.token)
            n += 1
    return n


def w_raw(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    trivial = ctx["trivial"]
    n = 0
    while time.perf_counter() < stop:
        trivial()
        _timed(trivial, lat)
        trivial()
        n += 1
    return n


def _claim_next_loop(ctx: dict[str, Any], stop: float, lat: list[float], batch: int) -> int:
    """Lifecycles whose claim rides on the previous completion (complete(claim_next=True)).

    ``batch`` 0: one create per lifecycle; else create_many(batch) whenever the lane runs dry.
    """
    board, me = ctx["board"], ctx["me"]
    n, claim = 0, None
    while time.perf_counter() < stop:
        if not batch:
            board.create("bench")
        if claim is None:
            if batch:
                board.create_many([{"title": "bench"}] * batch)
            claim = _timed(lambda: board.claim(worker=me), lat)
            continue
        c = claim
        _, claim = _timed(lambda: board.complete(c.task.id, c.token, claim_next=True), lat)
        n += 1
    return n


def w_redis_next(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    return _claim_next_loop(ctx, stop, lat, 0)


def w_redis_batch(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    return _claim_next_loop(ctx, stop, lat, BATCH)


def w_create_many(ctx: dict[str, Any], stop: float, lat: list[float]) -> int:
    board = ctx["board"]
    n = 0
    while time.perf_counter() < stop:
        _timed(lambda: board.create_many([{"title": "bench"}] * BATCH), lat)
        n += BATCH
    return n


WORKLOADS: dict[str, Callable[[dict[str, Any], float, list[float]], int]] = {
    "sqlite": w_sqlite, "redis": w_redis, "raw": w_raw, "redis-next": w_redis_next,
    "redis-batch": w_redis_batch, "create-many": w_create_many,
}


def worker(me: int, url: str, db: str, commands: Any, results: Any) -> None:
    """A long-lived bench process: runs one workload per command, in step with the others."""
    board = Board.from_url(url, board=BOARD)
    ctx = {"board": board, "me": f"w{me}", "db": db, "trivial": board.redis.register_script("return 1")}
    while (cmd := commands.get()) is not None:
        kind, start_at, seconds = cmd
        time.sleep(max(0.0, start_at - time.perf_counter()))
        lat: list[float] = []
        t0 = time.perf_counter()
        n = WORKLOADS[kind](ctx, t0 + seconds, lat)
        results.put((n, t0, time.perf_counter(), lat))


# -- the driver ---------------------------------------------------------------------


@dataclass
class Tally:
    """One (kind, process count) cell, summed over rounds."""

    ops: int = 0
    seconds: float = 0.0
    lat: list[float] = field(default_factory=list)
    script_calls: int = 0
    script_usec: int = 0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-quantile of the latencies, in ms (nearest rank)."""
        if not self.lat:
            return float("nan")
        s = sorted(self.lat)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000


def script_stats(client: redis.Redis) -> tuple[int, int]:
    """Calls and usec of FCALL and EVALSHA since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    both = [stats.get(f"cmdstat_{cmd}", {}) for cmd in ("fcall", "evalsha")]
    return sum(int(s.get("calls", 0)) for s in both), sum(int(s.get("usec", 0)) for s in both)


def run_phase(kind: str, procs: int, seconds: float, client: redis.Redis, db: str,
              queues: list[Any], results: Any, tally: Tally) -> None:
    client.flushall()
    client.config_resetstat()
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        sqlite_kanban.init(db)
    start_at = time.perf_counter() + 0.3
    for q in queues[:procs]:
        q.put((kind, start_at, seconds))
    outs = [results.get(timeout=seconds + 120) for _ in range(procs)]
    tally.ops += sum(o[0] for o in outs)
    tally.seconds += max(o[2] for o in outs) - min(o[1] for o in outs)
    for o in outs:
        tally.lat.extend(o[3])
    if kind != "sqlite":
        calls, usec = script_stats(client)
        tally.script_calls += calls
        tally.script_usec += usec


def script_costs(url: str, client: redis.Redis, n: int, rounds: int = 5) -> dict[str, float]:
    """Redis CPU per call of each script (usec per FCALL), one process, n calls each; the
    lowest of ``rounds`` rounds (noise on a shared machine only ever adds time)."""
    board = Board.from_url(url, board=BOARD)
    costs: dict[str, float] = {}

    def measure(name: str, fn: Callable[[], Any], calls: int | None = None) -> None:
        client.config_resetstat()
        fn()
        c, usec = script_stats(client)
        costs[name] = min(costs.get(name, float("inf")), usec / (calls or c))

    def chain() -> None:
        claim = board.claim(worker="w")
        while claim is not None:
            _, claim = board.complete(claim.task.id, claim.token, claim_next=True)

    for _ in range(rounds):
        client.flushall()
        trivial = client.register_script("return 1")
        minimal = MinimalLifecycle(client)
        measure("trivial EVALSHA", lambda: [trivial(keys=["k"], args=[1]) for _ in range(n)])
        measure("create", lambda: [board.create("bench") for _ in range(n)])
        claims: list[Any] = []
        measure("claim", lambda: claims.extend(board.claim(worker="w") for _ in range(n)))
        measure("complete", lambda: [board.complete(c.task.id, c.token) for c in claims])
        measure("create_many (per task)", lambda: board.create_many([{"title": "bench"}] * n), calls=n)
        measure("complete+claim_next", chain)
        measure("minimal create", lambda: [minimal.create("bench") for _ in range(n)])
        held: list[dict[str, str] | None] = []
        measure("minimal claim", lambda: held.extend(minimal.claim("t") for _ in range(n)))
        measure("minimal complete", lambda: [minimal.complete(t["id"], "t") for t in held if t])
    return costs


def verdict(ok: bool) -> str:
    return "ok  " if ok else "MISS"


@click.command()
@click.option("--procs", default="1,4,12", show_default=True, help="Process counts, comma-separated.")
@click.option("--seconds", default=2.0, show_default=True, help="Length of each timed phase.")
@click.option("--rounds", default=2, show_default=True, help="Interleaved rounds (results are summed).")
@click.option("--kinds", default=",".join(KINDS), show_default=True, help="Workloads to run.")
def main(procs: str, seconds: float, rounds: int, kinds: str) -> None:
    """Benchmark task lifecycles on kanban-redis against SQLite and the raw round-trip limit."""
    counts = [int(p) for p in procs.split(",")]
    chosen = [k for k in kinds.split(",") if k]
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise click.UsageError(f"unknown kinds: {', '.join(sorted(unknown))}")
    tallies = {(k, p): Tally() for k in chosen for p in counts}
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="kanban-bench-") as tmp:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        db = os.path.join(tmp, f"kanban-{secrets.token_hex(4)}.db")
        queues = [CTX.Queue() for _ in range(max(counts))]
        results = CTX.Queue()
        workers = [CTX.Process(target=worker, args=(i, server.url, db, q, results)) for i, q in enumerate(queues)]
        for w in workers:
            w.start()
        try:
            for rnd in range(rounds):
                for p in counts:
                    for kind in chosen:
                        run_phase(kind, p, seconds, client, db, queues, results, tallies[kind, p])
                click.echo(f"round {rnd + 1}/{rounds} done", err=True)
        finally:
            for q in queues:
                q.put(None)
            for w in workers:
                w.join(timeout=30)
        costs = script_costs(server.url, client, 2000)
        info = client.info("server")
        client.close()

    report(tallies, counts, chosen, costs, seconds, rounds, str(info.get("redis_version")))


def report(tallies: dict[tuple[str, int], Tally], counts: list[int], chosen: list[str],
           costs: dict[str, float], seconds: float, rounds: int, version: str) -> None:
    click.echo(f"# kanban-redis claims bench: {rounds} round(s) x {seconds:.1f} s per phase, "
               f"redis {version}, {os.cpu_count()} CPUs")
    click.echo("lifecycle = create + claim + complete of one task; ratios against the same-process-count row\n")
    head = (f"{'procs':>5} {'kind':<12} {'per s':>9} {'x sqlite':>9} {'x raw':>7} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'us/lifecycle':>13}")
    click.echo(head)
    for p in counts:
        for kind in chosen:
            t = tallies[kind, p]
            base, raw = tallies.get(("sqlite", p)), tallies.get(("raw", p))
            vs_sql = f"{t.rate / base.rate:9.2f}" if base and base.rate and kind != "create-many" else f"{'':>9}"
            vs_raw = f"{t.rate / raw.rate:7.2f}" if raw and raw.rate and kind != "create-many" else f"{'':>7}"
            cpu = f"{t.script_usec / t.ops:13.1f}" if t.ops and kind.startswith("redis") else f"{'':>13}"
            click.echo(f"{p:>5} {kind:<12} {t.rate:9.0f} {vs_sql} {vs_raw} "
                       f"{t.pct(0.5):8.2f} {t.pct(0.99):8.2f} {t.pct(0.999):9.2f} {cpu}")
        click.echo("")
    click.echo("latency columns: claim (redis, sqlite), complete+claim_next (redis-next, redis-batch "
               "after the first claim), middle EVALSHA (raw), create_many call (create-many)\n")

    click.echo("Redis CPU per script call (INFO commandstats, usec per FCALL, 1 process, lowest of 5 rounds):")
    for name, usec in costs.items():
        click.echo(f"  {name:<24} {usec:7.1f}")
    three = costs["create"] + costs["claim"] + costs["complete"]
    batched = costs["create_many (per task)"] + costs["complete+claim_next"]
    floor = costs["trivial EVALSHA"]
    minimal = costs["minimal create"] + costs["minimal claim"] + costs["minimal complete"]
    click.echo(f"  {'lifecycle, 3 scripts':<24} {three:7.1f}  (= {three / floor:.0f} trivial EVALSHAs, "
               f"{three / minimal:.2f}x the minimal design)")
    click.echo(f"  {'lifecycle, batched':<24} {batched:7.1f}  (= {batched / floor:.0f} trivial EVALSHAs, "
               f"{batched / minimal:.2f}x the minimal design)")
    click.echo(f"  {'lifecycle, minimal design':<24} {minimal:7.1f}  (bench/minimal_lifecycle.lua: the same "
               "3 transitions without the board's features)\n")

    top = max(counts)
    cell = {k: tallies.get((k, top)) for k in KINDS}
    click.echo(f"targets at {top} processes:")
    if cell["redis"] and cell["sqlite"]:
        r = cell["redis"].rate / cell["sqlite"].rate
        click.echo(f"  {verdict(r >= 2)} redis >= 2x sqlite throughput: {r:.2f}x")
    if cell["redis"] and cell["raw"]:
        r = cell["redis"].rate / cell["raw"].rate
        click.echo(f"  {verdict(r >= 0.5)} redis >= 0.5 of raw: {r:.2f}")
    if cell["redis"]:
        p999 = cell["redis"].pct(0.999)
        click.echo(f"  {verdict(p999 <= 20)} redis p99.9 claim <= 20 ms: {p999:.2f} ms"
                   + (f" (sqlite: {cell['sqlite'].pct(0.999):.2f} ms)" if cell["sqlite"] else ""))
    if cell["redis-batch"] and cell["raw"]:
        r = cell["redis-batch"].rate / cell["raw"].rate
        click.echo(f"  {verdict(r >= 1.0)} create_many + claim_next >= 1.0x raw 3-round-trip rate: {r:.2f}x")
    click.echo(f"  {verdict(three <= 60)} Redis CPU per lifecycle <= 60 us: {three:.1f} us "
               f"(batched: {batched:.1f} us)")


if __name__ == "__main__":
    main()
