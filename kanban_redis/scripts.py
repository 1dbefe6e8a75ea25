"""Loads the Lua scripts in ``lua/`` and runs them by SHA.

Each script is assembled once per process: a generated preamble (error codes,
the move rules and the derived-key functions, all taken from the Python
definitions so Lua and Python share one source of truth), then the files its
``-- @include "name"`` lines name from ``lua/includes/``, then its own body.
redis-py's ``Script`` runs it with EVALSHA and reloads it on NOSCRIPT (also
inside a pipeline, where it loads missing scripts before executing).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import Script

from .errors import ErrorCode
from .keys import DERIVED, SCRIPT_KEYS
from .models import ALLOWED_MOVES

#: Longest the change log may grow (approximate trim) when no snapshotter
#: trims it; a snapshotter that falls further behind does a full resync.
LOG_MAXLEN = 100_000

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"\s*$', re.MULTILINE)


def _lua_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _preamble(body: str) -> str:
    """The definitions ``body`` uses (each one costs time on every call of the script)."""
    codes = ", ".join(f"{c.name}={c.value}" for c in ErrorCode)
    moves = ", ".join(
        f"[{_lua_str(src)}]={{" + ", ".join(f"[{_lua_str(dst)}]=true" for dst in sorted(dsts)) + "}"
        for src, dsts in ALLOWED_MOVES.items()
    )
    lines = [
        f"local E = {{{codes}}}",
        f"local LOG_MAXLEN = {LOG_MAXLEN}",
        "local " + ", ".join(f"K_{name.upper()}" for name in SCRIPT_KEYS)
        + " = " + ", ".join(f"KEYS[{i}]" for i in range(1, len(SCRIPT_KEYS) + 1)),
        "local PREFIX = ARGV[1]",
    ]
    if "MOVES[" in body:
        lines.append(f"local MOVES = {{{moves}}}")
    for kind, (before, after) in DERIVED.items():
        if f"key_{kind}(" not in body:
            continue
        tail = f" .. {_lua_str(after)}" if after else ""
        lines.append(f"local function key_{kind}(x) return PREFIX .. {_lua_str(before)} .. x{tail} end")
    return "\n".join(lines) + "\n"


def _read(kind: str, name: str) -> str:
    folder = resources.files("kanban_redis") / "lua"
    if kind == "include":
        folder = folder / "includes"
    return (folder / f"{name}.lua").read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The full text sent to Redis for script ``name`` (``lua/<name>.lua``)."""
    body = _read("script", name)
    seen: list[str] = []

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            inc = match.group(1)
            if inc in seen:
                return ""
            seen.append(inc)
            return expand(_read("include", inc))

        return _INCLUDE.sub(one, text)

    text = expand(body)
    return _preamble(text) + text


class Scripts:
    """The scripts registered on one Redis client, created on first use."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._registered: dict[str, Script] = {}

    def __getitem__(self, name: str) -> Script:
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(source(name))
        return script
