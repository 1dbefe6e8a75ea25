"""compose.yaml: the services, their start order, the kanban.db volume, the stop grace."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return doc["services"]


def seconds(duration: str) -> float:
    """A compose duration such as 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_the_four_services(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "restore", "snapshot", "worker"}
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["restore"]["command"][:3] == ["kanban-snapshot", "restore", "--if-empty"]
    assert services["restore"]["restart"] == "no"  # one shot
    assert services["snapshot"]["command"][:2] == ["kanban-snapshot", "run"]
    assert services["worker"]["command"][0] == "kanban-worker"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in ("restore", "snapshot", "worker"):
        assert services[name]["command"][0] in scripts
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_start_order(services: dict[str, Any]) -> None:
    assert services["restore"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    for name in ("snapshot", "worker"):
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"},
                                                "restore": {"condition": "service_completed_successfully"}}


def test_one_snapshotter_many_workers(services: dict[str, Any]) -> None:
    assert services["snapshot"]["deploy"]["replicas"] == 1 and "scale" not in services["snapshot"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # either would stop --scale


def test_kanban_db_lives_on_a_bind_mounted_host_directory(services: dict[str, Any]) -> None:
    mounts = {name: services[name]["volumes"] for name in ("restore", "snapshot")}
    for name, volumes in mounts.items():
        assert len(volumes) == 1 and volumes[0]["type"] == "bind", name
        target = volumes[0]["target"]
        command = services[name]["command"]
        db = command[command.index("--db") + 1]
        assert Path(db).parent == Path(target) and services[name]["environment"]["KANBAN_DB"] == db
    assert mounts["restore"][0]["source"] == mounts["snapshot"][0]["source"]
    assert "volumes" not in services["worker"]  # workers never touch kanban.db


def test_stop_grace_outlasts_a_tasks_grace(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert seconds(worker["stop_grace_period"]) > float(worker["environment"]["KANBAN_WORKER_GRACE"])
    assert seconds(services["snapshot"]["stop_grace_period"]) >= 30  # time for the final snapshot


def test_the_image_installs_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    for package in ("kanban_redis", "workers", "snapshot"):
        assert f"COPY {package} " in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.MULTILINE)
