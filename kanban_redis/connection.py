"""Redis clients made by the library, and translation of driver errors.

Clients get connect and socket timeouts by default and no automatic command
retries: re-sending a Lua transition whose reply was lost could apply it
twice. :class:`kanban_redis.Board` retries reads itself and never blindly
re-runs a transition.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping
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


@contextmanager
def credentials_checked(client: Any) -> Iterator[None]:
    """Bad credentials as :class:`RedisUnavailable` at once: retrying cannot help."""
    try:
        yield
    except redis.AuthenticationError as e:
        raise RedisUnavailable(f"Redis at {describe(client)} refused the credentials: {e}") from e


@contextmanager
def translate(client: Any) -> Iterator[None]:
    """Re-raise the driver's connection failures as :class:`RedisUnavailable`."""
    try:
        with credentials_checked(client):
            yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise RedisUnavailable(f"Redis unreachable at {describe(client)}: {e}") from e
