"""Fixtures: every Redis-touching test runs on fakeredis AND on a real server.

The real server is the one in REDIS_URL (a disposable database: tests flush
it), else a throwaway ``redis-server`` started on a free port for the session.
Without one the real-server half is skipped locally and fails in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from kanban_redis import Board
from kanban_redis.local import RedisServer, find_server

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the real server for this session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if find_server() is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI")
        pytest.skip("no redis-server on PATH and no REDIS_URL")
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=["fake", "real"])
def r(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client with an empty key space: fakeredis, then the real server."""
    if request.param == "fake":
        client = fakeredis.FakeRedis(decode_responses=True)
        yield client
        client.close()
    else:
        yield request.getfixturevalue("real_redis")


@pytest.fixture
def make_board(r: Any) -> Callable[..., Board]:
    """Factory: ``make_board(name="t", **kwargs)`` on the parametrized client."""

    def make(name: str = "t", **kwargs: Any) -> Board:
        return Board(r, name, **kwargs)

    return make


@pytest.fixture
def board(make_board: Callable[..., Board]) -> Board:
    return make_board()


class Clock:
    """A settable clock in epoch seconds, for scripts' notion of now."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()
