"""Runs of a task: each claim and how it ended, derived from the task's events.

A run starts with a ``claimed`` event and ends with ``completed``, ``failed``
or ``reclaimed`` (the lease expired). Nothing is stored for runs: the events
are the record, so runs read from Redis and from a snapshot agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from .models import TaskEvent

#: Event kind that ends a run -> the run's outcome.
ENDINGS = {"completed": "done", "failed": "failed", "reclaimed": "reclaimed"}
#: Outcome of a run still holding its claim.
RUNNING = "running"
#: Outcome of a run followed by another claim with no known ending in between.
UNKNOWN = "unknown"


class Run(BaseModel):
    """One claim of a task: who ran which attempt, when, and how it ended."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    worker: str | None
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = RUNNING
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


def runs_of(events: Iterable[TaskEvent]) -> list[Run]:
    """The runs in ``events`` (one task's history, oldest first), oldest first."""
    out: list[Run] = []
    open_run = False
    for ev in events:
        if ev.kind == "claimed":
            if open_run:
                out[-1] = out[-1].model_copy(update={"outcome": UNKNOWN})
            out.append(Run(attempt=int(ev.data.get("attempt") or len(out) + 1),
                           worker=ev.data.get("worker"), started_at=ev.at))
            open_run = True
        elif ev.kind in ENDINGS and open_run:
            error = ev.data.get("error") or (ev.data.get("reason") if ev.kind == "reclaimed" else None)
            out[-1] = out[-1].model_copy(update={"ended_at": ev.at, "outcome": ENDINGS[ev.kind],
                                                 "error": error})
            open_run = False
    return out
