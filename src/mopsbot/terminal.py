"""The terminal chat (`mopsbot chat`): a REPL on the same agent loop as Slack, acting as a configured user."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from rich.console import Console

from mopsbot.agent.runner import Agent
from mopsbot.agent.turn import TurnRecord
from mopsbot.caller import CallerContext
from mopsbot.config import Settings
from mopsbot.errors import UserFacingError, reference_id
from mopsbot.workspace import WorkspaceError, approver_groups, person_name

log = logging.getLogger(__name__)

HELP = """commands:
  /help               this help
  /whoami             the Slack user this chat acts as, and their approver groups
  /approve ID         approve a pending action (as this user)
  /reject ID REASON   reject a pending action, with a reason
  /quit               leave (Ctrl-D works too)
anything else is a question for mopsbot."""


def whoami(settings: Settings, user: str) -> str:
    try:
        name = person_name(settings.tools_dir, user) or "not listed in tools/approvals.yaml"
        groups = ", ".join(approver_groups(settings.tools_dir, user)) or "none"
    except WorkspaceError as err:
        return f"{user} (workspace unreadable: {err})"
    return f"{user} — {name}; approver groups: {groups}"


def render(record: TurnRecord) -> str:
    """The answer plus one dim line per tool call and one line per pending action."""
    lines = [record.answer]
    for call in record.tool_calls:
        args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
        lines.append(f"  ↳ {call.name}({args}) {'ok' if call.ok else 'failed: ' + (call.error or '')}")
    for action in record.pending_actions:
        lines.append(f"  ⏳ pending action {action.id} ({action.kind}, {action.risk} risk): {action.summary}")
    return "\n".join(lines)


class TerminalChat:
    """One chat session: a DM-like thread between the configured user and the bot."""

    def __init__(self, settings: Settings, user: str, agent_factory: Callable[[], Agent]) -> None:
        self.settings = settings
        self.user = user
        self._agent_factory = agent_factory
        self._agent: Agent | None = None
        self.caller = CallerContext(user, f"D{user}", "dm")
        self.thread_id = f"chat-{uuid.uuid4().hex[:12]}"

    def reply(self, line: str) -> str | None:
        """The chat's response to one input line; None means leave."""
        text = line.strip()
        if text in ("/quit", "/exit"):
            return None
        if text == "/help":
            return HELP
        if text == "/whoami":
            return whoami(self.settings, self.user)
        if text.startswith(("/approve", "/reject")):
            return self._decide(text)
        if text.startswith("/"):
            return f"unknown command {text.split()[0]}; /help lists the commands"
        if not text:
            return ""
        try:
            if self._agent is None:
                self._agent = self._agent_factory()
            return render(self._agent.run_turn(text, self.caller, self.thread_id))
        except UserFacingError as err:
            return f"Sorry: {err}"
        except Exception:
            ref = reference_id()
            log.exception("chat turn failed (%s)", ref)
            return f"Sorry, something went wrong on my side (reference {ref})."

    def _decide(self, text: str) -> str:
        from mopsbot.approvals.decide import DecisionRefused

        parts = text.split(maxsplit=2)
        if len(parts) < 2:
            return "usage: /approve ID  or  /reject ID REASON"
        if parts[0] == "/reject" and len(parts) < 3:
            return "a rejection needs a reason: /reject ID REASON"
        if self._agent is None:
            self._agent = self._agent_factory()
        try:
            result = self._agent.approvals.decide(
                parts[1],
                self.user,
                "approve" if parts[0] == "/approve" else "reject",
                reason=parts[2] if len(parts) > 2 else None,
                via="terminal",
            )
        except DecisionRefused as err:
            return f"Refused: {err}"
        detail = f" {result.result}" if result.result else ""
        return result.message + detail


def run_chat(settings: Settings, user: str, console: Console, agent_factory: Callable[[], Agent]) -> None:
    chat = TerminalChat(settings, user, agent_factory)
    console.print(f"[bold]mopsbot[/bold] terminal chat as {whoami(settings, user)}. /help for commands.")
    while True:
        try:
            line = console.input("[bold cyan]you>[/bold cyan] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        answer = chat.reply(line)
        if answer is None:
            return
        if answer:
            console.print("[bold green]mopsbot>[/bold green] ", end="")
            console.print(answer, markup=False, highlight=False)
