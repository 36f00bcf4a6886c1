"""The `mopsbot` command line: a thin layer over documented Python functions."""

from mopsbot.cli.app import app, main

__all__ = ["app", "main"]
