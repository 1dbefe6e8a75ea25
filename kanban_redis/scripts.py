"""Loads the Lua transitions in ``lua/`` as one Redis function library and calls them with FCALL.

The library is assembled once per process: a generated preamble (error codes,
the move rules and the derived-key functions, all taken from the Python
definitions so Lua and Python share one source of truth), every file in
``lua/includes/`` that a script names with ``-- @include "name"``, then each
script's body wrapped in a function registered as ``kanban_<version>_<name>``.

Why a library rather than EVALSHA: an EVAL script re-creates all its helper
functions and tables on every call, which cost more Redis CPU than most
transitions' actual work; a library defines them once, at FUNCTION LOAD.
The version is a hash of the library's text, so processes running different
releases each find their own functions on a shared server. A server that lost
its functions (restart without persistence, FUNCTION FLUSH) is reloaded on the
first "Function not found".
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

import redis

from .errors import ErrorCode
from .keys import DERIVED, SCRIPT_KEYS
from .models import ALLOWED_MOVES

#: Longest the change log may grow (approximate trim) when no snapshotter
#: trims it; a snapshotter that falls further behind does a full resync.
LOG_MAXLEN = 100_000

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"\s*$', re.MULTILINE)
_VERSION = "@VERSION@"


def _lua_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _preamble() -> str:
    """Constants, the call's KEYS/ARGV and the derived-key functions, shared by every function."""
    codes = ", ".join(f"{c.name}={c.value}" for c in ErrorCode)
    moves = ", ".join(
        f"[{_lua_str(src)}]={{" + ", ".join(f"[{_lua_str(dst)}]=true" for dst in sorted(dsts)) + "}"
        for src, dsts in ALLOWED_MOVES.items()
    )
    lines = [
        f"local E = {{{codes}}}",
        f"local LOG_MAXLEN = {LOG_MAXLEN}",
        f"local MOVES = {{{moves}}}",
        "-- set at the start of every call (see the registrations at the end)",
        "local KEYS, ARGV, PREFIX, " + ", ".join(f"K_{name.upper()}" for name in SCRIPT_KEYS),
    ]
    for kind, (before, after) in DERIVED.items():
        tail = f" .. {_lua_str(after)}" if after else ""
        lines.append(f"local function key_{kind}(x) return PREFIX .. {_lua_str(before)} .. x{tail} end")
    return "\n".join(lines) + "\n"


def _read(kind: str, name: str) -> str:
    folder = resources.files("kanban_redis") / "lua"
    if kind == "include":
        folder = folder / "includes"
    return (folder / f"{name}.lua").read_text(encoding="utf-8")


def script_names() -> list[str]:
    """Every transition: one ``lua/<name>.lua`` each."""
    folder = resources.files("kanban_redis") / "lua"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".lua"))


def _registration(name: str, body: str) -> str:
    keys = ", ".join(f"K_{n.upper()}" for n in SCRIPT_KEYS)
    values = ", ".join(f"keys[{i}]" for i in range(1, len(SCRIPT_KEYS) + 1))
    return (
        f"local function run_{name}()\n{body}\nend\n"
        f"redis.register_function('kanban_{_VERSION}_{name}', function(keys, args)\n"
        f"  KEYS, ARGV, PREFIX = keys, args, args[1]\n"
        f"  {keys} = {values}\n"
        f"  begin()\n"
        f"  return run_{name}()\n"
        f"end)\n"
    )


@cache
def library() -> tuple[str, str]:
    """``(version, source)`` of the function library holding every transition."""
    seen: list[str] = []
    parts: list[str] = []

    def includes(text: str) -> None:
        for inc in _INCLUDE.findall(text):
            if inc not in seen:
                seen.append(inc)
                inner = _read("include", inc)
                includes(inner)
                parts.append(inner)

    includes('-- @include "lib"')  # begin() lives there: every function calls it
    bodies = []
    for name in script_names():
        body = _read("script", name)
        includes(body)
        bodies.append(_registration(name, body))
    template = "\n".join([_preamble(), *parts, *bodies])
    version = hashlib.sha1(template.encode()).hexdigest()[:12]
    return version, f"#!lua name=kanban_{version}\n" + template.replace(_VERSION, version)


class Scripts:
    """The transitions as called on one Redis client; ``scripts[name](keys=..., args=...)``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._loaded = False

    def load(self) -> None:
        """FUNCTION LOAD the library unless this exact version is already there."""
        try:
            self._client.function_load(library()[1])
        except redis.ResponseError as e:
            if "already exists" not in str(e):
                raise
        self._loaded = True

    def __getitem__(self, name: str) -> _Function:
        return _Function(self, f"kanban_{library()[0]}_{name}")


class _Function:
    def __init__(self, scripts: Scripts, name: str) -> None:
        self._scripts = scripts
        self.name = name

    def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """FCALL, loading the library first if the server does not have it.

        In a pipeline (``client``) the library is loaded beforehand, once per
        :class:`Scripts`: a server that loses it between that load and the
        pipeline's execution fails those calls with "Function not found".
        """
        s = self._scripts
        if client is not None:
            if not s._loaded:
                s.load()
            return client.fcall(self.name, len(keys), *keys, *args)
        try:
            return s._client.fcall(self.name, len(keys), *keys, *args)
        except redis.ResponseError as e:
            if "Function not found" not in str(e):
                raise
        s.load()
        return s._client.fcall(self.name, len(keys), *keys, *args)
