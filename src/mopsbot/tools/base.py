"""What every tool shares: the context it receives (`ctx.deps`) and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mopsbot.caller import CallerContext


@dataclass
class ToolDeps:
    """Per-request dependencies; tools never read the environment or globals."""

    caller: CallerContext
    knowledge: Any = None  # mopsbot.knowledge.retrieval.Retriever


@dataclass
class ToolContext:
    deps: ToolDeps


@dataclass
class ToolResult:
    """A read tool's answer: a one-line summary for the model and the user, plus structured data."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    citations: list[dict[str, str]] = field(default_factory=list)
    ok: bool = True
