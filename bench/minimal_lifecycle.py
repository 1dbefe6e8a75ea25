"""The minimal design that bench/claims.py compares the board's Redis CPU with (minimal_lifecycle.lua)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis


class MinimalLifecycle:
    """The floor design of minimal_lifecycle.lua, loaded into one server."""

    SOURCE = Path(__file__).with_name("minimal_lifecycle.lua").read_text()
    KEYS = ["min:{m}:seq", "min:{m}:ready", "min:{m}:leases", "min:{m}:log"]
    PREFIX = "min:{m}:task:"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        client.function_load(self.SOURCE, replace=True)

    def _call(self, name: str, *args: Any) -> Any:
        return self.client.fcall(f"minimal_{name}", len(self.KEYS), *self.KEYS, self.PREFIX, *args)

    def create(self, title: str) -> dict[str, str]:
        return dict(json.loads(self._call("create", title)))

    def claim(self, token: str, ttl_ms: int = 900_000) -> dict[str, str] | None:
        state = self._call("claim", token, ttl_ms)
        return dict(json.loads(state)) if state else None

    def complete(self, task_id: str, token: str) -> dict[str, str]:
        return dict(json.loads(self._call("complete", task_id, token)))
