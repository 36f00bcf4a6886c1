"""The turn record every surface (terminal, Slack, evals) receives, whichever backend ran."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    ok: bool
    summary: str
    kind: str = "read"  # read | write | unknown
    error: str | None = None


@dataclass
class PendingActionRecord:
    id: str
    kind: str
    summary: str
    status: str
    risk: str
    required_group: str | None
    payload_hash: str
    preview: str = ""


@dataclass
class TurnRecord:
    """What `mopsbot ask --json` prints: the DESIGN.md contract plus a few operational fields."""

    turn_id: str
    conversation_id: str
    thread_id: str
    backend: str
    answer: str
    citations: list[dict[str, str]] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    pending_actions: list[PendingActionRecord] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    guardrails: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
