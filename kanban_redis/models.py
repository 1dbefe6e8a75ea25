"""The board's nouns: statuses, the move rules, tasks, claims and log entries.

A task lives in Redis as a flat hash of strings (times in epoch milliseconds,
JSON for lists and objects, absent fields mean "unset"). :meth:`Task.from_fields`
is the one decoder of that form; the change log carries the same form, so a
task read from the log and one read from its hash decode identically.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    TRIAGE = "triage"
    TODO = "todo"
    SCHEDULED = "scheduled"
    READY = "ready"
    RUNNING = "running"
    BLOCKED = "blocked"
    REVIEW = "review"
    DONE = "done"
    ARCHIVED = "archived"


#: What ``Board.move`` allows, from -> to. ``running`` is absent on purpose:
#: only claim, complete, fail and reclaim enter or leave it. Moving to
#: ``ready`` also needs every parent done; to ``scheduled`` a future not_before.
ALLOWED_MOVES: dict[Status, frozenset[Status]] = {
    Status.TRIAGE: frozenset({Status.TODO, Status.READY, Status.BLOCKED, Status.REVIEW, Status.DONE,
                              Status.ARCHIVED}),
    Status.TODO: frozenset({Status.TRIAGE, Status.READY, Status.BLOCKED, Status.REVIEW, Status.DONE,
                            Status.ARCHIVED}),
    Status.SCHEDULED: frozenset({Status.TRIAGE, Status.TODO, Status.READY, Status.BLOCKED, Status.ARCHIVED}),
    Status.READY: frozenset({Status.TRIAGE, Status.TODO, Status.BLOCKED, Status.REVIEW, Status.ARCHIVED}),
    Status.BLOCKED: frozenset({Status.TRIAGE, Status.TODO, Status.READY, Status.REVIEW, Status.DONE,
                               Status.ARCHIVED}),
    Status.REVIEW: frozenset({Status.TODO, Status.READY, Status.BLOCKED, Status.DONE, Status.ARCHIVED}),
    Status.DONE: frozenset({Status.ARCHIVED}),
    Status.ARCHIVED: frozenset({Status.TRIAGE, Status.TODO}),
}

#: Status by value: a dict lookup, where ``Status(value)`` runs the Enum machinery.
_STATUS = {s.value: s for s in Status}

#: Statuses ``Board.create`` accepts; ``ready`` and ``scheduled`` both mean
#: "runnable": the task lands in todo, scheduled or ready by its parents and not_before.
CREATE_STATUSES = frozenset({Status.TRIAGE, Status.TODO, Status.READY, Status.SCHEDULED})


def from_ms(value: str | None) -> datetime | None:
    if value in (None, ""):
        return None
    return at_ms(value)


@lru_cache(maxsize=4096)
def at_ms(value: str | int | float) -> datetime:
    """A required epoch-ms value as a UTC datetime.

    Cached: one task carries the same instant in several fields (claimed_at,
    started_at, heartbeat_at, updated_at), and the replies of one lifecycle
    repeat them, so most conversions are lookups.
    """
    return datetime.fromtimestamp(int(float(value)) / 1000, tz=UTC)


def to_ms(value: datetime | float | int) -> int:
    """A datetime (naive means UTC) or epoch seconds, as epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)


M = TypeVar("M", bound=BaseModel)
_object_setattr = object.__setattr__


def constructed(model: type[M], values: dict[str, Any]) -> M:
    """``model.model_construct(**values)`` for ``values`` that hold every field, each already of its type.

    Fills the four slots of a pydantic model (``BaseModel.__slots__``) as
    model_construct does, without its per-field loop, which costs more than
    validating: decoding the task a transition returns is most of the
    client's work per call, and the decoder has typed every field already.
    Only for models without private attributes, extra fields or ``model_post_init``.
    """
    obj = model.__new__(model)
    _object_setattr(obj, "__dict__", values)
    _object_setattr(obj, "__pydantic_fields_set__", set(values))
    _object_setattr(obj, "__pydantic_extra__", None)
    _object_setattr(obj, "__pydantic_private__", None)
    return obj


def _json_list(value: str | None) -> list[str]:
    # Redis's cjson encodes an empty Lua table as {}; both mean "no parents".
    return [str(v) for v in json.loads(value)] if value and value not in ("{}", "[]") else []


class Task(BaseModel):
    """A task as stored on the board (immutable snapshot of one read)."""

    model_config = ConfigDict(frozen=True)

    id: str
    board: str
    title: str
    body: str = ""
    status: Status
    priority: int = 0
    assignee: str | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    parents: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    not_before: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    claim_token: str | None = None
    claim_worker: str | None = None
    claimed_at: datetime | None = None
    claim_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: Any = None
    error: str | None = None
    block_reason: str | None = None
    block_kind: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    progress: Any = None
    rev: int = 0

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Task:
        """Decode the hash form (also the form carried by the change log).

        Every field is converted to its type here (the hash holds strings), so
        the task is :func:`constructed` rather than validated again.
        """
        f = fields
        get = f.get
        created_at = f["created_at"]
        return constructed(cls, {
            "id": f["id"],
            "board": f["board"],
            "title": f["title"],
            "body": get("body", ""),
            "status": _STATUS.get(f["status"]) or Status(f["status"]),
            "priority": int(get("priority", 0)),
            "assignee": get("assignee") or None,
            "created_by": get("created_by") or None,
            "created_at": at_ms(created_at),
            "updated_at": at_ms(get("updated_at") or created_at),
            "parents": _json_list(get("parents")),
            "idempotency_key": get("idempotency_key") or None,
            "not_before": from_ms(get("not_before")),
            "attempts": int(get("attempts", 0)),
            "max_attempts": int(get("max_attempts", 3)),
            "claim_token": get("claim_token") or None,
            "claim_worker": get("claim_worker") or None,
            "claimed_at": from_ms(get("claimed_at")),
            "claim_expires_at": from_ms(get("claim_expires_at")),
            "heartbeat_at": from_ms(get("heartbeat_at")),
            "started_at": from_ms(get("started_at")),
            "completed_at": from_ms(get("completed_at")),
            "result": json.loads(f["result"]) if get("result") else None,
            "error": get("error") or None,
            "block_reason": get("block_reason") or None,
            "block_kind": get("block_kind") or None,
            "metadata": json.loads(f["metadata"]) if get("metadata") not in (None, "", "[]") else {},
            "progress": json.loads(f["progress"]) if get("progress") else None,
            "rev": int(float(get("rev", 0))),
        })


class Claim(BaseModel):
    """A live claim: the task as claimed and the fencing token that proves it."""

    model_config = ConfigDict(frozen=True)

    task: Task
    token: str

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def expires_at(self) -> datetime | None:
        return self.task.claim_expires_at


class TaskEvent(BaseModel):
    """One line of a task's history (created, claimed, completed, ...)."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    seq: int
    at: datetime
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TaskEvent:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TaskEvent:
        data = d.get("data") or {}
        return cls(task_id=str(d["task_id"]), seq=int(d["seq"]), at=at_ms(d["at"]),
                   kind=d["kind"], data=data if isinstance(data, dict) else {})


class Comment(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    seq: int
    author: str
    body: str
    created_at: datetime

    @classmethod
    def from_json(cls, raw: str | bytes) -> Comment:
        d = json.loads(raw)
        return cls(task_id=str(d["task_id"]), seq=int(d["seq"]), author=d["author"],
                   body=d["body"], created_at=at_ms(d["created_at"]))


class Event(BaseModel):
    """One entry of the board's change log: everything one script changed.

    ``tasks`` holds the full new state of every task the script touched, so
    replaying the log from any point rebuilds the board.
    """

    model_config = ConfigDict(frozen=True)

    seq: int
    op: str
    at: datetime
    tasks: list[Task]
    history: list[TaskEvent]
    comment: Comment | None = None

    @classmethod
    def from_entry(cls, entry_id: str, fields: Mapping[str, str]) -> Event:
        tasks = json.loads(fields.get("tasks") or "[]")
        history = json.loads(fields.get("events") or "[]")
        comment = fields.get("comment")
        return cls(
            seq=int(entry_id.split("-", 1)[0]),
            op=fields["op"],
            at=at_ms(fields["at"]),
            tasks=[Task.from_fields(t) for t in (tasks if isinstance(tasks, list) else [])],
            history=[TaskEvent.from_dict(h) for h in (history if isinstance(history, list) else [])],
            comment=Comment.from_json(comment) if comment else None,
        )
