"""The rq job that runs one claimed task: :func:`run`, executed in rq's work horse.

The board decided who runs the task (the claim); this module only runs it
under that claim. While the handler runs, the worker process extends the
claim as part of rq's own job heartbeat (:class:`workers.worker.KanbanWorker`),
so a handler never has to. The run ends in exactly one board transition made
with the claim token, so a run whose claim expired and went to another
worker cannot write anything late:

====================================  =============================================
handler ...                           task
====================================  =============================================
returns a JSON value                  done, with the value as its result
raises ``Retry(delay)``               failed attempt, ready again after delay
raises ``Retry(count=False)``         claim given back, attempt not counted
raises ``Block(reason)``              blocked with the reason
raises anything else / times out      failed attempt (backoff; blocked when attempts run out)
worker stops past its grace period    claim given back, ready at once
====================================  =============================================
"""

from __future__ import annotations

import logging
import math
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from types import FrameType
from typing import Any

from rq.timeouts import JobTimeoutException

from kanban_redis import (Block, Board, BoardRestoring, Claim, InvalidInput, RedisUnavailable, Retry, StaleClaim,
                          Status, Task)
from kanban_redis.inputs import REASON_MAX_CHARS
from kanban_redis.logs import event_logger

from .handlers import Registry

log = logging.getLogger(__name__)

#: Dotted path of :func:`run`, the only function a kanban worker's rq job may name.
RUN = "workers.job.run"
#: Frames of traceback kept in a failed task's error text.
TRACEBACK_FRAMES = 5
#: Signal the worker sends its work horse when the grace period after SIGTERM is over.
GIVE_BACK_SIGNAL = signal.SIGUSR1


def task_timeout(task: Task, default: int) -> int:
    """Seconds a run of ``task`` may take: ``metadata["timeout"]`` if a positive number, else ``default``."""
    value = task.metadata.get("timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return max(1, math.ceil(value))
    return default


class GiveBack(BaseException):
    """The worker is stopping and its grace period is over: hand the task back.

    A BaseException, so that a handler's ``except Exception`` does not swallow it.
    """


class Context:
    """What a handler gets besides the task: its claim, the time left, and ways to report."""

    def __init__(self, board: Board, claim: Claim, deadline: float) -> None:
        self._board = board
        self.task = claim.task
        self.token = claim.token
        self.attempt = claim.task.attempts
        self._deadline = deadline

    @property
    def remaining(self) -> float:
        """Seconds left before the task's timeout kills the run."""
        return max(0.0, self._deadline - time.monotonic())

    def heartbeat(self) -> datetime:
        """Extend the claim now (the worker already does so every ttl/3); returns the new expiry.

        Raises:
            StaleClaim: the claim is gone; nothing this run writes will be accepted.
        """
        return self._board.heartbeat(self.task.id, self.token)

    def progress(self, value: Any) -> Task:
        """Record progress (any JSON value) on the task: readers and the change log see it.

        Raises:
            StaleClaim: the claim is gone. InvalidInput: the value is not JSON or too large.
        """
        return self._board.progress(self.task.id, self.token, value)


def _give_back(signum: int, frame: FrameType | None) -> None:
    raise GiveBack()


def _describe(e: BaseException) -> str:
    """The error text of a failed run: the exception, then a short traceback."""
    tb = "".join(traceback.format_exception(e, limit=-TRACEBACK_FRAMES))
    return f"{type(e).__name__}: {e}\n{tb}"


def _reason(text: str) -> str:
    text = text.strip() or "retry requested"
    return text if len(text) <= REASON_MAX_CHARS else "…" + text[-(REASON_MAX_CHARS - 1):]


Finish = Callable[[], Task]


@dataclass
class Runner:
    """Runs claimed tasks of one board; one per worker process, shared with its work horses.

    Args:
        board: the board (its ``retry_backoff`` is the base of the retry delay).
        registry: the handlers this worker may run.
        ttl: the claim's lease in seconds (the worker renews it every ``ttl / 3``).
        timeout: seconds a run may take unless the task says otherwise.
        retry_delay: seconds before a task whose command asked to be tried later is ready again.
    """

    board: Board
    registry: Registry
    ttl: float
    timeout: int
    retry_delay: float
    #: The claim this worker is running: a work horse is a fork of the worker,
    #: so its job finds the claimed task here.
    current: Claim | None = None

    def run(self, claim: Claim) -> dict[str, Any]:
        """Run the handler under ``claim`` and record how the run ended; returns a summary."""
        timeout = task_timeout(claim.task, self.timeout)
        ctx = Context(self.board, claim, time.monotonic() + timeout)
        events = event_logger("worker", board=self.board.name, task=claim.id, attempt=claim.task.attempts,
                              worker=claim.task.claim_worker)
        events.info("run.start", lane=claim.task.assignee or "", title=claim.task.title)
        started = time.monotonic()
        previous = signal.signal(GIVE_BACK_SIGNAL, _give_back)
        try:
            outcome, finish = self._call(claim, ctx, timeout)
        finally:
            signal.signal(GIVE_BACK_SIGNAL, previous)
        settled = self._settle(claim, outcome, finish)
        events.info("run.end", outcome=settled, seconds=round(time.monotonic() - started, 3))
        return {"task": claim.id, "attempt": claim.task.attempts, "outcome": settled}

    def _call(self, claim: Claim, ctx: Context, timeout: int) -> tuple[str, Finish]:
        b, tid, token = self.board, claim.id, claim.token
        try:
            result = self.registry.for_task(claim.task)(claim.task, ctx)
        except GiveBack:
            return "released", partial(b.release, tid, token, reason="worker stopped before the run finished")
        except Retry as r:
            if not r.count:
                delay = self.retry_delay if r.delay is None else r.delay
                return "released", partial(b.release, tid, token, reason=_reason(r.reason), delay=delay)
            return "retry", partial(b.fail, tid, token, error=r.reason, delay=r.delay)
        except Block as blk:
            return "blocked", partial(b.fail, tid, token, error=blk.reason, retry=False, kind=blk.kind)
        except JobTimeoutException:
            return "failed", partial(b.fail, tid, token, error=f"timed out after {timeout} s")
        except Exception as e:
            return "failed", partial(b.fail, tid, token, error=_describe(e))
        return "done", partial(b.complete, tid, token, result=result)

    def _settle(self, claim: Claim, outcome: str, finish: Finish) -> str:
        """Make the final transition; after a lost reply, re-read before trying again.

        Returns the outcome, ``failed`` for a result that is not JSON, or
        ``lost`` when the claim is gone (the run's outcome is discarded).
        """
        deadline = time.monotonic() + self.ttl
        pause = 0.2
        while True:
            try:
                finish()
                return outcome
            except StaleClaim as e:
                log.warning("task %s: %s; outcome %r discarded", claim.id, e, outcome)
                return "lost"
            except InvalidInput as e:  # only complete() validates handler output
                outcome = "failed"
                finish = partial(self.board.fail, claim.id, claim.token, error=f"result: {e}", retry=False)
            except (RedisUnavailable, BoardRestoring) as e:
                if time.monotonic() > deadline:
                    log.error("task %s: giving up recording %r: %s", claim.id, outcome, e)
                    return "lost"
                log.warning("task %s: recording %r failed (%s); checking", claim.id, outcome, e)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                try:
                    task = self.board.get(claim.id)
                except (RedisUnavailable, BoardRestoring):
                    continue
                if task.claim_token != claim.token:
                    return "lost"
                if task.status != Status.RUNNING:  # the transition did run; its reply was lost
                    return outcome


_runner: Runner | None = None


def install(runner: Runner) -> None:
    """Make ``runner`` the one :func:`run` uses in this process and its work horses."""
    global _runner
    _runner = runner


def run(board: str, task_id: str, token: str, attempt: int) -> dict[str, Any]:
    """The rq job function: run task ``task_id`` of ``board`` under the claim ``token``.

    Runs only in the work horse of the worker that made the claim; returns a
    summary ``{"task", "attempt", "outcome"}`` (the task's own result is on the
    board). A job that is not this worker's current claim runs nothing (``stale``).
    """
    runner = _runner
    if runner is None:
        raise RuntimeError(f"{RUN} runs only in a kanban-worker")
    claim = runner.current
    if board != runner.board.name or claim is None or (claim.id, claim.token) != (task_id, token):
        return {"task": task_id, "attempt": attempt, "outcome": "stale"}
    return runner.run(claim)
