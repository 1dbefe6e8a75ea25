"""The demo's story, step by step: work, a WSL shutdown, a restore from kanban.db, more work.

1. Start Redis (a local server of the demo's own, or REDIS_URL with a new board).
2. Start a ``kanban-worker`` per lane and ``kanban-snapshot run`` (a snapshot
   every 2 s to ``kanban.db`` in the demo directory of the user's data home).
3. 12 gateway processes enqueue chains of tasks; the board is drawn live.
4. When half the work is done: a WSL shutdown. Workers and snapshotter get
   SIGTERM (a worker finishes its task, the snapshotter takes a last snapshot),
   then Redis is stopped and its data deleted.
5. ``kanban-snapshot restore`` loads kanban.db into the empty Redis, and every
   snapshotted task is compared with the restored board.
6. Workers and snapshotter start again and finish the remaining tasks; the
   last snapshot must hold every task, done.

``KANBAN_DEMO_SCALE`` (default 1) scales the number of tasks (0.25 for a quick run).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import click

from snapshot import fscheck, schema
from snapshot.verify import peek, verify

from .. import localdefault
from ..board import Board
from ..cli.view import board_lines, collect
from ..errors import KanbanError
from ..models import Status, Task
from .fleet import SNAPSHOT, WORKER, Child, DemoError, DemoRedis, Fleet, script
from .tasks import HANDLER, LANES, gateway

GATEWAYS = 12
#: Requests (chains of three tasks) per gateway at scale 1, and seconds between two of them.
CHAINS = 4
PACE = 2.0
WORKERS_PER_LANE = 2
SNAPSHOT_INTERVAL = 2.0
#: Claim lease of the demo's workers (renewed every third of it), and their grace after SIGTERM.
TTL = 6.0
GRACE = 3.0
#: Share of the tasks done when the shutdown comes (once every gateway has finished).
SHUTDOWN_AT = 0.5
#: Longest any phase may take before the demo gives up, in seconds.
PHASE_TIMEOUT = 120.0
#: Redraws: the whole board on a terminal, else one line every LOG_EVERY seconds.
REDRAW = 1.0
LOG_EVERY = 3.0
CARDS = 2
SCALE_ENV = "KANBAN_DEMO_SCALE"
#: Task fields a restore must give back exactly as the snapshot holds them.
KEPT = ("title", "assignee", "parents", "priority", "attempts", "result", "metadata", "created_by",
        "idempotency_key", "created_at", "completed_at")


def chains() -> int:
    raw = os.environ.get(SCALE_ENV) or "1"
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not 0 < scale <= 10:
        raise DemoError(f"{SCALE_ENV}={raw!r}: expected a number in (0, 10]")
    return max(1, round(CHAINS * scale))


def read_snapshot(db: Path) -> tuple[dict[str, str], dict[str, Task]]:
    """The meta and the tasks of a snapshot file, read-only."""
    conn = schema.connect(str(db), readonly=True)
    try:
        tasks = [Task.from_fields(schema.task_fields(row)) for row in conn.execute("SELECT * FROM tasks")]
        return schema.read_meta(conn), {t.id: t for t in tasks}
    finally:
        conn.close()


def differences(snapshotted: dict[str, Task], restored: dict[str, Task]) -> list[str]:
    """What the restored board lost or changed of the snapshot (running tasks come back ready)."""
    found = []
    for tid, was in snapshotted.items():
        now = restored.get(tid)
        if now is None:
            found.append(f"#{tid} is missing")
            continue
        status = Status.READY if was.status == Status.RUNNING else was.status
        if now.status != status:
            found.append(f"#{tid} is {now.status.value}, was {was.status.value}")
        found += [f"#{tid} {name} differs" for name in KEPT if getattr(now, name) != getattr(was, name)]
    return found


def counted(tasks: dict[str, Task]) -> str:
    by = {s.value: sum(1 for t in tasks.values() if t.status == s) for s in Status}
    return ", ".join(f"{n} {s}" for s, n in by.items() if n)


class Story:
    def __init__(self) -> None:
        self.home = localdefault.data_home() / "demo"
        self.db = self.home / "kanban.db"
        given = os.environ.get("REDIS_URL") or None
        name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}" if given else "demo"
        self.redis = DemoRedis(self.home, given, name)
        self.fleet = Fleet(self.home / "logs")
        self.gateways: list[BaseProcess] = []
        self.tty = sys.stdout.isatty()
        self.said: list[str] = []
        self.started = time.monotonic()
        self.phase = ""

    @property
    def board(self) -> Board:
        return Board.from_url(self.redis.url, board=self.redis.board)

    def say(self, text: str) -> None:
        self.said.append(text)
        click.echo(text)

    # -- the story ----------------------------------------------------------

    def run(self) -> None:
        self.prepare()
        self.say(self.redis.start())
        services = self.start_services()
        n = chains()
        self.say(f"{GATEWAYS} gateways enqueue {n} request(s) each: {' -> '.join(LANES)} "
                 f"({GATEWAYS * n * len(LANES)} tasks; a child waits in todo until its parent is done)")
        ctx = multiprocessing.get_context("fork")
        self.gateways = [ctx.Process(target=gateway, args=(self.redis.url, self.redis.board, g, n, PACE),
                                     name=f"gateway-{g}") for g in range(GATEWAYS)]
        for p in self.gateways:
            p.start()
        self.phase = "gateways enqueue, workers run, kanban.db published every 2 s"
        self.watch(services, lambda v: not self.enqueueing() and v["done"] >= SHUTDOWN_AT * v["total"])
        if any(p.exitcode for p in self.gateways):
            raise DemoError("a gateway failed (its traceback is above)")
        snapshotted = self.shutdown(services)
        self.restore(snapshotted)
        services = self.start_services()
        self.phase = "after the restore: the workers finish the rest"
        self.watch(services, lambda v: v["done"] == v["total"])
        self.finish(services, total=len(snapshotted))

    def prepare(self) -> None:
        """A clean demo directory (a server left by an interrupted demo is stopped first)."""
        localdefault.stop(self.home)
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        unsafe = fscheck.check(self.home)
        if unsafe:
            raise DemoError(f"{self.home} is no place for kanban.db ({unsafe}): "
                            "set XDG_DATA_HOME to a directory on a local disk")
        mount, fstype = fscheck.filesystem_of(self.home)
        self.say(f"kanban.db: {self.db}")
        self.say(f"  the demo directory in your data home, on {fstype} ({mount}); never /tmp or /mnt/c, "
                 "see docs/wsl.md")

    def start_services(self) -> list[Child]:
        url, board = self.redis.url, self.redis.board
        services = [self.fleet.start(f"worker-{lane}", [
            script(WORKER), "--redis-url", url, "--board", board, "--lane", lane, "--handler", HANDLER,
            "--concurrency", str(WORKERS_PER_LANE), "--ttl", str(TTL), "--grace", str(GRACE),
            "--name", f"{board}-{lane}"]) for lane in LANES]
        services.append(self.fleet.start("snapshot", [
            script(SNAPSHOT), "run", "--redis-url", url, "--board", board, "--db", str(self.db),
            "--interval", str(SNAPSHOT_INTERVAL)]))
        self.say(f"started {len(LANES)} kanban-worker processes ({WORKERS_PER_LANE} rq workers each: "
                 f"{', '.join(LANES)}) and kanban-snapshot run --interval {SNAPSHOT_INTERVAL:g}; "
                 f"logs in {self.fleet.logs}")
        return services

    def shutdown(self, services: list[Child]) -> dict[str, Task]:
        """Stop everything as a WSL shutdown would, then lose Redis; the tasks of the last snapshot."""
        self.say("")
        self.say("WSL shuts down: workers finish their task and stop, the snapshotter takes a last snapshot")
        self.stopped(self.fleet.stop(services[:-1]))
        self.stopped(self.fleet.stop(services[-1:]))
        seq = self.board.seq
        meta, tasks = read_snapshot(self.db)
        self.say(f"  Redis at seq {seq}; kanban.db at seq {meta['seq']} with {len(tasks)} tasks ({counted(tasks)})")
        self.say("  " + self.redis.wipe())
        self.say(self.redis.start())
        after = self.board
        self.say(f"  board {after.name!r} in Redis now: seq {after.seq}, {len(after.list())} tasks")
        return tasks

    def restore(self, snapshotted: dict[str, Task]) -> None:
        self.say("")
        argv = [script(SNAPSHOT), "restore", "--redis-url", self.redis.url, "--board", self.redis.board,
                "--db", str(self.db)]
        self.say("$ kanban-snapshot restore --board " + self.redis.board + " --db " + str(self.db))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PHASE_TIMEOUT)
        for line in (done.stdout + done.stderr).splitlines():
            self.say("  " + line)
        if done.returncode != 0:
            raise DemoError(f"kanban-snapshot restore exited {done.returncode}")
        restored = {t.id: t for t in self.board.list()}
        lost = differences(snapshotted, restored)
        if lost:
            raise DemoError(f"the restore lost {len(lost)} things: " + "; ".join(lost[:5]))
        left = sum(1 for t in restored.values() if t.status != Status.DONE)
        self.say(f"nothing lost: all {len(snapshotted)} snapshotted tasks are back with their status, "
                 f"results and dependencies ({counted(restored)}); {left} still to do")

    def finish(self, services: list[Child], total: int) -> None:
        self.stopped(self.fleet.stop(services))
        verdict = verify(self.db)
        meta, tasks = read_snapshot(self.db)
        if not verdict.ok or len(tasks) != total or any(t.status != Status.DONE for t in tasks.values()):
            raise DemoError(f"the last snapshot is not the finished board: {verdict.reason}, {counted(tasks)}")
        again = sum(1 for t in tasks.values() if t.attempts > 1)
        self.say("")
        self.say(f"all {total} tasks done ({again} ran more than once); the last snapshot, seq {meta['seq']}, "
                 f"is sound and holds them all")
        self.say(f"kanban.db: {self.db}")
        self.say(f"  {script(SNAPSHOT)} list --db {self.db}")
        self.say(f"  sqlite3 {self.db} 'SELECT status, count(*) FROM tasks GROUP BY status'")
        self.say(f"the story took {time.monotonic() - self.started:.0f} s")

    def stopped(self, codes: dict[str, int]) -> None:
        failed = {name: code for name, code in codes.items() if code != 0}
        if failed:
            raise DemoError("did not stop cleanly: " + ", ".join(f"{n} exited {c}" for n, c in failed.items()))

    # -- the live view --------------------------------------------------------

    def enqueueing(self) -> int:
        return sum(1 for p in self.gateways if p.is_alive())

    def watch(self, services: list[Child], until: Callable[[dict[str, Any]], bool]) -> None:
        """Draw the board until ``until(view)`` holds; a service that dies or a timeout ends the demo."""
        board = self.board
        deadline = time.monotonic() + PHASE_TIMEOUT
        logged = 0.0
        while True:
            view = collect(board, None, CARDS)
            view["done"], view["total"] = view["counts"]["done"], sum(view["counts"].values())
            done = until(view)
            if self.tty:
                self.draw(view)
            elif done or time.monotonic() - logged >= LOG_EVERY:
                logged = time.monotonic()
                click.echo(self.line(view))
            if done:
                return
            dead = [c for c in services if not c.alive]
            if dead:
                raise DemoError(f"{dead[0].name} exited {dead[0].proc.returncode}: {self.fleet.tail(dead[0])}")
            if time.monotonic() > deadline:
                raise DemoError(f"{self.phase}: not finished after {PHASE_TIMEOUT:.0f} s ({self.line(view)})")
            time.sleep(REDRAW)

    def snapshot_text(self) -> str:
        meta = peek(self.db)
        if meta is None:
            return "kanban.db: not yet published"
        age = time.time() - int(meta["taken_at_ms"]) / 1000
        return f"kanban.db seq {meta['seq']} ({age:.1f} s old)"

    def line(self, view: dict[str, Any]) -> str:
        counts = " ".join(f"{s} {n}" for s, n in view["counts"].items() if n)
        return (f"{time.monotonic() - self.started:5.1f}s  seq {view['seq']}  {counts}  |  "
                f"{self.snapshot_text()}")

    def draw(self, view: dict[str, Any]) -> None:
        click.clear()
        for text in [*self.said[-8:], "", *board_lines(view), "",
                     click.style(self.phase, bold=True) + f"  ({time.monotonic() - self.started:.0f} s)",
                     f"gateways enqueueing: {self.enqueueing()} of {GATEWAYS}  |  {self.snapshot_text()}"]:
            click.echo(text)

    def close(self) -> None:
        for p in self.gateways:
            if p.is_alive():
                p.terminate()
            p.join()
        self.fleet.close()
        self.redis.close(LANES)
        if self.redis.local:
            self.say(f"stopped the demo's Redis; kanban.db stays at {self.db}")
        else:
            self.say(f"board {self.redis.board!r} removed from REDIS_URL; kanban.db stays at {self.db}")


def main() -> int:
    """Run the story; 0 when every check held."""
    story = Story()
    try:
        story.run()
        return 0
    except KeyboardInterrupt:
        click.echo("interrupted: stopping the demo's processes", err=True)
        return 130
    except KanbanError as e:
        click.echo(f"demo: error: {e}", err=True)
        return 1
    finally:
        story.close()
