"""Redis clients made by the library, and translation of driver errors.

Clients get connect and socket timeouts by default and no automatic command
retries: re-sending a Lua transition whose reply was lost could apply it
twice. :class:`kanban_redis.Board` retries reads itself and never blindly
re-runs a transition.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings
from .errors import InvalidInput, RedisUnavailable


def reply_text(value: Any) -> str:
    """A reply element as text, whether or not the client decodes responses."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def reply_fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash or stream-entry reply as a dict of text."""
    return {reply_text(k): reply_text(v) for k, v in raw.items()}


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def describe(client: Any) -> str:
    """A masked URL for a client the library did not make (for error messages)."""
    url = getattr(client, "kanban_url", None)
    if url:
        return mask_url(url)
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in kw:
        return f"unix://{kw['path']}"
    user = f"{kw['username']}:***@" if kw.get("username") else (":***@" if kw.get("password") else "")
    return f"redis://{user}{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def connect(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A client for ``settings.redis_url`` (redis://, rediss://, unix://; users and passwords).

    ``decode_responses=False`` gives the bytes client that rq needs.
    """
    try:
        client = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=decode_responses,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            health_check_interval=settings.health_check_interval,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as e:
        raise InvalidInput(f"redis_url: {mask_url(settings.redis_url)}: {e}") from None
    client.kanban_url = settings.redis_url  # type: ignore[attr-defined]
    return client


class _Translated:
    """The context manager of :func:`credentials_checked` and :func:`translate`.

    A plain class rather than ``@contextmanager``: it wraps every script call,
    and entering a generator-based one costs several times more.
    """

    __slots__ = ("client", "unreachable")

    def __init__(self, client: Any, unreachable: bool) -> None:
        self.client = client
        self.unreachable = unreachable

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if e is None:
            return
        if isinstance(e, redis.AuthenticationError):
            raise RedisUnavailable(f"Redis at {describe(self.client)} refused the credentials: {e}") from e
        if self.unreachable and isinstance(e, (redis.ConnectionError, redis.TimeoutError)):
            raise RedisUnavailable(f"Redis unreachable at {describe(self.client)}: {e}") from e


def credentials_checked(client: Any) -> AbstractContextManager[None]:
    """Bad credentials as :class:`RedisUnavailable` at once: retrying cannot help."""
    return _Translated(client, unreachable=False)


def translate(client: Any) -> AbstractContextManager[None]:
    """Re-raise the driver's connection failures as :class:`RedisUnavailable`."""
    return _Translated(client, unreachable=True)
