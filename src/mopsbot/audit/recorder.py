"""Append audit events; values under secret-looking keys are redacted before they are stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mopsbot.store.models import AuditEvent

SECRET_MARKERS = ("token", "secret", "password", "api_key", "apikey", "authorization", "cookie")


def redact(value: Any) -> Any:
    """A copy of `value` with every entry whose key names a secret replaced by "[redacted]"."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(m in str(k).lower() for m in SECRET_MARKERS) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def record(
    session: Session,
    *,
    actor: str,
    event: str,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (so it commits or rolls back with the change it records)."""
    row = AuditEvent(
        actor=actor, event=event, subject_type=subject_type, subject_id=subject_id, data=redact(data or {})
    )
    session.add(row)
    session.flush()
    return row


def events_for(session: Session, subject_type: str, subject_id: str) -> list[AuditEvent]:
    """All events about one subject, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(query))
