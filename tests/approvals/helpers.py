"""The Approvals facade driven with plain executor functions, for tests of the decision rules themselves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from mopsbot.approvals import Approvals, Proposal
from mopsbot.approvals.decide import DecisionResult
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.store.db import Store
from mopsbot.store.models import PendingAction

Executor = Callable[[str, Any], dict]


class FnHandler:
    """A handler whose execution is one function of (payload text, sealed action)."""

    def __init__(self, fn: Executor) -> None:
        self.fn = fn

    def on_proposed(self, session: Any, action: PendingAction, proposal: Proposal) -> dict[str, Any]:
        return {}

    def check(self, action: Any) -> None:
        return None

    def execute(self, action: Any) -> dict[str, Any]:
        return self.fn(action.payload_text, action)

    def on_closed(self, action: Any, status: str, actor: str, reason: str | None) -> None:
        return None


def approvals(store: Store, policy: ApprovalPolicy, executors: Mapping[str, Executor] | None = None) -> Approvals:
    return Approvals(store, policy, {k: FnHandler(v) for k, v in (executors or {}).items()})


def propose(store: Store, policy: ApprovalPolicy, *, kind: str, payload: dict, summary: str, risk: str,
            requester: str, conversation_id: str | None = None) -> PendingAction:  # fmt: skip
    action, _ = approvals(store, policy).propose(
        Proposal(kind, payload, summary, risk),  # type: ignore[arg-type]
        requester=requester,
        conversation_id=conversation_id,
    )
    return action


def decide(store: Store, policy: ApprovalPolicy, action_id: str, actor: str, decision: str, *,
           reason: str | None = None, executors: Mapping[str, Executor] | None = None,
           now: datetime | None = None) -> DecisionResult:  # fmt: skip
    return approvals(store, policy, executors).decide(action_id, actor, decision, reason=reason, now=now)  # type: ignore[arg-type]


def sweep_expired(store: Store, now: datetime | None = None) -> list[str]:
    return approvals(store, ApprovalPolicy()).sweep(now)
