"""`mopsbot ask`: one question through the agent, as text or as the JSON contract of DESIGN.md."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from mopsbot.caller import CallerContext
from mopsbot.cli.common import console, fail, load
from mopsbot.config import Settings
from mopsbot.errors import UserFacingError, reference_id

log = logging.getLogger(__name__)


def agent_factory(settings: Settings, backend: str | None = None) -> Callable:  # type: ignore[type-arg]
    def build():
        from mopsbot.agent.factory import build_agent

        return build_agent(settings, backend=backend)

    return build


def ask(
    text: Annotated[str, typer.Argument(help="The question or request.")],
    user: Annotated[str | None, typer.Option(help="Slack user id asking (default MOPSBOT_LOCAL_USER).")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel id asked in (default: a DM with the bot).")] = None,
    thread: Annotated[str | None, typer.Option(help="Thread id; the same id continues a conversation.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, local or openai (default MOPSBOT_LLM).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the turn record as JSON.")] = False,
) -> None:
    """Answer one question (JSON with --json): answer, citations, tool_calls, pending_actions, usage, timings."""
    from mopsbot.terminal import render
    from mopsbot.workspace import channel_visibility

    settings = load()
    if backend not in (None, "auto", "local", "openai"):
        fail("--backend must be auto, local or openai", code=2)
    user = user or settings.local_user
    caller = (
        CallerContext(user, channel, channel_visibility(settings.tools_dir, channel))  # type: ignore[arg-type]
        if channel
        else CallerContext(user, f"D{user}", "dm")
    )
    try:
        record = agent_factory(settings, backend)().run_turn(text, caller, thread)
    except UserFacingError as err:
        _error(str(err), None, json_out)
    except Exception:
        ref = reference_id()
        log.exception("ask failed (%s)", ref)
        _error("something went wrong on my side", ref, json_out)
    if json_out:
        sys.stdout.write(json.dumps(record.to_dict(), indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        console.print(render(record), markup=False, highlight=False)


def _error(message: str, ref: str | None, json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps({"error": message, "reference": ref}) + "\n")
        raise typer.Exit(1)
    fail(f"{message} (reference {ref})" if ref else message)
