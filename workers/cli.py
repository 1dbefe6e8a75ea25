"""``kanban-worker``: run the tasks of one lane of a board with rq workers."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from types import FrameType

import click
import redis
from rq.logutils import setup_loghandlers

from kanban_redis import Board, KanbanError, Settings, logs
from kanban_redis.connection import connect, mask_url
from kanban_redis.inputs import LANE_PATTERN, TTL_MAX_SECONDS
from kanban_redis.localdefault import url_or_local

from .handlers import Registry
from .job import Runner
from .worker import MIN_TTL, KanbanWorker

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

EXAMPLES = """
\b
Examples:
  kanban-worker --board default --lane build --handler myapp.tasks:build
  kanban-worker --lane shell --handler workers.handlers:command --concurrency 4
  kanban-worker --lane ops --handler myapp.ops:run --handler-allow workers.handlers:command --burst
"""


@dataclass(frozen=True)
class Options:
    settings: Settings
    lane: str
    handler: str
    allow: tuple[str, ...]
    ttl: float
    retry_delay: float
    timeout: int
    grace: float | None
    burst: bool
    name: str
    log_level: str


def build(opts: Options, name: str) -> KanbanWorker:
    """A worker for ``opts``: its Redis client, board, handlers and runner.

    Raises:
        InvalidInput: bad settings or handler paths.
    """
    registry = Registry(opts.handler, opts.allow)
    # A worker talks to Redis at least every CLAIM_SLICE and its work horses
    # use fresh connections: a health-check PING would be a wasted round trip.
    settings = opts.settings.model_copy(update={"retry_backoff": opts.retry_delay, "health_check_interval": 0})
    client = connect(settings, decode_responses=False)  # one client (rq needs bytes) for the board and rq
    board = Board(client, settings.board, retry_backoff=settings.retry_backoff,
                  retry_backoff_cap=settings.retry_backoff_cap)
    runner = Runner(board=board, registry=registry, ttl=opts.ttl, timeout=opts.timeout, retry_delay=opts.retry_delay)
    return KanbanWorker(runner, opts.lane, client, grace=opts.grace, name=name)


def work(opts: Options, name: str) -> int:
    """Run one worker until it stops; its exit status."""
    try:
        worker = build(opts, name)
        worker.work(burst=opts.burst, logging_level=opts.log_level)
    except KanbanError as e:
        click.echo(f"kanban-worker: error: {e}", err=True)
        return EXIT_ERROR
    except (redis.ConnectionError, redis.TimeoutError) as e:
        click.echo(f"kanban-worker: error: Redis unreachable at {mask_url(opts.settings.redis_url)}: {e}", err=True)
        return EXIT_ERROR
    return EXIT_OK


def _child(opts: Options, name: str) -> None:
    sys.exit(work(opts, name))


def supervise(opts: Options, count: int) -> int:
    """Run ``count`` workers as child processes; SIGTERM/SIGINT are passed on to them.

    Returns 0 when every worker exited 0, else the first non-zero status.
    """
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(opts, f"{opts.name}.{i}"), name=f"{opts.name}.{i}")
             for i in range(1, count + 1)]

    def forward(signum: int, frame: FrameType | None) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signum)

    for p in procs:
        p.start()
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    return (failed[0] if failed[0] > 0 else EXIT_ERROR) if failed else EXIT_OK


@click.command(epilog=EXAMPLES)
@click.option("--redis-url", envvar="REDIS_URL", help="Redis URL (default: REDIS_URL, else the local Redis, started if needed).")
@click.option("--board", envvar="KANBAN_BOARD", default="default", show_default=True, help="Board slug.")
@click.option("--lane", envvar="KANBAN_LANE", required=True, help="Lane (assignee) whose ready tasks to run.")
@click.option("--handler", envvar="KANBAN_HANDLER", required=True,
              help="Default handler, module:function, called as handler(task, ctx).")
@click.option("--handler-allow", "allow", envvar="KANBAN_HANDLER_ALLOW", multiple=True,
              help="Another handler a task may name in metadata.handler (repeatable).")
@click.option("--ttl", envvar="KANBAN_TTL", type=click.FloatRange(MIN_TTL, TTL_MAX_SECONDS), default=60.0,
              show_default=True, help="Claim lease in seconds; renewed every ttl/3 while a task runs.")
@click.option("--retry-delay", envvar="KANBAN_RETRY_DELAY", type=click.FloatRange(0), default=10.0,
              show_default=True, help="Base of the retry backoff in seconds (doubles per attempt).")
@click.option("--timeout", envvar="KANBAN_TASK_TIMEOUT", type=click.IntRange(1), default=1800, show_default=True,
              help="Seconds a run may take unless the task's metadata.timeout says otherwise.")
@click.option("--grace", envvar="KANBAN_GRACE", type=click.FloatRange(0), default=25.0, show_default=True,
              help="Seconds after SIGTERM to let the current task finish before giving it back.")
@click.option("--burst", envvar="KANBAN_BURST", is_flag=True, help="Exit once the lane has nothing ready.")
@click.option("--name", envvar="KANBAN_WORKER_NAME", help="Worker name (default: host-pid).")
@click.option("--concurrency", envvar="KANBAN_CONCURRENCY", type=click.IntRange(1, 256), default=1,
              show_default=True, help="Number of rq workers (processes).")
@click.option("--log-level", envvar="KANBAN_LOG_LEVEL", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(package_name="kanban-redis")
def main(redis_url: str | None, board: str, lane: str, handler: str, allow: tuple[str, ...], ttl: float,
         retry_delay: float, timeout: int, grace: float, burst: bool, name: str | None, concurrency: int,
         log_level: str) -> None:
    """Run the tasks of one lane of a board with rq workers.

    The board's claim decides which task runs where; each claim runs as one
    rq job (JSON, never pickle) in rq's fork-per-job worker, so `rq info`
    shows the workers and their queue kanban:<board>:<lane>.
    """
    if not re.fullmatch(LANE_PATTERN, lane):
        raise click.BadParameter(f"{lane!r} is not a lane name", param_hint="--lane")
    try:
        url = url_or_local(redis_url, "kanban-worker")
    except KanbanError as e:
        click.echo(f"kanban-worker: error: {e}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        settings = Settings.from_env(redis_url=url, board=board)
        Registry(handler, allow)
    except KanbanError as e:
        click.echo(f"kanban-worker: error: {e}", err=True)
        sys.exit(EXIT_USAGE)
    setup_loghandlers(log_level.upper(), name="workers")
    try:
        logs.configure(log_level)
    except ValueError as e:
        click.echo(f"kanban-worker: error: {e}", err=True)
        sys.exit(EXIT_USAGE)
    opts = Options(settings=settings, lane=lane, handler=handler, allow=allow, ttl=ttl, retry_delay=retry_delay,
                   timeout=timeout, grace=grace, burst=burst, name=name or f"{socket.gethostname()}-{os.getpid()}",
                   log_level=log_level.upper())
    sys.exit(work(opts, opts.name) if concurrency == 1 else supervise(opts, concurrency))
