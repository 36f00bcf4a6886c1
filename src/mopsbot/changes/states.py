"""The change-request state machine: one table of allowed transitions; every transition is audited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from mopsbot.audit import record
from mopsbot.errors import UserFacingError
from mopsbot.store.models import ChangeRequest

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"pending_approval", "cancelled"}),
    "pending_approval": frozenset({"approved", "rejected", "cancelled", "expired"}),
    "approved": frozenset({"implementing", "cancelled", "failed"}),
    "implementing": frozenset({"implemented", "failed"}),
    "implemented": frozenset({"closed"}),
    "failed": frozenset({"closed"}),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
    "closed": frozenset(),
}
STATES = tuple(TRANSITIONS)
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
NEEDS_REASON = frozenset({"rejected", "cancelled", "failed"})


class InvalidTransition(UserFacingError):
    """The requested state change is not allowed from the current state; the message lists what is."""


def transition(session: Session, cr: ChangeRequest, to: str, actor: str, reason: str | None = None) -> None:
    """Move `cr` to `to` if the table allows it, and append the transition to the audit log."""
    allowed = TRANSITIONS.get(cr.state, frozenset())
    if to not in allowed:
        options = ", ".join(sorted(allowed)) or "none (final state)"
        raise InvalidTransition(f"{cr.id} is {cr.state}; it cannot become {to} (allowed: {options})")
    if to in NEEDS_REASON and not (reason or "").strip():
        raise InvalidTransition(f"moving {cr.id} to {to} needs a reason")
    before = cr.state
    cr.state = to
    cr.updated_at = datetime.now(UTC)
    record(
        session,
        actor=actor,
        event="change_request.transition",
        subject_type="change_request",
        subject_id=cr.id,
        data={"from": before, "to": to, "reason": reason},
    )
