"""kanban-worker against a real redis-server, as real processes (rq's fork-per-job Worker).

Handlers come from tests/taskfns.py; every run a handler starts is recorded in
the list ``test:runs``. Short leases (``--ttl 3``, the least allowed) keep the tests short.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from kanban_redis import Board, InvalidInput, StaleClaim, Status

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
WORKER = [str(Path(sys.executable).with_name("kanban-worker"))]
BOARD = "w"


def runs(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(r) for r in client.lrange("test:runs", 0, -1)]


def wait_for(cond: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Workers:
    """Starts kanban-worker processes for a test and stops the ones still running."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, lane: str = "l", handler: str = "taskfns:act") -> subprocess.Popen[str]:
        env = dict(os.environ, REDIS_URL=self.url, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        cmd = [*WORKER, "--board", BOARD, "--lane", lane, "--handler", handler, "--log-level", "WARNING", *args]
        proc = subprocess.Popen(cmd, env=env, cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 30, **kw: str) -> subprocess.CompletedProcess[str]:
        proc = self.start("--burst", *args, **kw)
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                time.sleep(1.1)  # a second SIGTERM within a second is ignored by rq
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)  # cold shutdown: the work horse goes too
            try:
                p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


@pytest.fixture
def workers(redis_url: str, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(redis_url, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture
def board(redis_url: str, real_redis: redis.Redis) -> Board:
    return Board.from_url(redis_url, board=BOARD)


def test_one_worker_runs_a_lane_in_priority_order_and_records_results(board: Board, workers: Workers,
                                                                      real_redis: redis.Redis) -> None:
    prios = [0, 5, 0, 10, -1, 5]
    tasks = [board.create(f"t{i}", assignee="l", priority=p) for i, p in enumerate(prios)]
    other_lane = board.create("elsewhere", assignee="m")
    reporter = board.create("reports", assignee="l", priority=-5, metadata={"progress": {"pct": 50}})
    workers.run()
    expected = [t.id for t in sorted(tasks, key=lambda t: (-t.priority, int(t.id)))] + [reporter.id]
    assert [r["task"] for r in runs(real_redis)] == expected
    for t in tasks:
        done = board.get(t.id)
        assert done.status == Status.DONE and done.result == {"ran": t.id} and done.attempts == 1
    assert board.get(reporter.id).progress == {"pct": 50}
    assert any(e.op == "progress" for e in board.events(count=1000))
    assert board.get(other_lane.id).status == Status.READY


def test_concurrent_workers_run_each_attempt_once(board: Board, workers: Workers, real_redis: redis.Redis) -> None:
    tasks = board.create_many([{"title": f"t{i}", "assignee": "l", "metadata": {"sleep": 0.02}} for i in range(40)])
    procs = [workers.start("--burst", "--concurrency", "2", "--name", "pool"), workers.start("--burst")]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    started = [(r["task"], r["attempt"]) for r in runs(real_redis)]
    assert sorted(started) == sorted((t.id, 1) for t in tasks)
    finished = [board.get(t.id) for t in tasks]
    assert all(t.status == Status.DONE for t in finished)
    assert len({t.claim_worker for t in finished}) >= 2


def test_stopping_does_not_wait_out_rq_pubsub_read(real_redis: redis.Redis, redis_url: str) -> None:
    # rq unsubscribes, then stops its pubsub thread, whose reads last up to 60 s. Here the
    # UNSUBSCRIBE reply surely reaches the thread before the stop: the worker must still stop.
    from workers.handlers import Registry
    from workers.job import Runner
    from workers.worker import KanbanWorker

    client = redis.Redis.from_url(redis_url)
    runner = Runner(board=Board(client, BOARD), registry=Registry("taskfns:act"), ttl=60, timeout=60,
                    retry_delay=1)
    worker = KanbanWorker(runner, "l", client)
    worker.subscribe()
    wait_for(lambda: worker.pubsub.subscribed)
    unsubscribe = worker.pubsub.unsubscribe

    def unsubscribe_then_pause(*args: Any) -> None:
        unsubscribe(*args)
        time.sleep(0.5)

    worker.pubsub.unsubscribe = unsubscribe_then_pause  # type: ignore[method-assign]
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive()
    assert not worker.pubsub_thread.is_alive()


def test_dispatching_a_claim_twice_gives_one_json_rq_job(board: Board, redis_url: str) -> None:
    from workers.dispatch import dispatch, lane_queue

    board.create("once", assignee="l")
    claim = board.claim(assignee="l", worker="w", ttl=30)
    assert claim is not None
    raw = redis.Redis.from_url(redis_url)
    queue = lane_queue(raw, board, "l")
    first = dispatch(queue, board, claim, 60)
    second = dispatch(queue, board, claim, 60)
    assert first.id == second.id == board.keys.rq_job_id(claim.id, 1, claim.token)
    assert raw.keys("rq:job:*") == [f"rq:job:{first.id}".encode()]
    assert queue.job_ids == []  # the claiming worker runs it; no other worker can pop it
    # The payload is JSON (rq compresses it), never pickle.
    func, instance, args, kwargs = json.loads(zlib.decompress(raw.hget(f"rq:job:{first.id}", "data")))
    assert (func, instance, args) == ("workers.job.run", None, [])
    assert kwargs == {"board": BOARD, "task_id": claim.id, "token": claim.token, "attempt": 1}


def test_heartbeats_keep_a_long_task_claimed(board: Board, workers: Workers, real_redis: redis.Redis) -> None:
    task = board.create("long", assignee="l", metadata={"sleep": 5})
    proc = workers.start("--burst", "--ttl", "3")
    wait_for(lambda: runs(real_redis))
    while proc.poll() is None:  # a reclaim now would find the lease expired without heartbeats
        assert board.reclaim_expired() == 0
        time.sleep(0.2)
    done = board.get(task.id)
    assert done.status == Status.DONE and done.attempts == 1
    assert "reclaimed" not in [e.kind for e in board.history(task.id)]


def test_a_run_past_its_timeout_is_killed_and_failed(board: Board, workers: Workers) -> None:
    task = board.create("hangs", assignee="l", max_attempts=1, metadata={"sleep": 60, "timeout": 1})
    started = time.monotonic()
    workers.run("--ttl", "3")
    assert time.monotonic() - started < 10
    t = board.get(task.id)
    assert t.status == Status.BLOCKED and "timed out after 1 s" in (t.error or "")


def test_kill_9_loses_nothing_and_late_writes_are_refused(board: Board, workers: Workers,
                                                        real_redis: redis.Redis) -> None:
    task = board.create("survives", assignee="l", metadata={"sleep": 60, "slow_attempts": 1})
    first = workers.start("--ttl", "3")
    [run] = wait_for(lambda: runs(real_redis))
    os.kill(run["pid"], signal.SIGKILL)  # the work horse ...
    first.kill()  # ... and its worker
    first.communicate()
    time.sleep(3.2)  # the lease expires
    workers.run("--ttl", "3")  # another worker reclaims and runs it
    t = board.get(task.id)
    assert t.status == Status.DONE and t.attempts == 2
    assert "reclaimed" in [e.kind for e in board.history(task.id)]
    for late in (lambda: board.complete(task.id, run["token"], result="late"),
                 lambda: board.heartbeat(task.id, run["token"]),
                 lambda: board.progress(task.id, run["token"], 1)):
        with pytest.raises(StaleClaim):
            late()
    assert board.get(task.id).result == {"ran": task.id}


def test_a_killed_work_horse_fails_its_attempt_at_once(board: Board, workers: Workers,
                                                      real_redis: redis.Redis) -> None:
    task = board.create("crashes", assignee="l", metadata={"sleep": 60, "slow_attempts": 1})
    workers.start("--ttl", "30", "--retry-delay", "0")
    [run] = wait_for(lambda: runs(real_redis))
    os.kill(run["pid"], signal.SIGKILL)
    wait_for(lambda: board.get(task.id).status == Status.DONE)  # well before the 30 s lease
    assert "work horse died" in (board.get(task.id).error or "")


def test_sigterm_finishes_the_current_task_and_exits_0(board: Board, workers: Workers,
                                                       real_redis: redis.Redis) -> None:
    task = board.create("finish me", assignee="l", metadata={"sleep": 1.5})
    waiting = board.create("not started", assignee="l", priority=-1)
    proc = workers.start("--ttl", "3")
    wait_for(lambda: runs(real_redis))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert board.get(task.id).status == Status.DONE
    assert board.get(waiting.id).status == Status.READY


def test_sigterm_past_the_grace_period_gives_the_task_back(board: Board, workers: Workers,
                                                          real_redis: redis.Redis) -> None:
    task = board.create("too long", assignee="l", metadata={"sleep": 60})
    proc = workers.start("--ttl", "3", "--grace", "0.3")
    wait_for(lambda: runs(real_redis))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    t = board.get(task.id)
    assert t.status == Status.READY and t.attempts == 0
    assert board.history(task.id)[-1].kind == "released"


def test_retries_backoff_and_handler_signals(board: Board, workers: Workers) -> None:
    failing = board.create("fails", assignee="l", max_attempts=3, metadata={"fail": "boom"})
    retried = board.create("retried", assignee="l", metadata={"retry_until": 2})
    blocked = board.create("blocked", assignee="l", metadata={"block": "needs a human"})
    workers.run("--retry-delay", "0")
    f = board.get(failing.id)
    assert f.status == Status.BLOCKED and f.block_kind == "transient" and f.attempts == 3
    assert "gave up after 3 of 3 attempts: RuntimeError: boom" in (f.block_reason or "")
    assert "Traceback" in (f.error or "") and "taskfns.py" in (f.error or "")
    r = board.get(retried.id)
    assert r.status == Status.DONE and r.attempts == 2
    b = board.get(blocked.id)
    assert (b.status, b.block_kind, b.block_reason, b.attempts) == (Status.BLOCKED, "handler", "needs a human", 1)


def test_a_retry_delay_schedules_the_next_attempt(board: Board, workers: Workers) -> None:
    task = board.create("later", assignee="l", metadata={"fail": "boom"})
    workers.run("--retry-delay", "30")
    t = board.get(task.id)
    assert t.status == Status.SCHEDULED and t.attempts == 1 and t.not_before is not None


class Evil:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def plant(raw: redis.Redis, queue_name: str, job_id: str, payload: Any, **fields: str) -> None:
    """A hand-written job in Redis, as anyone who can write to Redis could leave one."""
    data = zlib.compress(pickle.dumps(payload) if isinstance(payload, tuple) else json.dumps(payload).encode())
    raw.hset(f"rq:job:{job_id}", mapping={"data": data, "status": "queued", "origin": queue_name,
                                          "created_at": "2026-01-01T00:00:00.000000Z", **fields})
    raw.rpush(f"rq:queue:{queue_name}", job_id)


def test_hand_written_jobs_run_no_code(board: Board, workers: Workers, tmp_path: Path, redis_url: str) -> None:
    from rq.exceptions import DeserializationError
    from rq.serializers import JSONSerializer

    from workers.dispatch import TaskJob

    raw, name = redis.Redis.from_url(redis_url), board.keys.rq_queue("l")
    plant(raw, name, "evil-pickle", (Evil(tmp_path / "pickled"), None, (), {}))
    plant(raw, name, "evil-func", ["os.system", None, [f"touch {tmp_path / 'called'}"], {}])
    plant(raw, name, "evil-callback", ["workers.job.run", None, [], {}], failure_callback_name="os.abort",
          success_callback_name="os.abort", stopped_callback_name="os.abort")
    # Read back as a kanban worker reads jobs: JSON only, and only workers.job.run.
    for job_id in ("evil-pickle", "evil-func"):
        job = TaskJob.fetch(job_id, connection=raw, serializer=JSONSerializer)
        with pytest.raises(DeserializationError):
            job.func
    cb = TaskJob.fetch("evil-callback", connection=raw, serializer=JSONSerializer)
    assert (cb.success_callback, cb.failure_callback, cb.stopped_callback) == (None, None, None)
    # A worker of the lane runs its claims and never what others put in the rq queue.
    task = board.create("legit", assignee="l")
    workers.run()
    assert not (tmp_path / "pickled").exists() and not (tmp_path / "called").exists()
    assert board.get(task.id).status == Status.DONE
    for job_id in ("evil-pickle", "evil-func", "evil-callback"):
        assert raw.hget(f"rq:job:{job_id}", "status") == b"queued"


def test_workers_pick_up_a_wiped_and_restored_board(board: Board, workers: Workers, real_redis: redis.Redis,
                                                    redis_url: str, tmp_path: Path) -> None:
    """A reboot: Redis wiped while workers wait, the board restored from kanban.db, work resumes."""
    db = tmp_path / "kanban.db"

    def snapshot(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "snapshot", *args, "--board", BOARD, "--db", str(db),
                               "--redis-url", redis_url], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    board.create("before", assignee="l")
    workers.start("--ttl", "3")
    wait_for(lambda: runs(real_redis))
    waiting = board.create_many([{"title": f"r{i}", "assignee": "l"} for i in range(3)] +
                                [{"title": "parked", "assignee": "l", "status": "triage"}])
    snapshot("now")
    real_redis.flushall()  # the reboot: rq's queues and registries go too
    time.sleep(1.5)  # workers meet an empty board and keep waiting
    snapshot("restore")
    wait_for(lambda: all(board.get(t.id).status == Status.DONE for t in waiting[:3]))
    assert board.get(waiting[3].id).status == Status.TRIAGE


def test_command_handler_maps_exit_codes(board: Board, workers: Workers, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    ok = board.create("ok", assignee="sh", metadata={"argv": ["sh", "-c", "echo hi; echo warn >&2"]})
    later = board.create("later", assignee="sh", max_attempts=1, metadata={
        "argv": ["sh", "-c", f"if [ -e {marker} ]; then echo second; else touch {marker}; exit 75; fi"]})
    bad = board.create("bad", assignee="sh", max_attempts=1, metadata={"argv": ["sh", "-c", "echo oops >&2; exit 3"]})
    shell = board.create("shell string", assignee="sh", metadata={"argv": "echo hi"})
    workers.run("--retry-delay", "0", lane="sh", handler="workers.handlers:command")
    assert board.get(ok.id).result == {"exit_code": 0, "stdout": "hi\n", "stderr": "warn\n"}
    t = board.get(later.id)
    assert t.status == Status.DONE and t.result["stdout"] == "second\n" and t.attempts == 1
    assert "released" in [e.kind for e in board.history(later.id)]
    b = board.get(bad.id)
    assert b.status == Status.BLOCKED and "CommandFailed: exit 3: oops" in (b.error or "")
    s = board.get(shell.id)
    assert s.status == Status.BLOCKED and s.block_kind == "invalid"


def test_a_task_may_name_only_allowed_handlers(board: Board, workers: Workers) -> None:
    allowed = board.create("other", assignee="l", metadata={"handler": "taskfns:other"})
    not_json = board.create("not json", assignee="l", metadata={"handler": "taskfns:unserialisable"})
    refused = board.create("sneaky", assignee="l", metadata={"handler": "os:system", "argv": ["true"]})
    workers.run("--handler-allow", "taskfns:other", "--handler-allow", "taskfns:unserialisable")
    assert board.get(allowed.id).result == "other handler"
    n = board.get(not_json.id)
    assert n.status == Status.BLOCKED and n.block_kind == "failed" and "not JSON-serialisable" in (n.error or "")
    r = board.get(refused.id)
    assert r.status == Status.BLOCKED and r.block_kind == "refused"
    assert "handler 'os:system' is not allowed on this worker" in (r.block_reason or "")


@pytest.mark.parametrize("args, message", [
    (["--handler", "nosuchmodule:fn"], "cannot import nosuchmodule"),
    (["--handler", "os.system"], "expected module:function"),
    (["--handler", "taskfns:act", "--board", "Bad Slug"], "not a valid slug"),
])
def test_cli_errors_are_one_line(args: list[str], message: str, workers: Workers) -> None:
    proc = workers.start("--burst", *args[2:], handler=args[1])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_registry_refuses_a_missing_handler() -> None:
    from workers.handlers import Registry

    with pytest.raises(InvalidInput):
        Registry("workers.handlers:nothing")


def test_a_run_whose_claim_was_lost_is_stopped(board: Board, workers: Workers, real_redis: redis.Redis) -> None:
    task = board.create("lost", assignee="l", metadata={"sleep": 60})
    workers.start("--ttl", "3")
    [run] = wait_for(lambda: runs(real_redis))
    # As if the worker had been frozen past its lease: the lease expires, another run takes the task.
    real_redis.zadd(board.keys.leases, {task.id: 0})
    assert board.reclaim_expired() == 1
    taken = board.claim(assignee="l", worker="someone else", ttl=60)
    assert taken is not None and taken.id == task.id

    def horse_gone() -> bool:
        try:
            os.kill(run["pid"], 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(horse_gone)  # the next renewal finds the claim gone and kills the work horse
    t = board.get(task.id)
    assert t.status == Status.RUNNING and t.claim_token == taken.token and t.error is None


def test_each_run_is_logged_as_structured_events(board: Board, workers: Workers) -> None:
    t = board.create("logged", assignee="l")
    done = workers.run("--log-level", "INFO")
    lines = [line for line in done.stderr.splitlines() if "event=run." in line]
    assert len(lines) == 2, done.stderr
    for line, event in zip(lines, ("run.start", "run.end")):
        assert f" event={event} board={BOARD} task={t.id} attempt=1 worker=" in line
    assert "outcome=done" in lines[1]
