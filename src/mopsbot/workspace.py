"""Reading the workspace's tools/*.yaml files, with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class WorkspaceError(ValueError):
    """A workspace file is missing or invalid; the message names the file (and line when known)."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping. Raises WorkspaceError naming the file and line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkspaceError(f"{path}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise WorkspaceError(f"{where}: {err.problem or err}") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: expected a mapping at the top level")
    return data


def tool_file(tools_dir: Path, name: str) -> dict[str, Any]:
    """Load tools/<name>.yaml of the workspace."""
    return load_yaml(tools_dir / f"{name}.yaml")


def person_name(tools_dir: Path, user_id: str) -> str | None:
    """The display name of a Slack user id from tools/approvals.yaml, if listed."""
    people = tool_file(tools_dir, "approvals").get("people") or {}
    entry = people.get(user_id)
    return entry.get("name") if isinstance(entry, dict) else None


def approver_groups(tools_dir: Path, user_id: str) -> list[str]:
    """The approver groups of tools/approvals.yaml that list `user_id`."""
    groups = tool_file(tools_dir, "approvals").get("groups") or {}
    return sorted(g for g, spec in groups.items() if user_id in (spec or {}).get("members", []))


def channel_visibility(tools_dir: Path, channel_id: str) -> str:
    """How visible a channel is: ops channels from tools/approvals.yaml, DMs (D...) and groups (G...) by id prefix.

    Anything else is treated as public, so an unknown channel never sees more than public documents.
    """
    slack = tool_file(tools_dir, "approvals").get("slack") or {}
    if channel_id in (slack.get("ops_channels") or []):
        return "ops"
    if channel_id.startswith("D"):
        return "dm"
    if channel_id.startswith("G"):
        return "private"
    return "public"
