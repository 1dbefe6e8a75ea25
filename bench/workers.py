"""Throughput of kanban-worker against bare rq, measured in the same run.

2,000 no-op tasks go through 1 and 2 ``kanban-worker --burst`` processes, and
2,000 no-op jobs through 1 and 2 ``rq worker --burst`` processes with the
same worker class (rq.Worker, a fork per job), the same JSON serializer, the
same function (bench/handlers/noop.py) and the same log level. Each timing runs from
submission (``Board.create_many`` / ``Queue.enqueue_many``) until the last
worker exits, on a private redis-server; runs of the two sides alternate and
the best of ``--repeat`` counts. Besides wall-clock tasks/s it reports the CPU
time per task (worker processes with their work horses, plus redis-server),
which a machine busy with other work disturbs far less than wall time.

    .venv/bin/python bench/workers.py [--tasks 2000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from kanban_redis import Board, Status
from kanban_redis.local import RedisServer

HANDLERS = Path(__file__).resolve().parent / "handlers"
BIN = Path(sys.executable).parent
LANE = "bench"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _workers(cmds: list[list[str]], url: str) -> None:
    env = dict(os.environ, REDIS_URL=url, PYTHONPATH=f"{HANDLERS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for cmd in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(p.args)} exited {p.returncode}: {err.decode()[-2000:]}")  # type: ignore[arg-type]


def _measure(url: str, submit: Callable[[], object], cmds: list[list[str]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from submission until every worker exited."""
    client = redis.Redis.from_url(url)
    cpu, server = _cpu(), _server_cpu(client)
    started = time.perf_counter()
    submit()
    _workers(cmds, url)
    elapsed = time.perf_counter() - started
    return elapsed, _cpu() - cpu + _server_cpu(client) - server


def bare_rq(url: str, tasks: int, n: int) -> tuple[float, float]:
    client = redis.Redis.from_url(url)
    client.flushall()
    queue = Queue(LANE, connection=client, serializer=JSONSerializer)
    result = _measure(url, lambda: queue.enqueue_many([Queue.prepare_data("noop.noop") for _ in range(tasks)]), [
        [str(BIN / "rq"), "worker", "--burst", "-w", "rq.Worker", "-S", "rq.serializers.JSONSerializer",
         "--logging_level", "WARNING", "-u", url, "-n", f"rq-{i}", LANE] for i in range(n)])
    done = queue.finished_job_registry.count
    if done != tasks:
        raise SystemExit(f"bare rq finished {done} of {tasks} jobs")
    return result


def kanban(url: str, tasks: int, n: int) -> tuple[float, float]:
    redis.Redis.from_url(url).flushall()
    board = Board.from_url(url, board="bench")
    result = _measure(url, lambda: board.create_many([{"title": f"t{i}", "assignee": LANE} for i in range(tasks)]), [
        [str(BIN / "kanban-worker"), "--board", "bench", "--lane", LANE, "--handler", "noop:noop", "--burst",
         "--log-level", "WARNING", "--name", f"kw-{i}"] for i in range(n)])
    done = len(board.list(status=Status.DONE))
    if done != tasks:
        raise SystemExit(f"kanban-worker finished {done} of {tasks} tasks")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.tasks} no-op tasks, best of {args.repeat}; rq.Worker (fork per job), JSON serializer")
    print(f"{'workers':>7}  {'bare rq tasks/s':>15}  {'kanban tasks/s':>14}  {'ratio':>5}  "
          f"{'bare rq CPU ms/task':>19}  {'kanban CPU ms/task':>18}  {'CPU ratio':>9}")
    with RedisServer() as server:
        for n in (1, 2):
            base: list[tuple[float, float]] = []
            ours: list[tuple[float, float]] = []
            for _ in range(args.repeat):
                base.append(bare_rq(server.url, args.tasks, n))
                ours.append(kanban(server.url, args.tasks, n))
            (bw, bc), (ow, oc) = min(base), min(ours)
            bc, oc = min(c for _, c in base), min(c for _, c in ours)
            print(f"{n:>7}  {args.tasks / bw:>15.0f}  {args.tasks / ow:>14.0f}  {bw / ow:>5.2f}  "
                  f"{bc / args.tasks * 1000:>19.2f}  {oc / args.tasks * 1000:>18.2f}  {bc / oc:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
