"""What every tool shares: the context it receives (`ctx.deps`) and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mopsbot.approvals.handlers import Proposal
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
    change_policy: Any = None  # mopsbot.changes.policy.ChangePolicy (tools/changes.yaml taxonomy and rules)
    approvals: Any = None  # mopsbot.approvals.Approvals (for amendments: the sealed version they start from)
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


# What a write tool returns instead of acting: the exact payload an approver will see, its kind and route.
# The agent hands it to the Approvals facade; only an authorized approver's decision can make it run.
WriteProposal = Proposal


def person_ids(ctx: ToolContext, who: str | None) -> set[str]:
    """The user id `who` names: an id itself, or a person's name from the approval policy's people list."""
    who = (who or "").strip()
    policy = ctx.deps.approval_policy
    if not who:
        return set()
    if policy is None:
        return {who}
    by_name = {name.lower(): uid for uid, name in policy.people.items()}
    return {by_name.get(who.lower(), who)}
