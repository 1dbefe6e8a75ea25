"""Validation of what callers pass in, before anything reaches Redis.

Every limit is named here; a violation raises :class:`InvalidInput` naming
the field, and nothing is written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import InvalidInput
from .models import CREATE_STATUSES, Status, to_ms

TITLE_MAX_CHARS = 500
BODY_MAX_BYTES = 256 * 1024
METADATA_MAX_BYTES = 64 * 1024
RESULT_MAX_BYTES = 256 * 1024
PROGRESS_MAX_BYTES = 64 * 1024
ERROR_MAX_BYTES = 64 * 1024  # longer error texts keep their tail (tracebacks end there)
REASON_MAX_CHARS = 2000
COMMENT_MAX_BYTES = 64 * 1024
PRIORITY_RANGE = (-1000, 1000)
MAX_ATTEMPTS_RANGE = (1, 1000)
TTL_MAX_SECONDS = 7 * 24 * 3600
#: Longest retry or release delay (about 31 years): times stay exact as Lua numbers.
DELAY_MAX_SECONDS = 10**9
#: not_before as epoch seconds: from 1970 to the end of year 9999 (what a datetime can hold).
EPOCH_MAX_SECONDS = 253_402_300_799

#: A lane (assignee) ends up in key names: keep it short and plain.
LANE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"

Lane = Annotated[str, StringConstraints(pattern=LANE_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TaskId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")]
EpochSeconds = Annotated[float, Field(ge=0, le=EPOCH_MAX_SECONDS, allow_inf_nan=False)]


def _max_bytes(limit: int) -> Any:
    def check(value: str) -> str:
        if len(value.encode("utf-8")) > limit:
            raise ValueError(f"longer than {limit} bytes")
        return value

    return AfterValidator(check)


#: ``json.dumps(value, separators=(",", ":"), allow_nan=False)`` without
#: building an encoder on every call.
_compact_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def json_text(value: Any, limit: int) -> str:
    """``value`` as compact JSON, or ValueError when it is not JSON or too large."""
    try:
        text = _compact_json(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not JSON-serialisable ({e})") from None
    if len(text.encode("utf-8")) > limit:
        raise ValueError(f"JSON longer than {limit} bytes")
    return text


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    json_text(value, METADATA_MAX_BYTES)
    return value


class TaskSpec(BaseModel):
    """The arguments of one ``Board.create`` (also the items of ``create_many``)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX_CHARS)]
    body: Annotated[str, _max_bytes(BODY_MAX_BYTES)] = ""
    assignee: Lane | None = None
    priority: int = Field(0, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])
    parents: tuple[TaskId, ...] = ()
    idempotency_key: Name | None = None
    max_attempts: int = Field(3, ge=MAX_ATTEMPTS_RANGE[0], le=MAX_ATTEMPTS_RANGE[1])
    not_before: datetime | EpochSeconds | None = None
    status: Status | None = None
    metadata: Annotated[dict[str, Any], AfterValidator(_metadata)] | None = None
    created_by: Name | None = None

    def to_script(self) -> dict[str, Any]:
        """The JSON object create.lua expects (absent keys mean unset)."""
        if self.status is not None and self.status not in CREATE_STATUSES:
            raise InvalidInput(f"status: a task cannot be created as {self.status.value}")
        spec: dict[str, Any] = {"title": self.title, "priority": self.priority,
                                "max_attempts": self.max_attempts, "parents": list(dict.fromkeys(self.parents))}
        if self.body:
            spec["body"] = self.body
        if self.assignee is not None:
            spec["assignee"] = self.assignee
        if self.idempotency_key is not None:
            spec["idempotency_key"] = self.idempotency_key
        if self.created_by is not None:
            spec["created_by"] = self.created_by
        if self.not_before is not None:
            spec["not_before"] = to_ms(self.not_before)
        if self.status is not None:
            spec["status"] = self.status.value
        if self.metadata:
            spec["metadata"] = json_text(self.metadata, METADATA_MAX_BYTES)
        return spec


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **values: Any) -> M:
    """Build ``model`` or raise InvalidInput naming the first bad field."""
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise invalid(e) from None


def invalid(e: ValidationError) -> InvalidInput:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "input"
    return InvalidInput(f"{field}: {err['msg']}")


class ClaimArgs(BaseModel):
    assignee: Lane | None = None
    worker: Name
    ttl: float = Field(gt=0, le=TTL_MAX_SECONDS)
    block: float | None = Field(None, ge=0)


class Reason(BaseModel):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=REASON_MAX_CHARS)]
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "manual"


class CommentArgs(BaseModel):
    author: Name
    body: Annotated[str, StringConstraints(min_length=1), _max_bytes(COMMENT_MAX_BYTES)]


def delay_ms(value: float, field: str = "delay") -> int:
    """A delay in seconds as whole milliseconds; InvalidInput unless 0 <= value <= DELAY_MAX_SECONDS."""
    if not 0 <= value <= DELAY_MAX_SECONDS:  # also refuses NaN
        raise InvalidInput(f"{field}: must be between 0 and {DELAY_MAX_SECONDS} seconds")
    return int(value * 1000)


def tail_bytes(text: str, limit: int = ERROR_MAX_BYTES) -> str:
    """The end of ``text`` that fits in ``limit`` UTF-8 bytes (marked when cut)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return "…" + raw[-(limit - 3):].decode("utf-8", errors="ignore")
