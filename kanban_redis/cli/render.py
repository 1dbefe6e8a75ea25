"""Text forms of tasks, runs and log entries (colour is stripped off a terminal by click)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..models import Comment, Event, Status, Task, TaskEvent
from ..runs import Run
from .common import style

COLOURS = {
    Status.TRIAGE: "magenta", Status.TODO: "white", Status.SCHEDULED: "cyan", Status.READY: "blue",
    Status.RUNNING: "yellow", Status.BLOCKED: "red", Status.REVIEW: "bright_magenta", Status.DONE: "green",
    Status.ARCHIVED: "bright_black",
}


def now() -> datetime:
    return datetime.now(UTC)


def span(seconds: float) -> str:
    """A short duration: 42s, 5m, 3h, 2d."""
    s = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{int(s // size)}{unit}"
    return f"{int(s)}s"


def when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if dt else "-"


def status_label(status: Status, text: str | None = None) -> str:
    return style(text or status.value, fg=COLOURS[status], bold=status in (Status.RUNNING, Status.BLOCKED))


def lane(task: Task) -> str:
    return task.assignee or "-"


def card(task: Task, at: datetime) -> str:
    """One line for a task in a column or a list."""
    parts = [style(f"#{task.id}", bold=True)]
    if task.priority:
        parts.append(f"p{task.priority}")
    parts.append(f"[{lane(task)}]")
    parts.append(task.title)
    extra = _situation(task, at)
    if extra:
        parts.append(style(f"({extra})", dim=True))
    return " ".join(parts)


def _situation(task: Task, at: datetime) -> str:
    match task.status:
        case Status.RUNNING:
            lease = task.claim_expires_at
            left = f", lease {span((lease - at).total_seconds())}" if lease else ""
            expired = " EXPIRED" if lease and lease < at else ""
            return f"{task.claim_worker or '?'}, attempt {task.attempts}/{task.max_attempts}{left}{expired}"
        case Status.BLOCKED:
            return f"{task.block_kind or 'blocked'}: {task.block_reason or ''}".strip()
        case Status.SCHEDULED if task.not_before:
            return f"due in {span((task.not_before - at).total_seconds())}"
        case Status.READY:
            return f"waiting {span((at - task.updated_at).total_seconds())}"
    return ""


def detail(task: Task, children: list[str]) -> list[str]:
    """The fields of ``show``, one per line, unset ones left out."""
    rows: list[tuple[str, Any]] = [
        ("status", status_label(task.status)), ("lane", task.assignee), ("priority", task.priority),
        ("attempts", f"{task.attempts}/{task.max_attempts}"), ("created", f"{when(task.created_at)}"
                                                                        f" by {task.created_by or '-'}"),
        ("updated", f"{when(task.updated_at)} (rev {task.rev})"), ("parents", ", ".join(task.parents)),
        ("children", ", ".join(children)), ("not before", task.not_before and when(task.not_before)),
        ("idempotency", task.idempotency_key), ("worker", task.claim_worker),
        ("lease until", task.claim_expires_at and when(task.claim_expires_at)),
        ("blocked", task.block_reason and f"{task.block_kind}: {task.block_reason}"),
        ("error", task.error and task.error.strip().splitlines()[-1]),
        ("result", task.result), ("progress", task.progress), ("metadata", task.metadata or None),
    ]
    lines = [style(f"#{task.id} {task.title}", bold=True)]
    lines += [f"  {name:<12} {value}" for name, value in rows if value not in (None, "")]
    if task.body:
        lines += ["", *("  " + ln for ln in task.body.splitlines())]
    return lines


def run_line(run: Run) -> str:
    took = f" in {span(run.seconds)}" if run.seconds is not None else ""
    why = f": {run.error.strip().splitlines()[-1]}" if run.error and run.error.strip() else ""
    return f"  attempt {run.attempt}  {run.worker or '?'}  {when(run.started_at)}  {run.outcome}{took}{why}"


def history_line(ev: TaskEvent) -> str:
    data = " ".join(f"{k}={v}" for k, v in sorted(ev.data.items()) if k != "token" and v not in (None, ""))
    return f"  {ev.seq:>6}  {when(ev.at)}  {ev.kind:<10} {data}".rstrip()


def comment_line(c: Comment) -> str:
    return f"  {when(c.created_at)}  {style(c.author, bold=True)}: {c.body}"


def event_line(ev: Event) -> str:
    """One change-log entry: seq, time, op, then each touched task's new status."""
    tasks = "; ".join(f"#{t.id} {status_label(t.status)} {t.title}" for t in ev.tasks)
    return f"{ev.seq:>8}  {when(ev.at)}  {ev.op:<9} {tasks}"


def task_json(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


def event_json(ev: Event) -> dict[str, Any]:
    return ev.model_dump(mode="json")
