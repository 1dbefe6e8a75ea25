"""A regular (non-editable) install, as in the Docker image, must carry every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_for_setuptools() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("kanban_redis", "workers", "snapshot") for init in (ROOT / top).rglob("__init__.py")}
    assert found == listed
