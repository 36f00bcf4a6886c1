"""Append audit events to the chain; values under secret-looking keys and secret-looking text are redacted first."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mopsbot.audit.chain import GENESIS, as_stored, hash_of
from mopsbot.store.models import AuditEvent, AuditHead

SECRET_MARKERS = ("token", "secret", "password", "api_key", "apikey", "authorization", "cookie", "signing_key")
# URLs carry credentials in their query or user-info; only scheme://host/path... without them is kept
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)(?:[^\s/@]+@)?([^\s/?#]+)([^\s?#]*)(?:\?[^\s#]*)?(?:#\S*)?", re.I)
_BEARER = re.compile(r"(?i)\b(bearer|token|secret|password|key)([=: ]+)([A-Za-z0-9._~+/=-]{6,})")


def redact_text(text: str) -> str:
    """Text with URL credentials and query strings, and bearer-looking secrets, removed."""
    text = _URL.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}" + ("?[redacted]" if "?" in m.group(0) else ""), text
    )
    return _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)


def redact(value: Any) -> Any:
    """A copy of `value` with every entry whose key names a secret replaced by "[redacted]", and secrets in text."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(m in str(k).lower() for m in SECRET_MARKERS) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _head(session: Session) -> AuditHead:
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one_or_none()
    if head is None:  # a store created before the chain existed gets its head on first append
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


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
    head = _head(session)
    stored = as_stored(redact(data or {}))
    at = datetime.now(UTC)
    row = AuditEvent(
        id=int(head.last_id) + 1,
        at=at,
        actor=actor,
        event=event,
        subject_type=subject_type,
        subject_id=subject_id,
        data=stored,
        prev_hash=head.last_hash,
    )
    row.row_hash = hash_of(row)
    session.add(row)
    session.flush()
    head.last_id, head.last_hash = row.id, row.row_hash
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
