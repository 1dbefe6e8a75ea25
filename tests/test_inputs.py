"""Bad input raises InvalidInput naming the field, and writes nothing."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from kanban_redis import Board, InvalidInput, Retry


@pytest.mark.parametrize("slug", ["", "Upper", "-lead", "has space", "a" * 65, "x{y}", "ü"])
def test_bad_board_slug_is_refused_at_construction(r: Any, slug: str) -> None:
    with pytest.raises(InvalidInput, match="board"):
        Board(r, slug)


def test_bad_board_slug_in_from_url() -> None:
    with pytest.raises(InvalidInput, match="board"):
        Board.from_url("redis://127.0.0.1:1/0", board="Nope!")


@pytest.mark.parametrize("slug", ["a", "default", "team_1-x", "0" * 64])
def test_good_board_slugs(r: Any, slug: str) -> None:
    assert Board(r, slug).name == slug


BAD_CREATES: list[tuple[str, dict[str, Any]]] = [
    ("title", {"title": ""}),
    ("title", {"title": "x" * 501}),
    ("body", {"title": "t", "body": "é" * (128 * 1024 + 1)}),
    ("metadata", {"title": "t", "metadata": {"f": object()}}),
    ("metadata", {"title": "t", "metadata": {"big": "x" * 70_000}}),
    ("metadata", {"title": "t", "metadata": {"nan": float("nan")}}),
    ("priority", {"title": "t", "priority": 1001}),
    ("max_attempts", {"title": "t", "max_attempts": 0}),
    ("assignee", {"title": "t", "assignee": "has space"}),
    ("status", {"title": "t", "status": "doing"}),
    ("parents", {"title": "t", "parents": ["not-an-id"]}),
    ("not_before", {"title": "t", "not_before": float("nan")}),
    ("not_before", {"title": "t", "not_before": float("inf")}),
    ("not_before", {"title": "t", "not_before": 1e300}),
]


@pytest.mark.parametrize(("field", "kwargs"), BAD_CREATES, ids=[f for f, _ in BAD_CREATES])
def test_bad_create_names_the_field_and_writes_nothing(board: Board, field: str, kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    title = kwargs.pop("title")
    with pytest.raises(InvalidInput, match=field):
        board.create(title, **kwargs)
    assert board.seq == 0 and board.redis.keys("*") == []


def test_limits_are_inclusive(board: Board) -> None:
    t = board.create("x" * 500, body="b" * 256 * 1024, metadata={"m": "x" * 60_000}, priority=-1000)
    assert len(t.title) == 500 and len(t.body) == 256 * 1024


CALLS: list[tuple[str, Callable[[Board, str], Any]]] = [
    ("result", lambda b, tid: b.complete(tid, "tok", result={"x": object()})),
    ("delay", lambda b, tid: b.fail(tid, "tok", error="e", delay=-1)),
    ("delay", lambda b, tid: b.fail(tid, "tok", error="e", delay=float("nan"))),
    ("delay", lambda b, tid: b.fail(tid, "tok", error="e", delay=float("inf"))),
    ("delay", lambda b, tid: b.release(tid, "tok", reason="r", delay=float("nan"))),
    ("delay", lambda b, tid: b.release(tid, "tok", reason="r", delay=-0.5)),
    ("ttl", lambda b, tid: b.claim(worker="w", ttl=0)),
    ("worker", lambda b, tid: b.claim(worker="")),
    ("block", lambda b, tid: b.claim(worker="w", block=-1)),
    ("reason", lambda b, tid: b.block(tid, reason="")),
    ("reason", lambda b, tid: b.move(tid, "blocked", reason="r" * 2001)),
    ("author", lambda b, tid: b.comment(tid, author="", body="b")),
    ("body", lambda b, tid: b.comment(tid, author="a", body="")),
    ("task_id", lambda b, tid: b.get("")),
    ("ttl", lambda b, tid: b.heartbeat(tid, "tok", ttl=-5)),
]


@pytest.mark.parametrize(("field", "call"), CALLS, ids=[f for f, _ in CALLS])
def test_bad_arguments_to_transitions(board: Board, field: str, call: Callable[[Board, str], Any]) -> None:
    tid = board.create("t").id
    seq = board.seq
    with pytest.raises(InvalidInput, match=field):
        call(board, tid)
    assert board.seq == seq


@pytest.mark.parametrize("delay", [-1, float("nan"), float("inf")])
def test_retry_refuses_a_delay_that_is_not_a_finite_nonnegative_number(delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        Retry(delay)
