"""What every ``tillflow`` command shares: the consoles, settings with logging, the error exit."""

from __future__ import annotations

import typer
from rich.console import Console

from observability.logs import configure_logging
from schemas.settings import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def settings_with_logging() -> Settings:
    settings = Settings()
    configure_logging(settings)
    return settings


def fail(exc: Exception) -> typer.Exit:
    """Print ``error: <message>`` on stderr and return the exit to raise (code 1)."""
    err.print("error: ", style="bold red", end="")
    err.print(str(exc), markup=False)
    return typer.Exit(code=1)
