"""``kanban local``: the Redis the tools start when no REDIS_URL is given."""

from __future__ import annotations

import click

from .. import localdefault
from .common import ExitCode, emit_json, json_option, out


def _doc(server: localdefault.LocalServer | None) -> dict[str, object]:
    home = localdefault.data_home()
    if server is None:
        return {"running": False, "data_home": str(home)}
    return {"running": True, "url": server.url, "pid": server.pid, "binary": server.binary,
            "origin": server.origin, "data_dir": str(server.data_dir), "started": server.started}


@click.group(name="local")
def local_group() -> None:
    """The local Redis used when no REDIS_URL is given.

    It keeps its data under $XDG_DATA_HOME/kanban-redis (~/.local/share/kanban-redis),
    runs until stopped, and is shared by every tool of the user.
    """


@local_group.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Is it running, where, and which binary (exit 5 when not running)."""
    server = localdefault.running()
    if as_json:
        emit_json(_doc(server))
    elif server is None:
        out(f"not running (data home {localdefault.data_home()})")
    else:
        out(server.describe())
    ctx.exit(int(ExitCode.OK if server else ExitCode.UNAVAILABLE))


@local_group.command()
@json_option
def start(as_json: bool) -> None:
    """Start it (nothing to do when it runs)."""
    server = localdefault.ensure()
    if as_json:
        emit_json(_doc(server))
    else:
        out(server.describe())


@local_group.command()
def stop() -> None:
    """Stop it; its data stays on disk for the next start."""
    server = localdefault.stop()
    out(f"stopped local Redis at {server.url} (pid {server.pid})" if server else "not running")
