"""bench/minimal_lifecycle.lua, the floor bench/claims.py compares the board's Redis CPU with, on a real server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import redis

# loaded by path: the bench folder must stay off sys.path (its snapshot.py would shadow the package)
_spec = importlib.util.spec_from_file_location(
    "minimal_lifecycle", Path(__file__).resolve().parent.parent / "bench" / "minimal_lifecycle.py")
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
MinimalLifecycle = _module.MinimalLifecycle


def test_minimal_lifecycle_claims_each_task_once_and_logs_every_transition(real_redis: redis.Redis) -> None:
    floor = MinimalLifecycle(real_redis)
    first, second = floor.create("a"), floor.create("b")
    claim = floor.claim("tok-1", 60_000)
    assert claim is not None and claim["id"] == first["id"] and claim["status"] == "running"
    assert claim["attempts"] == "1" and claim["claim_token"] == "tok-1"
    with pytest.raises(redis.ResponseError, match="STALE"):
        floor.complete(first["id"], "tok-2")
    done = floor.complete(first["id"], "tok-1")
    assert done["status"] == "done"
    assert real_redis.zcard(MinimalLifecycle.KEYS[2]) == 0  # the lease ended
    nxt = floor.claim("tok-3")
    assert nxt is not None and nxt["id"] == second["id"]
    assert floor.claim("tok-4") is None
    ops = [fields["op"] for _, fields in real_redis.xrange(MinimalLifecycle.KEYS[3])]
    assert ops == ["create", "create", "claim", "complete", "claim"]
