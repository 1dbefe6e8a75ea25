"""Snapshot and restore costs against raw baselines measured in the same run.

For each board size: a full snapshot against "raw" (pipelined HGETALL of every
task + one executemany into a fresh SQLite file + fsync + rename); an
incremental snapshot after 1% of the tasks changed, against the full one, as
a tick of the ``run`` daemon (which keeps its working copy open between
ticks) and as a one-shot ``kanban-snapshot now``; the longest Redis stall
while a full snapshot runs in another process (a PING loop in a third, once
paced as ``redis-cli --latency`` samples and once back to back, each next to
the same loop with no snapshot running, the paced one also during raw
snapshots; and the slowest command in SLOWLOG); restore against raw
pipelined writes of the same hashes and histories, and the slowest command
of a restore (in another restore: SLOWLOG at 0 slows Redis down); the file
size, and how much a full snapshot writes to disk (working copy and
published file; Linux's /proc/self/io).

    python bench/snapshot.py --sizes 1000,10000,100000 [--repeat 3] [--redis-priority] [--ping-priority]
    python bench/snapshot.py --sizes 1000,10000 --priority-ab 20   # the stall at nice 0 against nice 10

On a 2-core machine Redis, the snapshot and the PING loop share the cores: a
command that the kernel preempts lasts a scheduler tick (4 ms on a 250 Hz
kernel) however little work it does. ``--redis-priority`` (root) runs the
snapshotted redis-server at SCHED_FIFO so that the snapshot's command column
shows Redis's own work; the PING loops still show what a client sees on the
shared cores. A back-to-back loop keeps a core busy itself, so with the
snapshot and Redis there are three busy processes on two cores: its maximum
is mostly its own wait for a core; ``--ping-priority`` runs the paced loop
at SCHED_FIFO too, so that it never waits for one. The snapshot's process
runs at nice 10 as ``kanban-snapshot`` does, and so does the raw one's, so
that the stall columns compare how Redis is read, not priorities. (Not the restore's
server: a real-time Redis that is busy for most of a second is throttled by
the kernel for 50 ms, a stall of its own.)
"""

from __future__ import annotations

import argparse
import functools
import itertools
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this file is named like the package it measures: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import redis  # noqa: E402

from kanban_redis import Board  # noqa: E402
from kanban_redis.local import RedisServer  # noqa: E402
from snapshot import schema  # noqa: E402
from snapshot.priority import BACKGROUND_NICE, run_in_background  # noqa: E402
from snapshot.restore import restore  # noqa: E402
from snapshot.snapshotter import Snapshotter, take  # noqa: E402

BOARD = "bench"
#: Seconds between two PINGs of the paced loop.
PING_PAUSE = 0.001


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


def ping_loop(url: str, stop: Any, out: Any, pause: float, realtime: bool) -> None:
    """PING until ``stop``, ``pause`` seconds apart (0: back to back); ``out`` = [max, p99.9] in ms.

    The first PING, which opens the connection, is not counted (it took about 2 ms here).
    ``realtime``: at SCHED_FIFO, so that the loop never waits for a core itself.
    """
    if realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    client = redis.Redis.from_url(url)
    client.ping()
    times = []
    while not stop.is_set():
        t = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - t)
        if pause:
            time.sleep(pause)
    times.sort()
    out[:] = [times[-1] * 1000, times[min(len(times) - 1, int(len(times) * 0.999))] * 1000]


def timed_take(url: str, directory: str, took: Any, nice: int = BACKGROUND_NICE) -> None:
    """One full snapshot into ``directory``/kanban.db, in a process of its own (as kanban-snapshot runs)."""
    run_in_background(nice)
    client = redis.Redis.from_url(url, decode_responses=True)
    t0 = time.perf_counter()
    take(client, BOARD, Path(directory) / "kanban.db")
    took.value = time.perf_counter() - t0


def timed_raw(url: str, directory: str, took: Any) -> None:
    """The raw baseline (:func:`raw_snapshot`) into ``directory``, in a process of its own
    (at the snapshotter's priority)."""
    run_in_background()
    took.value = raw_snapshot(redis.Redis.from_url(url, decode_responses=True), Path(directory))


def pings(url: str, pause: float, job: Callable[[str, str, Any], None] | None = None,
          directory: Path | None = None, seconds: float = 0.0,
          realtime: bool = False) -> tuple[float, float, float]:
    """(max ms, p99.9 ms, the job's seconds) of a PING loop in its own process while ``job``
    (timed_take or timed_raw) writes into ``directory`` in another (``seconds`` of nothing
    when there is no job)."""
    stop, times, took = mp.Event(), mp.Array("d", 2), mp.Value("d", 0.0)
    pinger = mp.Process(target=ping_loop, args=(url, stop, times, pause, realtime))
    pinger.start()
    time.sleep(0.2)
    if job is None or directory is None:
        time.sleep(seconds)
    else:
        directory.mkdir()
        worker = mp.Process(target=job, args=(url, str(directory), took))
        worker.start()
        worker.join()
        assert worker.exitcode == 0, worker.exitcode
    stop.set()
    pinger.join()
    return times[0], times[1], took.value


def raw_snapshot(r: redis.Redis, directory: Path) -> float:
    """Pipelined read of every task hash, one bulk insert, fsync, rename."""
    keys = Board(r, BOARD).keys
    t0 = time.perf_counter()
    ids: list[str] = r.zrange(keys.tasks, 0, -1)  # type: ignore[assignment]  # decode_responses
    rows: list[tuple[Any, ...]] = []
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
    ids: list[str] = source.zrange(keys.tasks, 0, -1)  # type: ignore[assignment]  # decode_responses
    data: list[tuple[str, Any, Any]] = []
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


def written_bytes() -> int:
    """Bytes this process has written to storage so far (write_bytes in /proc/self/io)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes:"))


def prioritize(r: redis.Redis) -> None:
    """Run the server at real-time priority: the kernel no longer preempts it for the bench's processes."""
    os.sched_setscheduler(int(r.info("server")["process_id"]), os.SCHED_FIFO, os.sched_param(1))


def bench(url: str, n: int, repeat: int = 1, realtime_ping: bool = False) -> dict[str, Any]:
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
        fulls, writes = [], []
        for i in range(repeat):
            (directory / f"full-{i}").mkdir()
            w0, t0 = written_bytes(), time.perf_counter()
            take(r, BOARD, directory / f"full-{i}" / "kanban.db")
            fulls.append(time.perf_counter() - t0)
            writes.append(written_bytes() - w0)
        out["full"] = min(fulls)
        out["written_mb"] = min(writes) / 1e6
        db = directory / "full-0" / "kanban.db"
        os.sync()  # the full snapshots' writeback would slow the incremental snapshots' fsyncs down
        # incremental, two ways: a tick of the run daemon (its Snapshotter kept between
        # ticks) and a one-shot `kanban-snapshot now` (opens and closes everything), in
        # that order and not interleaved: the lock lets only one of them at a file at a
        # time, and a tick after a `now` would find a kanban.db it did not publish; both
        # before the stall runs, whose snapshots leave fsync slower for a while after them
        # the ticker publishes once before it is timed, as a daemon has after its first tick
        # (working copy open, fsync thread started, log trimmed, published file's meta known)
        ticker = Snapshotter(r, BOARD, db)
        board.comment("1", author="bench", body="warm-up")
        assert ticker.take().mode == "incremental"
        rounds = itertools.count()

        def incremental(snap: Callable[[], Any]) -> float:
            """The fastest of ``repeat`` snapshots, each after 1% of the tasks changed."""
            times = []
            for _ in range(repeat):
                flip = next(rounds) % 2  # ready -> todo, then back
                for i in range(0, n, 100):
                    board.move(str(i + 1), "todo" if flip == 0 else "ready")
                t0 = time.perf_counter()
                inc = snap()
                times.append(time.perf_counter() - t0)
                assert inc.mode == "incremental", inc
            return min(times)

        out["incremental"] = incremental(ticker.take)
        ticker.close()  # a `now` opens the working copy alone, as it does next to a stopped daemon
        out["incremental_now"] = incremental(lambda: take(r, BOARD, db))
        # the stall, in further full snapshots (into other directories, by another process),
        # seen by a PING loop in a third process: paced (a PING every PING_PAUSE s, as
        # `redis-cli --latency` samples; the worst of `repeat` snapshots) and back to back
        # (which keeps a core busy itself; once); the paced loop also during as many raw
        # snapshots (the same reads and writes done the plainest way) and as long again
        # with nothing running
        stalls = (directory / f"stall-{i}" for i in itertools.count())
        r.config_set("slowlog-max-len", 1_000_000)
        r.config_set("slowlog-log-slower-than", 0)
        r.slowlog_reset()
        paced = [pings(url, PING_PAUSE, timed_take, next(stalls), realtime=realtime_ping)]
        out["cmd_max_ms"], out["cmd_p999_ms"], out["cmd_max_name"] = command_times(r)  # of the first
        r.config_set("slowlog-log-slower-than", 10000)
        paced += [pings(url, PING_PAUSE, timed_take, next(stalls), realtime=realtime_ping)
                  for _ in range(1, repeat)]
        raw_paced = [pings(url, PING_PAUSE, timed_raw, next(stalls), realtime=realtime_ping) for _ in range(repeat)]
        seconds = max(p[2] for p in paced)
        idle = [pings(url, PING_PAUSE, seconds=seconds, realtime=realtime_ping) for _ in range(repeat)]
        for key, runs in (("ping", paced), ("ping_raw", raw_paced), ("ping_idle", idle)):
            out[key] = (max(p[0] for p in runs), max(p[1] for p in runs))
        out["busy_ping"] = pings(url, 0, timed_take, next(stalls))[0]
        out["busy_ping_idle"] = pings(url, 0, seconds=seconds)[0]
        for stall_dir in directory.glob("stall-*"):
            shutil.rmtree(stall_dir)
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


def priority_ab(url: str, n: int, rounds: int) -> None:
    """The paced PING loop's max during ``rounds`` full snapshots at nice 0 and as many at nice 10,
    alternated (which goes first swaps every round); prints a line per nice value."""
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    populate(r, n)
    arms: dict[int, Callable[[str, str, Any], None]] = {0: functools.partial(timed_take, nice=0),
                                                        BACKGROUND_NICE: timed_take}
    maxima: dict[int, list[float]] = {nice: [] for nice in arms}
    took: dict[int, list[float]] = {nice: [] for nice in arms}
    with tempfile.TemporaryDirectory(dir=Path.home()) as d:
        runs = (Path(d) / f"run-{i}" for i in itertools.count())
        for i in range(rounds):
            for nice in sorted(arms, reverse=i % 2 == 1):
                ping_max, _, seconds = pings(url, PING_PAUSE, arms[nice], next(runs))
                maxima[nice].append(ping_max)
                took[nice].append(seconds)
                os.sync()
    for nice, values in maxima.items():
        print(f"| {n:,} | {nice} | {rounds} | {statistics.median(values):.2f} | {max(values):.2f} | "
              f"{sum(v > 5 for v in values)} | {statistics.median(took[nice]):.3f} |", flush=True)
    r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time raw, full, incremental, raw restore and restore this many times each and keep each "
                             "one's fastest (for a busy machine); the paced PING loop's stall is the worst of as many")
    parser.add_argument("--redis-priority", action="store_true",
                        help="run the snapshotted redis-server at SCHED_FIFO (root): command times without preemption")
    parser.add_argument("--ping-priority", action="store_true",
                        help="run the paced PING loop at SCHED_FIFO (root): with --redis-priority, its figures are "
                             "what Redis itself does to a client that never waits for a core")
    parser.add_argument("--priority-ab", type=int, metavar="ROUNDS",
                        help="instead: the paced PING loop's max during ROUNDS full snapshots at nice 0 and as many "
                             "at nice 10, alternated")
    args = parser.parse_args()
    if args.ping_priority and os.geteuid() != 0:
        sys.exit("--ping-priority needs root (SCHED_FIFO)")
    if args.priority_ab:
        print("| tasks | snapshot's nice | snapshots | PING max ms: median | max | over 5 ms | snapshot s, median |")
        print("|---|---|---|---|---|---|---|")
        with RedisServer() as server:
            for n in (int(s) for s in args.sizes.split(",")):
                priority_ab(server.url, n, args.priority_ab)
        return
    print("| tasks | raw s | full s | full/raw | incr s: tick / now | incr/full: tick / now "
          "| PING max / p99.9 ms, paced: snapshot; raw; idle | PING max ms, back to back (idle) "
          "| cmd max / p99.9 ms | raw restore s | restore s | restore/raw | restore cmd max / p99.9 ms | file MB "
          "| full snapshot writes MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with RedisServer() as server:
        if args.redis_priority:
            try:
                prioritize(redis.Redis.from_url(server.url))
            except PermissionError:
                sys.exit("--redis-priority needs root (SCHED_FIFO)")
        for n in (int(s) for s in args.sizes.split(",")):
            o = bench(server.url, n, args.repeat, args.ping_priority)
            print(f"| {n:,} | {o['raw']:.2f} | {o['full']:.2f} | {o['full'] / o['raw']:.2f} | "
                  f"{o['incremental']:.4f} / {o['incremental_now']:.4f} | "
                  f"{o['incremental'] / o['full']:.3f} / {o['incremental_now'] / o['full']:.3f} | "
                  f"{o['ping'][0]:.1f} / {o['ping'][1]:.1f}; {o['ping_raw'][0]:.1f} / {o['ping_raw'][1]:.1f}; "
                  f"{o['ping_idle'][0]:.1f} / {o['ping_idle'][1]:.1f} | "
                  f"{o['busy_ping']:.1f} ({o['busy_ping_idle']:.1f}) | "
                  f"{o['cmd_max_ms']:.1f} {o['cmd_max_name']} / {o['cmd_p999_ms']:.2f} | "
                  f"{o['raw_restore']:.2f} | {o['restore']:.2f} | "
                  f"{o['restore'] / o['raw_restore']:.2f} | "
                  f"{o['restore_cmd_max_ms']:.1f} {o['restore_cmd_max_name']} / {o['restore_cmd_p999_ms']:.2f} | "
                  f"{o['size_mb']:.1f} | {o['written_mb']:.1f} |", flush=True)

if __name__ == "__main__":
    main()
