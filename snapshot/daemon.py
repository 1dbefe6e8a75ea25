"""``kanban-snapshot run``: snapshots on an APScheduler interval, a last one on SIGTERM/SIGINT.

The interval job coalesces missed runs and never overlaps itself
(``max_instances=1``). Passing trouble (Redis down, a restore running) is
reported and retried at the next tick; a refusal to publish (never clobber)
or a lock held elsewhere stops the daemon with its exit code.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from kanban_redis.errors import BoardRestoring, KanbanError, RedisUnavailable

from .job import SnapshotJob
from .snapshotter import Outcome
from .sync import CutFailed

#: Errors worth waiting out: the next tick tries again.
PASSING = (RedisUnavailable, BoardRestoring, CutFailed)


def run(job: SnapshotJob, interval: float, *, report: Callable[[Outcome], None],
        warn: Callable[[str], None]) -> KanbanError | None:
    """Run until SIGTERM/SIGINT (then take a final snapshot) or a fatal error (returned)."""
    stop = threading.Event()
    fatal: list[KanbanError] = []

    def tick() -> None:
        started = time.time()
        try:
            for outcome in job.tick():
                report(outcome)
        except PASSING as e:
            warn(f"skipped: {e}")
        except KanbanError as e:
            fatal.append(e)
            stop.set()
        finally:
            # not scheduler.get_job(): calling into the scheduler from its own job can deadlock
            job.note(interval=interval, next_run=started + interval)

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(tick, "interval", seconds=interval, id="snapshot", coalesce=True, max_instances=1,
                      misfire_grace_time=None)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        tick()
        if not fatal:
            scheduler.start()
            while not stop.wait(0.5):
                pass
            scheduler.shutdown(wait=True)
        if not fatal:
            tick()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return fatal[0] if fatal else None
