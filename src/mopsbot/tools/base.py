"""What every tool shares: the context it receives (`ctx.deps`) and the result it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from mopsbot.caller import CallerContext


@dataclass
class ToolDeps:
    """Per-request dependencies; tools never read the environment or globals."""

    caller: CallerContext
    knowledge: Any = None  # mopsbot.knowledge.retrieval.Retriever
    store: Any = None  # mopsbot.store.db.Store (the bot's own state: drafts, change requests)
    campaign_policy: Any = None  # mopsbot.campaigns.policy.CampaignPolicy
    approval_policy: Any = None  # mopsbot.approvals.policy.ApprovalPolicy
    metrics: Any = None  # mopsbot.metrics.engine.MetricsEngine (catalog + read-only warehouse)
    predictions: Any = None  # mopsbot.predictions.service.Predictions (model cards + verified artifacts)
    today: date = field(default_factory=date.today)


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


@dataclass(frozen=True)
class WriteProposal:
    """What a write tool returns instead of acting: the exact payload an approver will see and the action kind.

    The agent stores it as a pending action; only an authorized approver's decision can make it run.
    """

    action_kind: str
    payload: dict[str, Any]
    summary: str
    risk: Literal["low", "medium", "high"] = "medium"
    preview: str = ""
    # called with the new pending action's id, to link domain records (e.g. a change request) to it
    after_propose: Callable[[str], dict[str, Any]] | None = None
