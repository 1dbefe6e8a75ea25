"""``kanban-snapshot import-hermes``: move a hermes-agent ``kanban.db`` into a Redis board.

The file is read (read-only) into the form restore loads, then loaded by the
same scripts as a restore, so the import is atomic in the same way. Hermes
ids (``t_ab12cd34``) become our numeric ids in creation order and are kept in
each task's ``metadata.hermes_id``; times go from seconds to milliseconds;
``running`` tasks come back ``ready`` (their workers belong to the old
system). Hermes ``scheduled`` tasks carry no time, so they land in
``triage``; statuses we do not know land there too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator
from pathlib import Path
from typing import Any

from kanban_redis.errors import KanbanError
from kanban_redis.models import Status

from . import schema
from .restore import LOAD_BATCH, Batch, RestoreResult, Source, load_board

#: hermes column -> our hash field, where the meaning matches.
COLUMNS = {"title": "title", "body": "body", "assignee": "assignee", "priority": "priority",
           "created_by": "created_by", "idempotency_key": "idempotency_key", "result": "result",
           "block_kind": "block_kind", "last_failure_error": "error", "claim_lock": "claim_worker"}
#: hermes columns in epoch seconds -> our hash field (epoch ms).
TIMES = {"created_at": "created_at", "started_at": "started_at", "completed_at": "completed_at",
         "claim_expires": "claim_expires_at", "last_heartbeat_at": "heartbeat_at"}
_KEEP = {Status.TRIAGE, Status.TODO, Status.READY, Status.RUNNING, Status.BLOCKED, Status.REVIEW, Status.DONE,
         Status.ARCHIVED}


class NotHermes(KanbanError):
    """The file is not a hermes-agent kanban database."""


def _ms(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return str(round(float(value) * 1000))


def _json_text(text: str) -> str:
    """Hermes results are free text; ours are JSON."""
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


def _rows(conn: sqlite3.Connection, table: str, order: str) -> list[sqlite3.Row]:
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
    except sqlite3.OperationalError:
        return []


def read_hermes(path: Path, board: str) -> Source:
    """The tasks of a hermes kanban.db as restore_load items (all in memory: hermes boards are small).

    Raises:
        NotHermes: no readable ``tasks`` table with id, title and status.
    """
    try:
        conn = schema.connect(str(path), readonly=True)
        tasks = conn.execute("SELECT * FROM tasks ORDER BY created_at, rowid").fetchall()
    except sqlite3.Error as e:
        raise NotHermes(f"{path}: not a hermes kanban.db ({e})") from None
    try:
        if tasks and not {"id", "title", "status"} <= set(tasks[0].keys()):
            raise NotHermes(f"{path}: its tasks table has no id/title/status columns")
        ids = {row["id"]: str(i) for i, row in enumerate(tasks, start=1)}
        parents: dict[str, list[str]] = {}
        for link in _rows(conn, "task_links", "rowid"):
            if link["parent_id"] in ids and link["child_id"] in ids:
                parents.setdefault(ids[link["child_id"]], []).append(ids[link["parent_id"]])
        events = _rows(conn, "task_events", "id")
        comments = _rows(conn, "task_comments", "id")
    finally:
        conn.close()
    items: dict[str, dict[str, Any]] = {}
    for row in tasks:
        items[ids[row["id"]]] = _task(row, ids[row["id"]], board, parents)
    seq = len(tasks)
    for ev in events:
        item = items.get(ids.get(ev["task_id"], ""))
        if item is not None:
            payload = json.loads(ev["payload"]) if ev["payload"] else {}
            item["events"].append(json.dumps({"task_id": item["fields"]["id"], "seq": int(item["fields"]["rev"]),
                                              "at": int(_ms(ev["created_at"]) or 0), "kind": ev["kind"],
                                              "data": payload if isinstance(payload, dict) else {"value": payload}}))
    for c in comments:
        item = items.get(ids.get(c["task_id"], ""))
        if item is not None:
            seq += 1
            item["comments"].append(json.dumps({"task_id": item["fields"]["id"], "seq": seq, "author": c["author"],
                                                "body": c["body"], "created_at": int(_ms(c["created_at"]) or 0)}))
    ordered = list(items.values())
    created = min((int(i["fields"]["created_at"]) for i in ordered), default=0)

    def batches() -> Generator[Batch, None, None]:
        for start in range(0, len(ordered), LOAD_BATCH):
            yield [json.dumps(item) for item in ordered[start:start + LOAD_BATCH]]

    return Source(path, seq, len(ordered), str(created) if ordered else "", f"hermes:{path}", batches)


def _task(row: sqlite3.Row, tid: str, board: str, parents: dict[str, list[str]]) -> dict[str, Any]:
    have = set(row.keys())
    fields: dict[str, str] = {"id": tid, "board": board, "rev": tid, "attempts": "0", "max_attempts": "3"}
    for column, field in COLUMNS.items():
        if column in have and row[column] not in (None, ""):
            fields[field] = str(row[column])
    for column, field in TIMES.items():
        value = _ms(row[column]) if column in have else None
        if value is not None:
            fields[field] = value
    if "result" in fields:
        fields["result"] = _json_text(fields["result"])
    fields.setdefault("created_at", "0")
    fields["updated_at"] = fields.get("completed_at") or fields.get("started_at") or fields["created_at"]
    try:
        status = Status(row["status"])
    except ValueError:
        status = Status.TRIAGE
    fields["status"] = (status if status in _KEEP else Status.TRIAGE).value
    if fields["status"] != Status.RUNNING:
        fields.pop("claim_worker", None)
        fields.pop("claim_expires_at", None)
    if tid in parents:
        fields["parents"] = json.dumps(parents[tid])
    fields["metadata"] = json.dumps({"hermes_id": row["id"]})
    return {"fields": fields, "events": [], "comments": []}


def import_hermes(client: Any, board: str, path: Path, **options: Any) -> RestoreResult:
    """Load a hermes kanban.db into ``board``; options and errors as :func:`snapshot.restore.load_board`."""
    return load_board(client, board, read_hermes(path, board), **options)
