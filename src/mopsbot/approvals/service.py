"""Proposing a pending action: the exact payload is frozen (canonical JSON + SHA-256) when it is proposed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit import record
from mopsbot.store.db import Store
from mopsbot.store.models import PendingAction

RISKS = ("low", "medium", "high")


def canonical_json(payload: dict[str, Any]) -> str:
    """The one serialization of a payload that is shown, hashed, stored and executed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def payload_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def propose(
    store: Store,
    policy: ApprovalPolicy,
    *,
    kind: str,
    payload: dict[str, Any],
    summary: str,
    risk: str,
    requester: str,
    channel_id: str | None = None,
    thread_ts: str | None = None,
    conversation_id: str | None = None,
) -> PendingAction:
    """Store a pending action that waits for an authorized approver. Nothing is executed here.

    If no approver group is configured for (kind, risk) the action is still recorded, with no required group:
    nobody can approve it, which the preview says.
    """
    if risk not in RISKS:
        raise ValueError(f"risk must be one of {', '.join(RISKS)}")
    text = canonical_json(payload)
    groups = policy.approver_groups(kind, risk)
    now = datetime.now(UTC)
    with store.session() as s:
        action = PendingAction(
            kind=kind,
            summary=summary,
            payload=text,
            payload_hash=payload_hash(text),
            risk=risk,
            required_group=",".join(groups) or None,
            requester_id=requester,
            channel_id=channel_id,
            thread_ts=thread_ts,
            conversation_id=conversation_id,
            status="pending",
            created_at=now,
            expires_at=now + timedelta(hours=policy.expiry_hours),
        )
        s.add(action)
        s.flush()
        record(
            s,
            actor=requester,
            event="action.proposed",
            subject_type="pending_action",
            subject_id=action.id,
            data={"kind": kind, "risk": risk, "payload_hash": action.payload_hash, "required_group": groups},
        )
        s.expunge(action)
    return action
