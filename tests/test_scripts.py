"""The script loader: assembly, EVALSHA with reload, pipelines, and key agreement."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from kanban_redis import Board, Status
from kanban_redis.keys import DERIVED, BoardKeys
from kanban_redis.scripts import Scripts, _preamble, source

LUA = resources.files("kanban_redis") / "lua"
SCRIPTS = sorted(p.name[:-4] for p in LUA.iterdir() if p.name.endswith(".lua"))


def test_every_script_has_a_header_naming_keys_argv_and_returns() -> None:
    assert len(SCRIPTS) >= 13
    for name in SCRIPTS:
        head = (LUA / f"{name}.lua").read_text().split("\n\n")[0]
        for word in ("KEYS[1", "ARGV[1]", "Returns"):
            assert word in head, (name, word)


def test_includes_are_expanded_once_and_nothing_is_left_unresolved() -> None:
    for name in SCRIPTS:
        text = source(name)
        assert "@include" not in text.replace('-- @include "', "")  # only the header mentions remain
        includes_lib = "@include \"lib\"" in (LUA / f"{name}.lua").read_text()
        assert text.count("local function load(") == includes_lib, name


def test_lua_derived_keys_agree_with_keys_module(r: Any) -> None:
    keys = BoardKeys("agree")
    calls = ", ".join(f"key_{kind}('x7')" for kind in DERIVED)
    got = r.eval(_preamble() + f"return {{{calls}}}", 8, *keys.script_keys(), keys.prefix)
    expected = [getattr(keys, kind)("x7") for kind in DERIVED]
    assert [g.decode() if isinstance(g, bytes) else g for g in got] == expected


def test_first_call_and_reload_after_script_flush(r: Any) -> None:
    board = Board(r, "s")
    board.create("a")
    r.script_flush()
    assert board.create("b").id == "2"
    assert all(r.script_exists(Scripts(r)[name].sha)[0] for name in ("create",))


def test_scripts_inside_a_pipeline_are_loaded_first(r: Any) -> None:
    board = Board(r, "p")
    board.create("t")
    r.script_flush()
    script = Scripts(r)["claim"]
    pipe = r.pipeline()
    script(keys=board.keys.script_keys(), args=[board.keys.prefix, "", "", "tok", "w", 1000, 10], client=pipe)
    pipe.get(board.keys.seq)
    reply, seq = pipe.execute()
    assert reply[0] == 0 and int(seq) == 2
    assert board.get("1").status == Status.RUNNING


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
