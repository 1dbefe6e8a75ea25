"""``kanban-worker``: run the tasks of one lane with rq workers."""

from __future__ import annotations

import click


@click.command()
@click.version_option(package_name="kanban-redis")
def main() -> None:
    """Run the tasks of one lane of a board with rq workers."""
