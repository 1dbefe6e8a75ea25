"""Settings: one object with named, commented defaults and an env var for each."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .errors import InvalidInput
from .keys import validate_board

#: Used when neither an argument nor REDIS_URL names a server.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Settings field -> environment variable that sets it.
ENV_VARS = {
    "redis_url": "REDIS_URL",
    "board": "KANBAN_BOARD",
    "socket_timeout": "KANBAN_SOCKET_TIMEOUT",
    "connect_timeout": "KANBAN_CONNECT_TIMEOUT",
    "retry_backoff": "KANBAN_RETRY_BACKOFF",
    "retry_backoff_cap": "KANBAN_RETRY_BACKOFF_CAP",
}


class Settings(BaseModel):
    redis_url: str = DEFAULT_REDIS_URL
    board: str = "default"
    #: Seconds a command may wait for its reply; a frozen Redis must not hang a
    #: gateway. Blocking claims wait in slices shorter than this.
    socket_timeout: float = Field(10.0, gt=0)
    #: Seconds to establish a connection.
    connect_timeout: float = Field(5.0, gt=0)
    #: Seconds idle before a pooled connection is checked with PING before use.
    health_check_interval: int = Field(30, ge=0)
    #: First retry delay in seconds after a failed run; doubles per attempt.
    retry_backoff: float = Field(10.0, ge=0)
    #: Longest retry delay in seconds.
    retry_backoff_cap: float = Field(3600.0, ge=0)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then environment variables, then explicit non-None overrides."""
        values: dict[str, Any] = {f: os.environ[v] for f, v in ENV_VARS.items() if os.environ.get(v)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls(**values)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise InvalidInput(f"{ENV_VARS.get(field, field)}: {err['msg']}") from None
        validate_board(settings.board)
        return settings

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Settings:
        return cls.from_env(redis_url=url, **overrides)
