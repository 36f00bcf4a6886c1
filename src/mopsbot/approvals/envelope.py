"""The sealed envelope of a pending action: what was shown and who may decide it, hashed into the audit chain.

At proposal the envelope is hashed (and HMAC-signed when a signing key is configured; the key is never stored)
and written in the `action.proposed` audit row. At decision and at execution the stored row is rebuilt into an
envelope and must match that row exactly; executors only ever see the verified envelope.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mopsbot.audit.chain import canonical, hash_of, utc_text
from mopsbot.errors import UserFacingError
from mopsbot.store.models import AuditEvent, PendingAction


class EnvelopeMismatch(UserFacingError):
    """The stored action no longer matches what was sealed at proposal; nothing is decided or executed."""


def canonical_json(payload: dict[str, Any]) -> str:
    """The one serialization of a payload that is shown, hashed, stored and executed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def groups_of(row: PendingAction) -> list[str]:
    return [g for g in (row.required_group or "").split(",") if g]


def envelope_of(row: PendingAction) -> dict[str, Any]:
    """The envelope as the row says it now (compared with the sealed one)."""
    return {
        "action_id": row.id,
        "kind": row.kind,
        "summary": row.summary,
        "risk": row.risk,
        "approver_groups": groups_of(row),
        "requesters": sorted(set(row.requesters or [])),
        "payload_sha256": sha256(row.payload),
        "expires_at": utc_text(row.expires_at),
        "category": row.category,
        "routing_reasons": list(row.routing_reasons or []),
        "provenance": list(row.provenance or []),
        "policy_version": row.policy_version,
        "channel_id": row.channel_id,
        "thread_ts": row.thread_ts,
        "conversation_id": row.conversation_id,
    }


def envelope_hash(envelope: dict[str, Any]) -> str:
    return sha256(canonical(envelope))


def sign(digest: str, key: str | None) -> str | None:
    return hmac.new(key.encode("utf-8"), digest.encode("utf-8"), hashlib.sha256).hexdigest() if key else None


@dataclass(frozen=True)
class SealedAction:
    """A pending action as sealed at proposal (verified), plus its payload text and the decision so far."""

    id: str
    kind: str
    summary: str
    risk: str
    approver_groups: tuple[str, ...]
    requesters: tuple[str, ...]
    payload_text: str
    expires_at: datetime
    category: str | None = None
    routing_reasons: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ()
    channel_id: str | None = None
    thread_ts: str | None = None
    conversation_id: str | None = None
    envelope_hash: str = ""
    decided_by: str | None = None
    decision_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.payload_text)


def _proposal_row(s: Session, action_id: str) -> AuditEvent:
    rows = list(
        s.scalars(
            select(AuditEvent).where(
                AuditEvent.subject_type == "pending_action",
                AuditEvent.subject_id == action_id,
                AuditEvent.event == "action.proposed",
            )
        )
    )
    if len(rows) != 1:
        raise EnvelopeMismatch(f"action {action_id} has {len(rows)} sealed proposals in the audit log; refused")
    row = rows[0]
    if hash_of(row) != row.row_hash:
        raise EnvelopeMismatch(f"the audit row sealing action {action_id} was edited; refused")
    following = s.get(AuditEvent, row.id + 1)
    if following is not None and following.prev_hash != row.row_hash:
        raise EnvelopeMismatch(f"the audit chain after the row sealing action {action_id} is broken; refused")
    return row


def sealed_envelope(s: Session, action_id: str) -> dict[str, Any]:
    """The envelope sealed for an action, from its (intact) audit row. Raises EnvelopeMismatch."""
    data = _proposal_row(s, action_id).data or {}
    envelope = data.get("envelope")
    if not isinstance(envelope, dict) or envelope_hash(envelope) != data.get("envelope_hash"):
        raise EnvelopeMismatch(f"the sealed envelope of action {action_id} does not match its hash")
    return envelope


def verify(s: Session, row: PendingAction, signing_key: str | None) -> SealedAction:
    """The sealed action, if the stored row still matches its envelope in the audit chain; else EnvelopeMismatch."""
    sealed_row = _proposal_row(s, row.id)
    data = sealed_row.data or {}
    sealed = data.get("envelope")
    if not isinstance(sealed, dict) or envelope_hash(sealed) != data.get("envelope_hash"):
        raise EnvelopeMismatch(f"the sealed envelope of action {row.id} does not match its hash; refused")
    if signing_key:
        expected = sign(data["envelope_hash"], signing_key)
        if not data.get("signature") or not hmac.compare_digest(expected or "", str(data["signature"])):
            raise EnvelopeMismatch(f"the envelope of action {row.id} is not signed with this deployment's key; refused")
    current = envelope_of(row)
    changed = sorted(k for k in set(sealed) | set(current) if sealed.get(k) != current.get(k))
    if changed:
        shown = ", ".join("payload" if k == "payload_sha256" else k for k in changed)
        raise EnvelopeMismatch(
            f"the stored action {row.id} no longer matches its sealed envelope ({shown} changed); refused"
        )
    return SealedAction(
        id=row.id,
        kind=sealed["kind"],
        summary=sealed["summary"],
        risk=sealed["risk"],
        approver_groups=tuple(sealed["approver_groups"]),
        requesters=tuple(sealed["requesters"]),
        payload_text=row.payload,
        expires_at=datetime.fromisoformat(sealed["expires_at"]).replace(tzinfo=UTC),
        category=sealed.get("category"),
        routing_reasons=tuple(sealed.get("routing_reasons") or ()),
        provenance=tuple(sealed.get("provenance") or ()),
        channel_id=sealed.get("channel_id"),
        thread_ts=sealed.get("thread_ts"),
        conversation_id=sealed.get("conversation_id"),
        envelope_hash=data["envelope_hash"],
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )
