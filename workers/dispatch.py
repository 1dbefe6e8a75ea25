"""How a claimed task becomes an rq job, and the only kind of rq job a kanban worker runs.

The board's claim script decides which task runs and who runs it; rq never
does. A worker claims when it is idle and the claim becomes one rq job,
saved with rq's atomic unique save, whose id is derived from the task id, the
attempt and the claim token (:meth:`BoardKeys.rq_job_id`): dispatching the
same claim twice (say, after a lost reply) yields one job, so rq never starts
two runs of one attempt. The job is not pushed onto the rq queue's list: the
worker that claimed runs it at once (the board's ready queue is the queue),
so no other rq worker can pick it up and its lease starts when its run does.

Jobs are JSON (rq's :class:`JSONSerializer`), never pickle, and
:class:`TaskJob` will only ever call :func:`workers.job.run`: a job written
into Redis by anyone else (a pickle payload, another function name,
callbacks, webhooks) runs no code of its choosing.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq.exceptions import DeserializationError, DuplicateJobError
from rq.job import Job
from rq.queue import Queue
from rq.scripts import save_unique_job
from rq.serializers import JSONSerializer
from rq.utils import now

from kanban_redis import Board, Claim

from . import job as job_module

#: Seconds rq keeps a finished job's summary, and a failed job.
RESULT_TTL = 600
FAILURE_TTL = 24 * 3600


class TaskJob(Job):
    """An rq job that can only run :func:`workers.job.run` with JSON arguments."""

    @property
    def func(self) -> Any:
        if self.func_name != job_module.RUN or self.instance is not None:
            raise DeserializationError(f"job {self.id}: refusing {self.func_name!r}; only {job_module.RUN} runs here")
        return job_module.run

    # Callbacks and webhooks are named by the stored job; a task job has none.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None

    def send_webhooks(self, *args: Any, **kwargs: Any) -> None:
        return None


def lane_queue(connection: Redis, board: Board, lane: str) -> Queue:
    """The rq queue of a lane (a bytes client, as rq needs)."""
    return Queue(board.keys.rq_queue(lane), connection=connection, job_class=TaskJob, serializer=JSONSerializer)


def dispatch(queue: Queue, board: Board, claim: Claim, timeout: int) -> Job:
    """The rq job of ``claim``, saved once (the same claim always gives the same job).

    Args:
        timeout: seconds the run may take; rq's death penalty enforces it.
    """
    task = claim.task
    job_id = board.keys.rq_job_id(task.id, task.attempts, claim.token)
    job = queue.create_job(
        job_module.RUN,
        kwargs={"board": board.name, "task_id": task.id, "token": claim.token, "attempt": task.attempts},
        job_id=job_id, timeout=timeout, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
        description=f"{board.name} task {task.id} attempt {task.attempts}: {task.title[:80]}",
    )
    job.enqueued_at = now()
    try:
        save_unique_job(queue.connection, queue.key, job, enqueue=False)
    except DuplicateJobError:
        return TaskJob.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    return job
