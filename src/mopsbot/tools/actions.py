"""Wiring decisions to their effects: the executor for each action kind, and domain records kept in step."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mopsbot.approvals.decide import Decision, DecisionResult, Executor, decide, sweep_expired
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.campaigns.service import make_executor as campaign_executor
from mopsbot.changes.service import NoTicketing, TicketingAdapter, WebhookTicketing, on_rejected_or_expired
from mopsbot.changes.service import make_executor as change_executor
from mopsbot.store.db import Store
from mopsbot.store.models import PendingAction


def ticketing(webhook_url: str | None, token: str | None = None) -> TicketingAdapter:
    return WebhookTicketing(webhook_url, token) if webhook_url else NoTicketing()


def executors(store: Store, data_dir: Path, ticket: TicketingAdapter) -> dict[str, Executor]:
    changes = change_executor(store, ticket)
    return {
        "campaign_config": campaign_executor(store, data_dir / "campaigns"),
        "change_request": changes,
        "consent_change": changes,
    }


def decide_action(
    store: Store,
    policy: ApprovalPolicy,
    action_id: str,
    actor: str,
    decision: Decision,
    *,
    reason: str | None,
    data_dir: Path,
    ticket: TicketingAdapter,
    now: datetime | None = None,
) -> DecisionResult:
    """approvals.decide with the executors wired in; a rejection also closes the linked change request."""
    result = decide(
        store, policy, action_id, actor, decision, reason=reason, executors=executors(store, data_dir, ticket), now=now
    )
    if result.status == "rejected":
        _sync_change(store, action_id)
    return result


def sweep(store: Store, now: datetime | None = None) -> list[str]:
    """Expire overdue pending actions and their change requests."""
    expired = sweep_expired(store, now)
    for action_id in expired:
        _sync_change(store, action_id)
    return expired


def _sync_change(store: Store, action_id: str) -> None:
    with store.session() as s:
        action = s.get(PendingAction, action_id)
        assert action is not None
        s.expunge(action)
    if action.kind in ("change_request", "consent_change"):
        on_rejected_or_expired(store, action)
