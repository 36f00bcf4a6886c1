"""Change requests in the state store: created when proposed, moved by decisions and by their people, forwarded
to ticketing when approved (built from the sealed payload only, never from the editable row)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mopsbot.approvals.envelope import EnvelopeMismatch, sealed_envelope
from mopsbot.approvals.handlers import NotReady
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit import events_for, record
from mopsbot.changes.model import PLANS, missing_plans
from mopsbot.changes.states import InvalidTransition, transition
from mopsbot.errors import UserFacingError
from mopsbot.store.db import Store
from mopsbot.store.models import ChangeRequest, PendingAction

log = logging.getLogger(__name__)
DECIDED_BY_APPROVAL = ("approved", "rejected", "expired", "pending_approval")
APPROVED_ALREADY = ("approved", "implementing", "implemented")


class TicketingAdapter(Protocol):
    def forward(self, change: dict[str, Any], idempotency_key: str | None = None) -> str | None:
        """Send an approved change to the ticketing system; returns its reference there (or None). Sent again with
        the same `idempotency_key` (a resumed execution), the system should answer with the ticket it made first."""
        ...


class NoTicketing:
    """The default: approved changes stay in mopsbot only."""

    def forward(self, change: dict[str, Any], idempotency_key: str | None = None) -> str | None:
        return None


class TicketingFailed(RuntimeError):
    """The ticketing webhook failed; the message never carries its URL or token."""


class WebhookTicketing:
    """POSTs the approved change as JSON to a Jira/ServiceNow-style webhook; the reply's `key` or `id` is kept.
    A resumed execution repeats the POST with the same `Idempotency-Key` header, so the receiver can deduplicate."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    def forward(self, change: dict[str, Any], idempotency_key: str | None = None) -> str | None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = httpx.post(self.url, json=change, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as err:  # the exception text names the URL (with its query): never pass it on
            raise TicketingFailed(f"the ticketing webhook could not be reached ({type(err).__name__})") from None
        if response.status_code >= 400:
            raise TicketingFailed(f"the ticketing webhook answered HTTP {response.status_code}")
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        return str(body.get("key") or body.get("id") or "") or None if isinstance(body, dict) else None


def ticketing(webhook_url: str | None, token: str | None = None) -> TicketingAdapter:
    return WebhookTicketing(webhook_url, token) if webhook_url else NoTicketing()


def _next_id(s: Session) -> str:
    ids = s.scalars(select(ChangeRequest.id)).all()
    numbers = [int(i.split("-")[1]) for i in ids if i.startswith("CR-") and i[3:].isdigit()]
    return f"CR-{max(numbers, default=0) + 1:04d}"


class ChangeRequestHandler:
    """Effects of change_request and consent_change actions.

    Idempotent per execution key (the state moves once, a stored ticket reference is reused, the webhook gets the
    key), so an interrupted run may be resumed unattended.
    """

    resumable = True

    def __init__(self, store: Store, ticket: TicketingAdapter) -> None:
        self.store = store
        self.ticket = ticket

    def on_proposed(self, session: Session, action: PendingAction, proposal: Any) -> dict[str, Any]:
        payload = proposal.payload
        existing = payload.get("change_id")
        if existing:  # an amended version of a change already filed: the change follows the new action
            cr = session.get(ChangeRequest, existing)
            if cr is None:
                raise UserFacingError(f"no change request {existing}")
            cr.action_id = action.id
            for plan in PLANS:
                setattr(cr, plan, payload.get(plan, ""))
            cr.requesters = sorted(set(cr.requesters or []) | set(action.requesters or []))
            record(session, actor=action.requester_id, event="change_request.amended", subject_type="change_request",
                   subject_id=cr.id, data={"action_id": action.id})  # fmt: skip
            return {"change_request": cr.id}
        # a third-party tool may propose this kind with its own payload: the record keeps what it can
        cr = ChangeRequest(
            id=_next_id(session),
            change_type=str(payload.get("change_type") or "normal"),
            title=str(payload.get("title") or action.summary)[:200],
            description=str(payload.get("description") or action.payload),
            affected_systems=list(payload.get("affected_systems") or []),
            fields=list(payload.get("fields") or []),
            category=payload.get("category") or action.category,
            risk=str(payload.get("risk") or action.risk),
            implementation_plan=payload.get("implementation_plan", ""),
            backout_plan=payload.get("backout_plan", ""),
            test_plan=payload.get("test_plan", ""),
            state="draft",
            requester_id=action.requester_id,
            requesters=list(action.requesters or []),
            action_id=action.id,
        )
        session.add(cr)
        session.flush()
        transition(session, cr, "pending_approval", action.requester_id)
        return {"change_request": cr.id}

    def check(self, action: Any) -> None:
        with self.store.session() as s:
            cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action.id)).one_or_none()
            state = cr.state if cr is not None else None
            cr_id = cr.id if cr is not None else None
        if state is not None and state != "pending_approval":
            raise NotReady(f"{cr_id} is {state}, so it can no longer be approved")
        payload = action.payload
        missing = missing_plans(payload, payload.get("change_type", "normal"), action.risk)
        if missing:
            names = ", ".join(m.replace("_", " ") for m in missing)
            raise NotReady(
                f"a {payload.get('change_type', 'normal')} {action.risk}-risk change needs its {names} before it can "
                'be approved; the requester can add them in the thread ("add plans: implementation ...; backout ...; '
                'test ...")',
                tuple(missing),
            )

    def execute(self, action: Any, key: str | None = None) -> dict[str, Any]:
        """Approved: the change moves to approved and the ticket is built from the sealed payload alone. Run again
        with the same `key` (a resume), the state is not moved twice and a ticket already filed is not sent again."""
        with self.store.session() as s:
            cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action.id)).one()
            if cr.state not in APPROVED_ALREADY:  # an interrupted earlier run may have moved it (and people since)
                transition(s, cr, "approved", action.decided_by or "system")
            cr_id, filed = cr.id, _filed(s, cr_id=cr.id, key=key)
        ref = filed or self.ticket.forward(_ticket(action, cr_id), idempotency_key=key)
        with self.store.session() as s:
            cr = s.get(ChangeRequest, cr_id)
            assert cr is not None
            cr.external_ref = ref
            if ref and key and not filed:  # kept in the audit chain: an edited external_ref cannot skip a ticket
                record(
                    s,
                    actor=action.decided_by or "system",
                    event="change_request.ticketed",
                    subject_type="change_request",
                    subject_id=cr_id,
                    data={"external_ref": ref, "key": key},
                )
        return {"change_request": cr_id, "state": "approved", "external_ref": ref}

    def on_closed(self, action: Any, status: str, actor: str, reason: str | None) -> None:
        if status not in ("rejected", "expired"):
            return
        with self.store.session() as s:
            cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action.id)).one_or_none()
            if cr is not None and cr.state == "pending_approval":
                transition(s, cr, status, actor, reason or status)


def _ticket(action: Any, cr_id: str) -> dict[str, Any]:
    """What the ticketing system receives: the sealed payload and who approved it, nothing from editable rows."""
    return {
        "id": cr_id,
        **{k: v for k, v in action.payload.items() if k != "change_id"},
        "requesters": list(action.requesters),
        "approved_by": action.decided_by,
        "action_id": action.id,
        "envelope_hash": action.envelope_hash,
    }


def _filed(s: Session, *, cr_id: str, key: str | None) -> str | None:
    """The ticket reference an earlier run with this execution key got, from the audit chain (not the editable row)."""
    if not key:
        return None
    for event in reversed(events_for(s, "change_request", cr_id)):
        if event.event == "change_request.ticketed" and (event.data or {}).get("key") == key:
            return str(event.data["external_ref"])
    return None


class Changes:
    """Reading change requests, and moving them through implementation (their people only)."""

    def __init__(self, store: Store, policy: ApprovalPolicy) -> None:
        self.store = store
        self.policy = policy

    def move(self, cr_id: str, to: str, actor: str, reason: str | None = None, via: str = "slack") -> dict[str, Any]:
        """Move a change (implementing, implemented, closed, cancelled, failed). Allowed to its requesters and to the
        members of its approver groups; every refusal is audited. Raises UserFacingError."""
        cr_id = cr_id.upper()
        if to in DECIDED_BY_APPROVAL:
            raise InvalidTransition(f"{to} is set by the approval flow, not by hand")
        with self.store.session() as s:
            cr = s.get(ChangeRequest, cr_id)
            if cr is None:
                raise UserFacingError(f"no change request {cr_id}")
            # who may move it comes from the envelope sealed in the audit chain, not from the editable rows
            try:
                sealed = sealed_envelope(s, cr.action_id) if cr.action_id else {}
            except EnvelopeMismatch:
                sealed = {}
            groups = list(sealed.get("approver_groups") or [])
            people = set(sealed.get("requesters") or [])
            allowed = actor in people or self.policy.in_any(actor, groups)
        why = ""
        if via in ("cli", "terminal") and not self.policy.allow_cli_decisions:
            why = f"moving change requests from the {via} is turned off (approvals.allow_cli_decisions: false)"
        elif not allowed:
            why = (
                f"{self.policy.name(actor)} may not move {cr_id}: only its requesters or "
                f"{' or '.join(groups) or 'its approver groups'} can"
            )
        if why:
            with self.store.session() as s:
                record(s, actor=actor, event="change_request.move_refused", subject_type="change_request",
                       subject_id=cr_id, data={"to": to, "via": via, "reason": why})  # fmt: skip
            raise UserFacingError(why)
        with self.store.session() as s:
            cr = s.get(ChangeRequest, cr_id)
            assert cr is not None
            transition(s, cr, to, actor, reason)
            return as_dict(cr)

    def list(self, state: str | None = None, requester: str | None = None) -> list[dict[str, Any]]:
        return list_changes(self.store, state, requester)

    def get(self, cr_id: str) -> dict[str, Any] | None:
        return get_change(self.store, cr_id)


def as_dict(cr: ChangeRequest) -> dict[str, Any]:
    return {
        "id": cr.id,
        "type": cr.change_type,
        "title": cr.title,
        "description": cr.description,
        "affected_systems": cr.affected_systems,
        "fields": cr.fields or [],
        "category": cr.category,
        "risk": cr.risk,
        "state": cr.state,
        "implementation_plan": cr.implementation_plan,
        "backout_plan": cr.backout_plan,
        "test_plan": cr.test_plan,
        "requester": cr.requester_id,
        "requesters": cr.requesters or [cr.requester_id],
        "external_ref": cr.external_ref,
        "action_id": cr.action_id,
        "created_at": cr.created_at.isoformat() if cr.created_at else None,
    }


def list_changes(store: Store, state: str | None = None, requester: str | None = None) -> list[dict[str, Any]]:
    with store.session() as s:
        q = select(ChangeRequest).order_by(ChangeRequest.id)
        if state:
            q = q.where(ChangeRequest.state == state)
        rows = [as_dict(cr) for cr in s.scalars(q)]
    return [r for r in rows if requester is None or requester in r["requesters"]]


def get_change(store: Store, cr_id: str) -> dict[str, Any] | None:
    with store.session() as s:
        cr = s.get(ChangeRequest, cr_id.upper())
        return as_dict(cr) if cr else None
