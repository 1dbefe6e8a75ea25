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
first "Function not found". A server without functions (Redis 6) gets each
script as a plain EVAL script built from the same files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cache, partial
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from .errors import ErrorCode
from .keys import DERIVED, SCRIPT_KEYS
from .models import ALLOWED_MOVES

#: Longest the change log may grow (approximate trim) when no snapshotter
#: trims it; a snapshotter that falls further behind does a full resync.
LOG_MAXLEN = 100_000
#: Most tasks one script call creates, promotes or reclaims: keeps each call
#: short. Lua knows it as BATCH too: claim and complete promote due tasks and
#: reclaim expired leases, up to BATCH of each, before they claim.
BATCH = 200

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
        "-- numbers Redis is passed as text: it formats each Lua number with %.17g, on every call",
        f"local LOG_MAXLEN = '{LOG_MAXLEN}'",
        f"local BATCH = '{BATCH}'",
        f"local MOVES = {{{moves}}}",
        "-- set at the start of every call (see the registrations at the end)",
        "local KEYS, ARGV, PREFIX, " + ", ".join(f"K_{name.upper()}" for name in SCRIPT_KEYS),
        "-- prefix -> the board's fixed keys, built once per board (not per call)",
        "local FIXED = {}",
        "local function use_board(prefix)",
        "  local k = FIXED[prefix]",
        "  if not k then",
        "    k = {" + ", ".join(f"prefix .. {_lua_str(name)}" for name in SCRIPT_KEYS) + "}",
        "    FIXED[prefix] = k",
        "  end",
        "  PREFIX = prefix",
        "  " + ", ".join(f"K_{name.upper()}" for name in SCRIPT_KEYS) + " = "
        + ", ".join(f"k[{i}]" for i in range(1, len(SCRIPT_KEYS) + 1)),
        "end",
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
    return (
        f"local function run_{name}()\n{body}\nend\n"
        f"redis.register_function('kanban_{_VERSION}_{name}', function(keys, args)\n"
        f"  KEYS, ARGV = keys, args\n"
        f"  use_board(args[1])\n"
        f"  begin()\n"
        f"  return run_{name}()\n"
        f"end)\n"
    )


def _collect(text: str, seen: list[str], parts: list[str]) -> None:
    """Appends to ``parts`` the includes ``text`` names (each once, dependencies first)."""
    for inc in _INCLUDE.findall(text):
        if inc not in seen:
            seen.append(inc)
            inner = _read("include", inc)
            _collect(inner, seen, parts)
            parts.append(inner)


@cache
def library() -> tuple[str, str]:
    """``(version, source)`` of the function library holding every transition."""
    seen: list[str] = []
    parts: list[str] = []
    _collect('-- @include "lib"', seen, parts)  # begin() lives there: every function calls it
    bodies = []
    for name in script_names():
        body = _read("script", name)
        _collect(body, seen, parts)
        bodies.append(_registration(name, body))
    template = "\n".join([_preamble(), *parts, *bodies])
    version = hashlib.sha1(template.encode()).hexdigest()[:12]
    return version, f"#!lua name=kanban_{version}\n" + template.replace(_VERSION, version)


@cache
def eval_source(name: str) -> str:
    """Script ``name`` as a plain EVAL script: the fallback for servers without functions (Redis 6)."""
    body = _read("script", name)
    parts: list[str] = []
    _collect('-- @include "lib"\n' + body, [], parts)
    return "\n".join(["local keys, args = KEYS, ARGV", _preamble(), *parts,
                      "KEYS, ARGV = keys, args", "use_board(args[1])", "begin()", body])


@cache
def _function(name: str) -> bytes:
    """The library function of script ``name``, encoded once (redis-py encodes str arguments per call)."""
    return f"kanban_{library()[0]}_{name}".encode()


def _lacks_functions(e: redis.ResponseError) -> bool:
    return "unknown command" in str(e).lower()


class Scripts:
    """The transitions as called on one Redis client: ``scripts[name](keys=..., args=..., client=None)``.

    FCALL of the library's functions; on a server without functions (Redis
    6, e.g. Ubuntu 22.04's package) each script runs as EVALSHA of
    :func:`eval_source`, which redefines the helpers on every call.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._loaded = False
        self._eval: dict[str, Script] | None = None  # set when the server has no functions

    def load(self) -> None:
        """FUNCTION LOAD the library unless this exact version is already there."""
        try:
            self._client.function_load(library()[1])
        except redis.ResponseError as e:
            if _lacks_functions(e):
                self._eval = {}
            elif "already exists" not in str(e):
                raise
        self._loaded = True

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return partial(self.call, name)

    def command(self, name: str) -> tuple[str, str]:
        """``("FCALL", function)`` or ``("EVALSHA", sha)`` for callers that send raw
        commands (restore's conveyor), the code loaded on the server first."""
        if not self._loaded:
            self.load()
        if self._eval is None:
            return "FCALL", _function(name).decode()
        script = self._script(name)
        self._client.script_load(script.script)
        return "EVALSHA", script.sha

    @staticmethod
    def missing(reply: Any) -> bool:
        """Whether ``reply`` says the server lost the code (restarted, flushed): call again."""
        return isinstance(reply, redis.exceptions.NoScriptError) or (
            isinstance(reply, redis.ResponseError) and "Function not found" in str(reply))

    def _script(self, name: str) -> Script:
        assert self._eval is not None
        script = self._eval.get(name)
        if script is None:
            script = self._eval[name] = self._client.register_script(eval_source(name))
        return script

    def call(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run script ``name``, loading the library first if the server does not have it.

        In a pipeline (``client``) the library is loaded beforehand, once per
        :class:`Scripts`: a server that loses it between that load and the
        pipeline's execution fails those calls with "Function not found".
        """
        if client is not None and not self._loaded:
            self.load()
        if self._eval is not None:
            return self._script(name)(keys=keys, args=args, client=client)
        function = _function(name)
        if client is not None:
            return client.fcall(function, len(keys), *keys, *args)
        try:
            return self._client.fcall(function, len(keys), *keys, *args)
        except redis.ResponseError as e:
            if "Function not found" not in str(e) and not _lacks_functions(e):
                raise
        self.load()
        return self.call(name, keys, args)
