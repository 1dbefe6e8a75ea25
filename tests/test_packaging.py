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


def test_every_data_file_is_listed_for_setuptools() -> None:
    """Lua scripts and the systemd unit templates (install-boot) must reach a regular install too."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, top, suffix in (("kanban_redis", "kanban_redis/lua", ".lua"),
                                 ("snapshot", "snapshot/units", ".service")):
        files = [p.relative_to(ROOT / package) for p in (ROOT / top).rglob(f"*{suffix}")]
        assert files and all(any(f.match(glob) for glob in data[package]) for f in files), package
