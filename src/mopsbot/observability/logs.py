"""Logging setup: today's text lines, or one JSON object per line for log shippers.

JSON lines hold a timestamp, level, logger, event (the log message template filled with ids and figures),
fields passed as `extra={...}`, and fields bound with `log_context(...)` (e.g. the Slack event id). Callers
never put message text or secrets into a log call; the formatter does not filter what it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Literal

import structlog

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Libraries that log a line per request or per file at INFO; they speak at WARNING unless we debug.
NOISY = ("alembic", "chromadb", "httpx", "httpx2", "bm25s", "matplotlib")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it instead of adding one."""


def json_formatter() -> logging.Formatter:
    """A stdlib formatter rendering every record (ours and libraries') as one JSON object."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ],
    )


def configure_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", *, stream: IO[str] | None = None, force: bool = False
) -> None:
    """Route the root logger to `stream` (stderr) in `fmt`, at `level`.

    Like logging.basicConfig it leaves a root logger that others have given handlers (an embedding app, pytest)
    alone unless `force`; calling it again replaces the handler it installed. Noisy libraries log at WARNING.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    quiet = max(logging.WARNING, logging.getLevelName(level))
    for name in NOISY:
        logging.getLogger(name).setLevel(quiet)
    if len(root.handlers) > len(ours) and not force:
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = _Handler(stream)
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def reset_logging() -> None:
    """Remove the handler configure_logging installed (tests; embedding apps that take logging over)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ids (event_id, turn_id, ...) to every JSON log line written in this context, threads it starts
    through `contextvars.copy_context()` included."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def context_fields() -> dict[str, Any]:
    """The fields bound by the enclosing log_context blocks."""
    return structlog.contextvars.get_contextvars()
