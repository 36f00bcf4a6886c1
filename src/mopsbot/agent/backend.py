"""The contract between the turn runner and a backend: the backend decides, the executor acts."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from mopsbot.agent.history import StoredMessage
from mopsbot.caller import CallerContext
from mopsbot.tools.registry import ToolRegistry


@dataclass
class ToolOutcome:
    """The result of one tool call as the backend sees it."""

    name: str
    ok: bool
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    citations: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    pending_action: dict[str, Any] | None = None

    def for_model(self) -> str:
        """The tool message content: results are wrapped and labelled as data, never as instructions."""
        if not self.ok:
            return json.dumps({"error": self.error})
        body: dict[str, Any] = {"summary": self.summary, "data": self.data}
        if self.pending_action:
            body["pending_action"] = self.pending_action
        return "<tool_result>\n" + json.dumps(body, default=str, ensure_ascii=False) + "\n</tool_result>"


class ToolExecutor(Protocol):
    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolOutcome: ...


@dataclass
class TurnRequest:
    message: str
    history: list[StoredMessage]
    registry: ToolRegistry
    caller: CallerContext
    today: date = field(default_factory=date.today)
    deadline: float | None = None  # time.monotonic() by which the turn must end; None: no budget

    def time_left(self) -> float:
        """Seconds until the turn's deadline (may be negative; infinite without a budget)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()


@dataclass
class BackendOutput:
    answer: str
    usage: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # what the backend wants to find in history next turn
    guardrails: list[str] = field(default_factory=list)
    outcome: str = "ok"  # "partial": the turn budget ran out before the backend finished


class Backend(Protocol):
    name: str

    def run(self, request: TurnRequest, executor: ToolExecutor) -> BackendOutput: ...
