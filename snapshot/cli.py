"""``kanban-snapshot``: publish, verify and restore board snapshots."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="kanban-redis")
def main() -> None:
    """Publish point-in-time copies of a board to kanban.db and restore them."""
