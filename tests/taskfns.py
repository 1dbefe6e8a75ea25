"""Handlers the worker tests run in real kanban-worker processes (on PYTHONPATH there).

``act`` does what the task's metadata asks (sleep -- on the first
``slow_attempts`` attempts only, if given -- progress, retry, block, fail,
result) and records each run it starts in the Redis list ``test:runs``
(REDIS_URL), so tests can see who ran what.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from kanban_redis import Block, Retry, Task

RUNS = "test:runs"


def act(task: Task, ctx: Any) -> Any:
    m = task.metadata
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.rpush(RUNS, json.dumps({"task": task.id, "attempt": ctx.attempt, "token": ctx.token, "pid": os.getpid()}))
    if "progress" in m:
        ctx.progress(m["progress"])
    if ctx.attempt <= m.get("slow_attempts", 1000):
        time.sleep(m.get("sleep", 0))
    if m.get("retry_until", 0) > ctx.attempt:
        raise Retry(0, reason="not yet")
    if "block" in m:
        raise Block(m["block"])
    if "fail" in m:
        raise RuntimeError(m["fail"])
    return m.get("result", {"ran": task.id})


def other(task: Task, ctx: Any) -> str:
    return "other handler"


def unserialisable(task: Task, ctx: Any) -> set[int]:
    return {1, 2}
