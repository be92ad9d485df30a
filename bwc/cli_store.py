"""`bwc` commands for the store part (registered on the main app by `bwc.cli`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
