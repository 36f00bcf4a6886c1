"""Change requests in the state store: created when proposed, moved by decisions, forwarded when approved."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from sqlalchemy import select

from mopsbot.changes.model import ChangeRequestDraft
from mopsbot.changes.states import transition
from mopsbot.store.db import Store
from mopsbot.store.models import ChangeRequest, PendingAction

log = logging.getLogger(__name__)


class TicketingAdapter(Protocol):
    def forward(self, change: dict[str, Any]) -> str | None:
        """Send an approved change to the ticketing system; returns its reference there (or None)."""
        ...


class NoTicketing:
    """The default: approved changes stay in mopsbot only."""

    def forward(self, change: dict[str, Any]) -> str | None:
        return None


class WebhookTicketing:
    """POSTs the approved change as JSON to a Jira/ServiceNow-style webhook; the reply's `key` or `id` is kept."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    def forward(self, change: dict[str, Any]) -> str | None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(self.url, json=change, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        body = response.json() if response.content else {}
        return str(body.get("key") or body.get("id") or "") or None


def next_id(store: Store) -> str:
    with store.session() as s:
        ids = s.scalars(select(ChangeRequest.id)).all()
    numbers = [int(i.split("-")[1]) for i in ids if i.startswith("CR-") and i[3:].isdigit()]
    return f"CR-{max(numbers, default=0) + 1:04d}"


def create_pending(store: Store, draft: ChangeRequestDraft, requester: str, action_id: str) -> ChangeRequest:
    """Record the change as draft -> pending_approval, linked to its pending action."""
    for _ in range(5):  # ids are sequential; retry if another writer took the number
        cr_id = next_id(store)
        try:
            with store.session() as s:
                cr = ChangeRequest(
                    id=cr_id,
                    change_type=draft.change_type,
                    title=draft.title,
                    description=draft.description,
                    affected_systems=draft.affected_systems,
                    risk=draft.risk(),
                    implementation_plan=draft.implementation_plan,
                    backout_plan=draft.backout_plan,
                    test_plan=draft.test_plan,
                    state="draft",
                    requester_id=requester,
                    action_id=action_id,
                )
                s.add(cr)
                s.flush()
                transition(s, cr, "pending_approval", requester)
                s.expunge(cr)
                return cr
        except Exception as err:
            if "unique" not in str(err).lower() and "duplicate" not in str(err).lower():
                raise
    raise RuntimeError("could not allocate a change request id")


def as_dict(cr: ChangeRequest) -> dict[str, Any]:
    return {
        "id": cr.id,
        "type": cr.change_type,
        "title": cr.title,
        "description": cr.description,
        "affected_systems": cr.affected_systems,
        "risk": cr.risk,
        "state": cr.state,
        "implementation_plan": cr.implementation_plan,
        "backout_plan": cr.backout_plan,
        "test_plan": cr.test_plan,
        "requester": cr.requester_id,
        "external_ref": cr.external_ref,
        "action_id": cr.action_id,
        "created_at": cr.created_at.isoformat() if cr.created_at else None,
    }


def make_executor(store: Store, ticketing: TicketingAdapter):
    """The executor for approved change requests: approved state, then forwarded to ticketing."""

    def execute(payload: str, action: PendingAction) -> dict[str, Any]:
        approved = json.loads(payload)
        with store.session() as s:
            cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action.id)).one()
            transition(s, cr, "approved", action.decided_by or "system")
            ref = ticketing.forward({**as_dict(cr), "approved_payload": approved, "approved_by": action.decided_by})
            cr.external_ref = ref
            return {"change_request": cr.id, "state": cr.state, "external_ref": ref}

    return execute


def on_rejected_or_expired(store: Store, action: PendingAction) -> None:
    """Keep the change request in step with a rejected or expired action."""
    target = "rejected" if action.status == "rejected" else "expired"
    with store.session() as s:
        cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action.id)).one_or_none()
        if cr is not None and cr.state == "pending_approval":
            transition(s, cr, target, action.decided_by or "system", action.decision_reason or target)


def list_changes(store: Store, state: str | None = None, requester: str | None = None) -> list[dict[str, Any]]:
    with store.session() as s:
        q = select(ChangeRequest).order_by(ChangeRequest.id)
        if state:
            q = q.where(ChangeRequest.state == state)
        if requester:
            q = q.where(ChangeRequest.requester_id == requester)
        return [as_dict(cr) for cr in s.scalars(q)]


def get_change(store: Store, cr_id: str) -> dict[str, Any] | None:
    with store.session() as s:
        cr = s.get(ChangeRequest, cr_id.upper())
        return as_dict(cr) if cr else None
