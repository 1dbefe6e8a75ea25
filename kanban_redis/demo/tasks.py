"""What the demo's gateways create and what its workers run.

A gateway (one process each, as in an agent platform) turns requests into
chains of three tasks in three lanes: ``research`` -> ``code`` (its parent is
the research task) -> ``review`` (its parent is the code task). A child is
``todo`` until its parent is done; the board makes it ``ready`` in the same
script that completes the parent.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

from ..board import Board
from ..models import Task

#: The lanes of a chain, in dependency order, and the seconds a task of each takes.
LANES: dict[str, float] = {"research": 0.3, "code": 0.5, "review": 0.2}
TOPICS = ("login page", "rate limiter", "csv export", "search box", "retry policy", "audit log", "dark mode",
          "webhooks", "billing report", "image resize", "sso", "backups")
#: The handler the demo's workers run (``kanban-worker --handler``).
HANDLER = "kanban_redis.demo.tasks:work"


def work(task: Task, ctx: Any) -> dict[str, Any]:
    """The demo's handler: takes the task's ``metadata["seconds"]`` and returns a small result."""
    time.sleep(float(task.metadata.get("seconds", 0.1)))
    return {"lane": task.assignee, "output": f"{task.title}: ok", "attempt": ctx.attempt}


def gateway(url: str, board_name: str, number: int, chains: int, pace: float) -> None:
    """One gateway process: ``chains`` requests of three tasks each, one request every ``pace`` seconds.

    Idempotency keys make a re-sent request return the tasks it created before. Ctrl-C is
    left to the demo, which stops its gateways itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    board = Board.from_url(url, board=board_name)
    rng = random.Random(number)
    for c in range(chains):
        topic = TOPICS[(number + c * 5) % len(TOPICS)]
        parent: str | None = None
        for lane, seconds in LANES.items():
            task = board.create(f"{lane} {topic}", assignee=lane, priority=rng.randint(0, 3),
                                parents=[parent] if parent else [], created_by=f"gateway-{number}",
                                idempotency_key=f"gw{number}-{c}-{lane}",
                                metadata={"seconds": round(seconds * rng.uniform(0.5, 1.5), 2)})
            parent = task.id
        time.sleep(pace)
