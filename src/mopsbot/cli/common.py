"""What every command shares: consoles, settings loading with clean errors, and failing with an exit code."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console

from mopsbot.config import ConfigError, Settings, load_settings
from mopsbot.observability.logs import configure_logging

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error (no traceback) and exit with `code`: 1 runtime failure, 2 bad input or configuration."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def load(service: bool = False) -> Settings:
    """Settings for a command; a configuration error exits 2 with the variable named. Logs go to stderr at
    MOPSBOT_LOG_LEVEL for services (`serve`, `watch`), at WARNING or above for the interactive commands."""
    try:
        settings = load_settings()
    except ConfigError as err:
        fail(str(err), code=2)
    level = settings.log_level if service else max(settings.log_level, "WARNING", key=logging.getLevelName)
    configure_logging(level, settings.log_format)
    return settings
