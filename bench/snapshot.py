"""Snapshot and restore costs against raw baselines measured in the same run.

For each board size: a full snapshot against "raw" (pipelined HGETALL of every
task + one executemany into a fresh SQLite file + fsync + rename); an
incremental snapshot after 1% of the tasks changed, against the full one, as
a tick of the ``run`` daemon (which keeps its working copy open between
ticks) and as a one-shot ``kanban-snapshot now``; the
longest Redis stall while a full snapshot runs in another process (a PING
loop in a third, next to the same loop's maximum with no snapshot running,
and the slowest command in SLOWLOG); restore against
raw pipelined writes of the same hashes and histories, and the slowest
command of a restore (in another restore: SLOWLOG at 0 slows Redis down);
the file size.

    python bench/snapshot.py --sizes 1000,10000,100000 [--repeat 3] [--redis-priority]

On a 2-core machine Redis, the snapshot and the PING loop share the cores: a
command that the kernel preempts lasts a scheduler tick (4 ms on a 250 Hz
kernel) however little work it does. ``--redis-priority`` (root) runs the
snapshotted redis-server at SCHED_FIFO so that the snapshot's command column
shows Redis's own work; the PING loop still shows what a client sees on the
shared cores. (Not the restore's server: a real-time Redis that is busy for
most of a second is throttled by the kernel for 50 ms, a stall of its own.)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# this file is named like the package it measures: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import redis  # noqa: E402

from kanban_redis import Board  # noqa: E402
from kanban_redis.local import RedisServer  # noqa: E402
from snapshot import schema  # noqa: E402
from snapshot.restore import restore  # noqa: E402
from snapshot.snapshotter import Snapshotter, take  # noqa: E402

BOARD = "bench"


def populate(r: redis.Redis, n: int) -> Board:
    b = Board(r, BOARD)
    specs: list[dict[str, Any]] = []
    for i in range(n):
        spec: dict[str, Any] = {"title": f"task {i}", "body": "x" * 200, "assignee": f"lane-{i % 4}",
                                "priority": i % 7}
        specs.append(spec)
    b.create_many(specs)
    for i in range(0, n, 50):  # a comment on every 50th task
        b.comment(str(i + 1), author="bench", body="a comment")
    return b


def ping_loop(url: str, stop: Any, out: Any) -> None:
    client = redis.Redis.from_url(url)
    worst = 0.0
    while not stop.is_set():
        t = time.perf_counter()
        client.ping()
        worst = max(worst, time.perf_counter() - t)
    out.value = worst


def timed_take(url: str, path: str, took: Any) -> None:
    """One full snapshot, in a process of its own (as kanban-snapshot runs)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    t0 = time.perf_counter()
    take(client, BOARD, Path(path))
    took.value = time.perf_counter() - t0


def stall(url: str, path: Path) -> tuple[float, float]:
    """(longest PING in ms, snapshot seconds) while a snapshot runs in another process."""
    path.parent.mkdir()
    stop, worst, took = mp.Event(), mp.Value("d", 0.0), mp.Value("d", 0.0)
    pinger = mp.Process(target=ping_loop, args=(url, stop, worst))
    pinger.start()
    time.sleep(0.2)
    snap = mp.Process(target=timed_take, args=(url, str(path), took))
    snap.start()
    snap.join()
    stop.set()
    pinger.join()
    assert snap.exitcode == 0, snap.exitcode
    return worst.value * 1000, took.value


def raw_snapshot(r: redis.Redis, directory: Path) -> float:
    """Pipelined read of every task hash, one bulk insert, fsync, rename."""
    keys = Board(r, BOARD).keys
    t0 = time.perf_counter()
    ids = r.zrange(keys.tasks, 0, -1)
    rows = []
    for start in range(0, len(ids), 500):
        pipe = r.pipeline(transaction=False)
        for tid in ids[start:start + 500]:
            pipe.hgetall(keys.task(tid))
        rows.extend(schema.task_row(f) for f in pipe.execute())
    tmp = directory / "raw.tmp"
    conn = sqlite3.connect(tmp)
    conn.executescript(schema.DDL)
    conn.executemany(schema.TASK_INSERT, rows)
    conn.commit()
    conn.close()
    fd = os.open(tmp, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, directory / "raw.db")
    return time.perf_counter() - t0


def raw_restore(r: redis.Redis, source: redis.Redis) -> float:
    """Pipelined HSET of every task hash and RPUSH of its history (no indexes, no checks)."""
    keys = Board(source, BOARD).keys
    ids = source.zrange(keys.tasks, 0, -1)
    data = []
    for start in range(0, len(ids), 500):
        pipe = source.pipeline(transaction=False)
        for tid in ids[start:start + 500]:
            pipe.hgetall(keys.task(tid))
            pipe.lrange(keys.task_events(tid), 0, -1)
        replies = pipe.execute()
        data.extend(zip(ids[start:start + 500], replies[0::2], replies[1::2]))
    r.flushdb()
    t0 = time.perf_counter()
    for start in range(0, len(data), 500):
        pipe = r.pipeline(transaction=False)
        for tid, fields, events in data[start:start + 500]:
            pipe.hset(keys.task(tid), mapping=fields)
            pipe.rpush(keys.task_events(tid), *events)
        pipe.execute()
    return time.perf_counter() - t0


def _command_name(entry: dict[str, Any]) -> str:
    command = entry.get("command", b"")
    return (command.decode() if isinstance(command, bytes) else str(command)).split(" ", 1)[0].upper()


def command_times(r: redis.Redis) -> tuple[float, float, str]:
    """Longest and 99.9th-percentile command (or script) time in SLOWLOG, in ms, and the longest
    one's command name; the bench's own PINGs and SLOWLOG calls left out."""
    entries = sorted((e for e in r.slowlog_get(1_000_000) if _command_name(e) not in ("PING", "SLOWLOG")),
                     key=lambda e: e["duration"])
    if not entries:
        return 0.0, 0.0, "-"
    p999 = entries[min(len(entries) - 1, int(len(entries) * 0.999))]["duration"]
    return entries[-1]["duration"] / 1000, p999 / 1000, _command_name(entries[-1])


def prioritize(r: redis.Redis) -> None:
    """Run the server at real-time priority: the kernel no longer preempts it for the bench's processes."""
    os.sched_setscheduler(int(r.info("server")["process_id"]), os.SCHED_FIFO, os.sched_param(1))


def bench(url: str, n: int, repeat: int = 1) -> dict[str, Any]:
    """The figures for a board of ``n`` tasks; raw, full, incremental, raw restore and restore are
    each the fastest of ``repeat`` runs (every full snapshot into an empty directory, every restore
    onto an empty server that has to load its scripts)."""
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    board = populate(r, n)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=Path.home()) as d:
        directory = Path(d)
        out["raw"] = min(raw_snapshot(r, directory) for _ in range(repeat))
        fulls = []
        for i in range(repeat):
            (directory / f"full-{i}").mkdir()
            t0 = time.perf_counter()
            take(r, BOARD, directory / f"full-{i}" / "kanban.db")
            fulls.append(time.perf_counter() - t0)
        out["full"] = min(fulls)
        db = directory / "full-0" / "kanban.db"
        # the stall, in a further full snapshot (into another file, by another process):
        # a PING loop in a third process (it takes a core, so it is not running during
        # the timing above)
        r.config_set("slowlog-max-len", 1_000_000)
        r.config_set("slowlog-log-slower-than", 0)
        r.slowlog_reset()
        out["ping_max_ms"], busy = stall(url, directory / "second" / "kanban.db")
        out["cmd_max_ms"], out["cmd_p999_ms"], out["cmd_max_name"] = command_times(r)
        r.config_set("slowlog-log-slower-than", 10000)
        # the baseline: the same PING loop as long again with no snapshot running
        # (on a shared VM its maximum is the scheduler's, not Redis's)
        stop, idle = mp.Event(), mp.Value("d", 0.0)
        pinger = mp.Process(target=ping_loop, args=(url, stop, idle))
        pinger.start()
        time.sleep(0.2 + busy)
        stop.set()
        pinger.join()
        out["ping_idle_ms"] = idle.value * 1000
        # incremental, two ways: a tick of the run daemon (its Snapshotter kept between
        # ticks) and a one-shot `kanban-snapshot now` (opens and closes everything)
        ticker = Snapshotter(r, BOARD, db)
        assert ticker.take().mode == "unchanged"  # opens its working copy
        incs: dict[str, list[float]] = {"tick": [], "now": []}
        rounds = 0
        for _ in range(repeat):
            for kind, snap in (("tick", ticker.take), ("now", lambda: take(r, BOARD, db))):
                for i in range(0, n, 100):  # 1% of the tasks change (ready -> todo, then back)
                    board.move(str(i + 1), "todo" if rounds % 2 == 0 else "ready")
                rounds += 1
                t0 = time.perf_counter()
                inc = snap()
                incs[kind].append(time.perf_counter() - t0)
                assert inc.mode == "incremental", inc
        ticker.close()
        out["incremental"] = min(incs["tick"])
        out["incremental_now"] = min(incs["now"])
        out["size_mb"] = db.stat().st_size / 1e6
        with RedisServer() as other:
            target = redis.Redis.from_url(other.url, decode_responses=True)
            raws = []
            for _ in range(repeat):
                target.flushdb()
                raws.append(raw_restore(target, r))
            out["raw_restore"] = min(raws)
            restores = []
            for _ in range(repeat):
                target.flushdb()
                target.function_flush()
                t0 = time.perf_counter()
                restore(target, BOARD, db)
                restores.append(time.perf_counter() - t0)
            out["restore"] = min(restores)
            # command times in one more restore: SLOWLOG at 0 logs every command a script
            # runs too, which slows a restore down by a fifth (raw restore runs without it)
            target.flushdb()
            target.function_flush()
            target.config_set("slowlog-max-len", 1_000_000)
            target.config_set("slowlog-log-slower-than", 0)
            target.slowlog_reset()
            restore(target, BOARD, db)
            (out["restore_cmd_max_ms"], out["restore_cmd_p999_ms"],
             out["restore_cmd_max_name"]) = command_times(target)
            target.close()
    r.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time raw, full, incremental, raw restore and restore this many times each and keep each "
                             "one's fastest (for a busy machine)")
    parser.add_argument("--redis-priority", action="store_true",
                        help="run the snapshotted redis-server at SCHED_FIFO (root): command times without preemption")
    args = parser.parse_args()
    print("| tasks | raw s | full s | full/raw | incr s: tick / now | incr/full: tick / now | PING max ms (idle) "
          "| cmd max / p99.9 ms | raw restore s | restore s | restore/raw | restore cmd max / p99.9 ms | file MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with RedisServer() as server:
        if args.redis_priority:
            try:
                prioritize(redis.Redis.from_url(server.url))
            except PermissionError:
                sys.exit("--redis-priority needs root (SCHED_FIFO)")
        for n in (int(s) for s in args.sizes.split(",")):
            o = bench(server.url, n, args.repeat)
            print(f"| {n:,} | {o['raw']:.2f} | {o['full']:.2f} | {o['full'] / o['raw']:.2f} | "
                  f"{o['incremental']:.4f} / {o['incremental_now']:.4f} | "
                  f"{o['incremental'] / o['full']:.3f} / {o['incremental_now'] / o['full']:.3f} | "
                  f"{o['ping_max_ms']:.1f} ({o['ping_idle_ms']:.1f}) | "
                  f"{o['cmd_max_ms']:.1f} {o['cmd_max_name']} / {o['cmd_p999_ms']:.2f} | "
                  f"{o['raw_restore']:.2f} | {o['restore']:.2f} | "
                  f"{o['restore'] / o['raw_restore']:.2f} | "
                  f"{o['restore_cmd_max_ms']:.1f} {o['restore_cmd_max_name']} / {o['restore_cmd_p999_ms']:.2f} | "
                  f"{o['size_mb']:.1f} |", flush=True)

if __name__ == "__main__":
    main()
