"""Every Redis key name the project uses, and nothing else formats one.

All keys of a board start with ``kb:{<board>}:``; the braces are a Redis
Cluster hash tag, so a whole board lives in one slot and every Lua script
touches one slot. Scripts get the fixed keys through KEYS and the board's
prefix through ARGV[1]; the Lua functions that derive per-task keys from that
prefix are generated from :data:`DERIVED` (see :mod:`kanban_redis.scripts`),
so the two sides cannot drift apart.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

BOARD_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: Keys derived from one variable part: name -> (text before, text after).
DERIVED: dict[str, tuple[str, str]] = {
    "task": ("task:", ""),  # hash: the task's fields
    "task_events": ("task:", ":events"),  # list of JSON: the task's history
    "task_comments": ("task:", ":comments"),  # list of JSON: comments
    "task_children": ("task:", ":children"),  # set: ids that list this task as a parent
    "status": ("status:", ""),  # zset id -> numeric id: tasks in one status
    "ready": ("ready:", ""),  # zset: a lane's ready queue, (priority desc, rev asc)
    "signal": ("signal:", ""),  # zset with one marker member: wakes blocked claimers
}

#: Fixed keys of a board, each named ``<prefix><name>``. Scripts are passed
#: only the first as KEYS[1] (it routes the call to the board's slot) and build
#: the others from the prefix: every key passed costs Redis CPU on every call.
SCRIPT_KEYS = ("meta", "seq", "log", "restoring", "tasks", "leases", "scheduled", "idem")


def validate_board(name: str) -> str:
    if not isinstance(name, str) or not BOARD_SLUG.fullmatch(name):
        raise InvalidInput(f"board: {name!r} is not a valid slug ([a-z0-9][a-z0-9_-]{{0,63}})")
    return name


class BoardKeys:
    """Key names of one board."""

    def __init__(self, board: str) -> None:
        self.board = validate_board(board)
        self.prefix = f"kb:{{{board}}}:"
        self.meta = self.prefix + "meta"  # hash: incarnation, created_at
        self.seq = self.prefix + "seq"  # int: board sequence, bumped by every mutation
        self.log = self.prefix + "log"  # stream: change log, entry id "<seq>-0"
        self.restoring = self.prefix + "restoring"  # string: present while a restore runs
        self.tasks = self.prefix + "tasks"  # zset id -> numeric id: every task
        self.leases = self.prefix + "leases"  # zset id -> claim expiry (ms): running tasks
        self.scheduled = self.prefix + "scheduled"  # zset id -> not_before (ms)
        self.idem = self.prefix + "idem"  # hash idempotency key -> task id
        self.pattern = self.prefix + "*"  # SCAN pattern: every key of this board (a restore wipes them)

    def script_keys(self) -> list[str]:
        """The KEYS of every script call (see :data:`SCRIPT_KEYS`)."""
        return [self.meta]

    def _derived(self, kind: str, part: str) -> str:
        before, after = DERIVED[kind]
        return f"{self.prefix}{before}{part}{after}"

    def task(self, task_id: str) -> str:
        return self._derived("task", task_id)

    def task_events(self, task_id: str) -> str:
        return self._derived("task_events", task_id)

    def task_comments(self, task_id: str) -> str:
        return self._derived("task_comments", task_id)

    def task_children(self, task_id: str) -> str:
        return self._derived("task_children", task_id)

    def status(self, status: str) -> str:
        return self._derived("status", status)

    def ready(self, lane: str | None) -> str:
        """The ready queue of a lane; ``None`` is the lane of unassigned tasks."""
        return self._derived("ready", lane or "")

    def signal(self, lane: str | None) -> str:
        return self._derived("signal", lane or "")

    # rq names (rq adds its own prefixes: ``rq:queue:``, ``rq:job:``). rq's
    # keys carry no hash tag; they are derived state, rebuilt from the board.

    def rq_queue(self, lane: str) -> str:
        """Name of the rq queue through which a lane's claimed tasks reach rq workers."""
        return f"kanban:{self.board}:{lane}"

    def rq_job_id(self, task_id: str, attempt: int, token: str) -> str:
        """The rq job id of one claim: the same claim always maps to the same job."""
        return f"kanban-{self.board}-{task_id}-{attempt}-{token[:12]}"


#: SCAN pattern matching the meta hash of every board.
ALL_BOARDS_META = "kb:{*}:meta"


def board_from_meta_key(key: str) -> str:
    return key[len("kb:{"):-len("}:meta")]
