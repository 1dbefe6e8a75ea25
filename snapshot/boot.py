"""``kanban-snapshot install-boot``: systemd user units that bring the board back after a reboot.

Four units, from the templates in ``units/`` with this installation's paths
filled in (see docs/wsl.md):

* ``kanban-redis.service``: a Redis on 127.0.0.1 that keeps nothing on disk
  (left out when the user names a Redis with ``--redis-url``);
* ``kanban-restore.service``: one shot, after Redis answers, ``kanban-snapshot
  restore --if-empty`` (skipped while kanban.db does not exist yet);
* ``kanban-snapshot.service``: the one snapshotter, after the restore;
* ``kanban-worker@.service``: the workers of one lane (the instance name),
  after the restore.

Units are written atomically (temp file, fsync, rename); a unit that differs
from what would be written is replaced only with ``--force``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from kanban_redis.errors import InvalidInput, KanbanError
from kanban_redis.local import find_server

from .publisher import fsync_dir

TEMPLATES = Path(__file__).with_name("units")
REDIS_UNIT = "kanban-redis.service"
RESTORE_UNIT = "kanban-restore.service"
SNAPSHOT_UNIT = "kanban-snapshot.service"
WORKER_UNIT = "kanban-worker@.service"
#: Port of the Redis that kanban-redis.service runs (not 6379: a system redis-server may hold it).
DEFAULT_PORT = 6380
#: Characters a filled-in value may not hold: systemd would split, expand or unquote them.
_UNSAFE = re.compile(r"[\s\"'\\%$`;]")
_FIELD = re.compile(r"\{([a-z_]+)\}")


class UnitExists(KanbanError):
    """A unit file differs from the one install-boot would write, and --force was not given."""


@dataclass(frozen=True)
class BootPlan:
    """What the units run. ``redis_url`` None: kanban-redis.service runs Redis on ``port``."""

    board: str
    db: Path
    lanes: tuple[str, ...]
    handler: str | None
    interval: float
    redis_url: str | None = None
    port: int = DEFAULT_PORT
    concurrency: int = 1
    bin: Path = Path(sys.executable).parent

    @property
    def url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.port}/0"

    @property
    def enabled(self) -> list[str]:
        """The units to enable, in start order."""
        first = [] if self.redis_url else [REDIS_UNIT]
        return [*first, RESTORE_UNIT, SNAPSHOT_UNIT, *(f"kanban-worker@{lane}.service" for lane in self.lanes)]


def user_unit_dir() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user``, else ``~/.config/systemd/user``."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"


def fill(template: str, values: dict[str, str]) -> str:
    """``{name}`` fields of a unit template replaced by ``values`` (systemd's own ``%i`` stays)."""
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def _check(values: dict[str, str]) -> None:
    for name, value in values.items():
        if _UNSAFE.search(value):
            raise InvalidInput(f"{name}: {value!r} holds a space, quote, %, $ or backslash, "
                               "which a unit file cannot carry as it is; choose another path or value")


def units(plan: BootPlan) -> dict[str, str]:
    """File name -> text of each unit the plan needs.

    Raises:
        InvalidInput: no redis-server to run, a missing handler for the lanes, or a value that
        holds a character systemd would split, expand or unquote.
    """
    if plan.lanes and not plan.handler:
        raise InvalidInput("--handler: the workers of --lane need a handler (module:function)")
    values = {"bin": str(plan.bin), "board": plan.board, "db": str(plan.db), "redis_url": plan.url,
              "interval": f"{plan.interval:g}", "handler": plan.handler or "", "concurrency": str(plan.concurrency),
              "redis_port": str(plan.port)}
    _check(values)
    names = [RESTORE_UNIT, SNAPSHOT_UNIT, WORKER_UNIT]
    if plan.redis_url:
        values["redis_dependency"] = "# Redis: REDIS_URL below (not managed by these units)"
    else:
        server = find_server()
        if server is None:
            raise InvalidInput("no redis-server to run (apt-get install redis-server, or "
                               "pip install 'kanban-redis[local]'); or name a Redis with --redis-url")
        values["redis_server"] = server
        _check({"redis_server": server})
        values["redis_dependency"] = f"Requires={REDIS_UNIT}\nAfter={REDIS_UNIT}"
        names.insert(0, REDIS_UNIT)
    return {name: fill((TEMPLATES / name).read_text(encoding="utf-8"), values) for name in names}


def install(texts: dict[str, str], directory: Path, *, force: bool = False,
            private: bool = False) -> list[tuple[Path, str]]:
    """Write the units into ``directory``; (path, "wrote" | "replaced" | "unchanged") for each.

    ``private`` makes them readable by the user only (a Redis password is in them).

    Raises:
        UnitExists: a unit there differs and ``force`` is off (nothing is written then).
    """
    directory.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[Path, str, str]] = []
    for name, text in texts.items():
        path = directory / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        action = "wrote" if old is None else "unchanged" if old == text else "replaced"
        if action == "replaced" and not force:
            raise UnitExists(f"{path} differs from the unit install-boot writes (edited by hand?); "
                             "--force replaces it")
        plan.append((path, text, action))
    mode = 0o600 if private else 0o644
    for path, text, action in plan:
        if action != "unchanged":
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        os.chmod(path, mode)
    fsync_dir(directory)
    return [(path, action) for path, _, action in plan]


def in_wsl() -> bool:
    try:
        return "microsoft" in Path("/proc/sys/kernel/osrelease").read_text().lower()
    except OSError:
        return False


def systemd_enabled(wsl_conf: str) -> bool:
    """True when an /etc/wsl.conf text turns systemd on (``[boot]`` with ``systemd=true``)."""
    section = ""
    for raw in wsl_conf.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
        elif section == "boot" and "=" in line:
            key, value = (part.strip().lower() for part in line.split("=", 1))
            if key == "systemd" and value == "true":
                return True
    return False


def next_steps(plan: BootPlan, directory: Path) -> list[str]:
    """What the user runs after the units are written."""
    conf = Path("/etc/wsl.conf")
    if in_wsl():
        found = conf.exists() and systemd_enabled(conf.read_text(errors="replace"))
        state = "it is set" if found else "it is NOT set yet: add it, then run wsl.exe --shutdown once from Windows"
    else:
        state = "this is not WSL: systemd runs already if systemctl --user works"
    custom = [] if directory == user_unit_dir() else [f"   (written to {directory}: copy them to {user_unit_dir()})"]
    steps = [
        "1. WSL starts systemd only with this in /etc/wsl.conf (" + state + "):",
        "     [boot]",
        "     systemd=true",
        "2. Enable and start them (Redis, the restore, then the snapshotter and the workers):",
        *custom,
        "     systemctl --user daemon-reload",
        "     systemctl --user enable --now " + " ".join(plan.enabled),
        "3. Start them when the distro boots, not at your first login:",
        "     loginctl enable-linger \"$USER\"",
        "4. Check:",
        f"     {plan.bin}/kanban health --redis-url {plan.url} --board {plan.board} --db {plan.db} "
        f"--snapshot-interval {plan.interval:g}",
        f"     {plan.bin}/kanban-snapshot status --redis-url {plan.url} --board {plan.board} --db {plan.db}",
    ]
    if not plan.redis_url:
        steps += ["5. Point kanban and your gateways at this Redis (e.g. in ~/.profile):",
                  f"     export REDIS_URL={plan.url}"]
    if plan.lanes:
        steps.append(f"The workers run {plan.bin}/kanban-worker: {plan.handler} must be importable by its Python.")
    return steps
