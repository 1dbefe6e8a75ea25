"""Running the console scripts as a user would: subprocesses with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
KANBAN = str(BIN / "kanban")


def clean_env(**overrides: str | None) -> dict[str, str]:
    """The current environment without the project's variables, then ``overrides`` (None removes)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "KANBAN_BOARD", "KANBAN_DB", "NO_COLOR") and not k.startswith("KANBAN_")}
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run(args: list[str], env: dict[str, str], *, stdin: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KANBAN, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout)
