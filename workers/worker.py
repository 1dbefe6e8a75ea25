"""The rq worker of one lane: rq's own fork-per-job :class:`rq.Worker`, fed by board claims.

Where a plain rq worker pops its queue's list, this one claims the next
ready task of its lane from the board (blocking on the lane's signal key, no
polling) and runs the claim as an rq job (:mod:`workers.dispatch`). A worker
claims only when it is idle, so a claim's lease starts when its run starts
and the board's priority order is the order in which tasks run. Everything
else is rq's: the fork of a work horse per job, the job timeout (death
penalty), job and worker registries (``rq info``), warm shutdown on
SIGTERM, burst mode.

Leases: while a work horse runs, rq's worker wakes every
``job_monitoring_interval`` seconds to heartbeat the job; this worker sets
that interval to a third of the claim's ttl and renews the claim there too.
A worker killed with its horse stops renewing, so the claim expires and the
task is reclaimed; a claim found taken by another run kills the horse (its
results would be refused anyway, and its side effects would repeat).

Stopping: on SIGTERM the worker finishes its current task and exits. Past
``grace`` seconds it tells the work horse to give the claim back (the task
is ready again at once, the run not counted). A claim made after the stop
request is given back unrun.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
from redis import Redis
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.worker import Worker, WorkerStatus

from kanban_redis import BoardRestoring, Claim, InvalidInput, RedisUnavailable, StaleClaim

from .dispatch import TaskJob, dispatch, lane_queue
from .job import GIVE_BACK_SIGNAL, Runner, install, task_timeout

#: Longest a blocking claim waits before the worker heartbeats and checks for a stop request.
CLAIM_SLICE = 1.0
#: Pause after the board was unreachable or being restored, in seconds.
UNAVAILABLE_PAUSE = 1.0
#: Shortest claim ttl, in seconds: rq's monitoring alarm has whole seconds.
MIN_TTL = 3.0


def renew_interval(ttl: float) -> int:
    """Seconds between lease renewals for a claim ttl: a third of it, in whole seconds (rq's alarm)."""
    if ttl < MIN_TTL:
        raise InvalidInput(f"ttl: must be at least {MIN_TTL} s (renewed every ttl/3, in whole seconds)")
    return int(ttl // 3)


class KanbanWorker(Worker):
    """An rq :class:`~rq.Worker` whose queue is fed by claims on the lane of a board.

    Args:
        runner: runs the claimed tasks (its board, handlers, ttl and timeouts).
        lane: the lane (assignee) whose ready tasks this worker runs.
        connection: the Redis client (bytes, as rq needs; the runner's board may share it).
        grace: seconds after SIGTERM before the current task is given back; None waits for it.
        name: the worker's name in rq and on the board's claims.
    """

    job_class = TaskJob

    def __init__(self, runner: Runner, lane: str, connection: Redis, *, grace: float | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        queue = lane_queue(connection, runner.board, lane)
        super().__init__([queue], name=name, connection=connection, serializer=JSONSerializer,
                         job_class=TaskJob, log_job_description=False,
                         job_monitoring_interval=renew_interval(runner.ttl), **kwargs)
        self.runner = runner
        self.lane = lane
        self.grace = grace
        self._holding = False
        install(runner)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        queue = self.queues[0]  # jobs never enter its list; registered so `rq info` lists it
        self.connection.sadd(queue.redis_queues_keys, queue.key)

    # -- dispatch -----------------------------------------------------------

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None,
                                     ) -> tuple[Job, Queue] | None:
        """The job of the next claim. ``timeout=None`` (burst): None once the lane has nothing ready."""
        self.set_state(WorkerStatus.IDLE)
        self.procline(f"Claiming on {self.runner.board.name}/{self.lane}")
        queue = self.queues[0]
        idle_since = time.monotonic()
        self._holding = True
        first = True  # rq's work loop has just sent the worker's heartbeat
        while not self._stop_requested:
            try:
                if not first:
                    self.heartbeat()
                first = False
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                claim = self.runner.board.claim(assignee=self.lane, worker=self.name, ttl=self.runner.ttl,
                                                block=None if timeout is None else CLAIM_SLICE)
                if claim is not None and not self._stop_requested:
                    self.runner.current = claim
                    return dispatch(queue, self.runner.board, claim, task_timeout(claim.task, self.runner.timeout)), queue
            except (RedisUnavailable, BoardRestoring, redis.ConnectionError, redis.TimeoutError) as e:
                self.log.warning("Worker %s: board unavailable: %s", self.name, e)
                time.sleep(UNAVAILABLE_PAUSE)
                continue
            if claim is not None:  # the stop request came during the claim
                self._give_back(claim, "worker stopping")
                break
            if timeout is None:
                break
            if max_idle_time is not None and time.monotonic() - idle_since > max_idle_time:
                break
        self._holding = False
        return None

    def _give_back(self, claim: Claim, reason: str) -> None:
        try:
            self.runner.board.release(claim.id, claim.token, reason=reason)
        except Exception as e:  # the lease expires and the task is reclaimed anyway
            self.log.warning("Worker %s: could not give back task %s: %s", self.name, claim.id, e)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            self._holding = False
            self.runner.current = None

    # -- stopping -----------------------------------------------------------

    def _shutdown(self) -> None:
        if self._holding:  # mid-claim or mid-run: finish it, then stop
            self._stop_requested = True
            self.set_shutdown_requested_date()
            return
        super()._shutdown()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.grace is not None and self.horse_pid:
            timer = threading.Timer(self.grace, self._end_grace, args=(self.horse_pid,))
            timer.daemon = True
            timer.start()

    def _end_grace(self, horse_pid: int) -> None:
        if self.horse_pid == horse_pid:
            self.log.info("Worker %s: grace period over, giving the task back", self.name)
            try:
                os.kill(horse_pid, GIVE_BACK_SIGNAL)
            except ProcessLookupError:
                pass

    def unsubscribe(self) -> None:
        """rq's, with the pubsub thread told to stop first, so that shutting down takes no 60 s.

        rq sends UNSUBSCRIBE and then stops its pubsub thread; the reply wakes
        the thread before the stop, so it goes back to a read of up to 60 s
        (rq's ``sleep_time``), and redis-py >= 8.2's ``stop()`` waits that
        read out. With the thread's flag cleared first, the reply ends it.
        """
        thread = self.pubsub_thread
        if thread is not None:
            thread._running.clear()  # what stop() does before it waits; a threading.Event in redis-py >= 3.3
        super().unsubscribe()

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        super().maintain_heartbeats(job, execution)
        claim = self.runner.current
        if claim is None:
            return
        try:
            self.runner.board.heartbeat(claim.id, claim.token)
        except StaleClaim as e:
            self.log.warning("Worker %s: %s; stopping its run", self.name, e)
            self.kill_horse()
        except (RedisUnavailable, BoardRestoring) as e:
            self.log.warning("Worker %s: could not renew the claim on task %s: %s", self.name, claim.id, e)

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        """The horse died without recording its run (killed, crashed): fail the attempt now
        rather than wait for the lease to expire."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        claim = self.runner.current
        if claim is None:
            return
        timeout = task_timeout(claim.task, self.runner.timeout)
        ran = (time.time() - job.started_at.timestamp()) if job.started_at else 0.0
        what = f"timed out after {timeout} s (work horse killed)" if ran >= timeout else \
            f"work horse died (wait status {ret_val})"
        try:
            self.runner.board.fail(claim.id, claim.token, error=what)
        except Exception as e:  # stale claim, or Redis gone: the lease decides
            self.log.warning("Worker %s: could not fail task %s: %s", self.name, claim.id, e)
