"""The terminal chat (`mopsbot chat`): a REPL acting as a configured Slack user."""

from __future__ import annotations

from rich.console import Console

from mopsbot.config import Settings
from mopsbot.workspace import WorkspaceError, approver_groups, person_name

HELP = """commands:
  /help     this help
  /whoami   the Slack user this chat acts as, and their approver groups
  /quit     leave (Ctrl-D works too)
anything else is a question for mopsbot."""

NOT_YET = (
    "I can't answer questions yet: the agent that answers arrives with issue #4 (Agent core). "
    "Meanwhile `mopsbot demo info` shows the demo warehouse."
)


def whoami(settings: Settings, user: str) -> str:
    try:
        name = person_name(settings.tools_dir, user) or "not listed in tools/approvals.yaml"
        groups = ", ".join(approver_groups(settings.tools_dir, user)) or "none"
    except WorkspaceError as err:
        return f"{user} (workspace unreadable: {err})"
    return f"{user} — {name}; approver groups: {groups}"


def reply(settings: Settings, user: str, line: str) -> str | None:
    """The chat's response to one input line; None means leave."""
    text = line.strip()
    if text in ("/quit", "/exit"):
        return None
    if text == "/help":
        return HELP
    if text == "/whoami":
        return whoami(settings, user)
    if text.startswith("/"):
        return f"unknown command {text.split()[0]}; /help lists the commands"
    if not text:
        return ""
    return NOT_YET


def run_chat(settings: Settings, user: str, console: Console) -> None:
    console.print(f"[bold]mopsbot[/bold] terminal chat as {whoami(settings, user)}. /help for commands.")
    while True:
        try:
            line = console.input("[bold cyan]you>[/bold cyan] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        answer = reply(settings, user, line)
        if answer is None:
            return
        if answer:
            console.print(f"[bold green]mopsbot>[/bold green] {answer}")
