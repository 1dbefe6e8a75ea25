"""kanban-redis: a Redis-backed kanban task queue.

The live board is in Redis (a hash per task, sorted-set indexes, a change-log
stream per board) and every state change is one atomic Lua script.
"""

from .board import Board
from .config import Settings
from .errors import (BoardRestoring, DependencyCycle, InvalidInput, InvalidTransition, KanbanError,
                     RedisUnavailable, StaleClaim, TaskNotFound)
from .inputs import TaskSpec
from .models import ALLOWED_MOVES, Claim, Comment, Event, Status, Task, TaskEvent
from .signals import Block, Retry

__version__ = "0.1.0"

__all__ = [
    "ALLOWED_MOVES", "Block", "Board", "BoardRestoring", "Claim", "Comment", "DependencyCycle", "Event",
    "InvalidInput", "InvalidTransition", "KanbanError", "RedisUnavailable", "Retry", "Settings", "StaleClaim",
    "Status", "Task", "TaskEvent", "TaskNotFound", "TaskSpec", "__version__",
]
