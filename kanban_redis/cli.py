"""``kanban``: the board from a terminal (commands arrive with the CLI issue)."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="kanban-redis")
def main() -> None:
    """Look at and change a kanban-redis board."""
