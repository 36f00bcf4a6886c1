"""The approvals wiring every surface shares: the facade with each action kind's handler registered."""

from __future__ import annotations

from pathlib import Path

from mopsbot.approvals import Approvals
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.campaigns.service import CampaignConfigHandler
from mopsbot.changes.service import ChangeRequestHandler, Changes, TicketingAdapter, ticketing
from mopsbot.store.db import Store


def build_approvals(
    store: Store,
    policy: ApprovalPolicy,
    data_dir: Path,
    ticket: TicketingAdapter | None = None,
    signing_key: str | None = None,
    execution_lease_s: float = 300.0,
) -> Approvals:
    changes = ChangeRequestHandler(store, ticket or ticketing(None))
    return Approvals(
        store,
        policy,
        {
            "campaign_config": CampaignConfigHandler(store, data_dir / "campaigns"),
            "change_request": changes,
            "consent_change": changes,
        },
        signing_key=signing_key,
        execution_lease_s=execution_lease_s,
    )


__all__ = ["Changes", "build_approvals", "ticketing"]
