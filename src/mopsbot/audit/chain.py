"""The audit chain: each row carries the hash of the previous one, so a removed or edited row shows.

Appending takes the chain's head row under a lock (PostgreSQL: SELECT ... FOR UPDATE; SQLite: every write
transaction begins IMMEDIATE), so two replicas never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# the triggers that keep the log append-only, by dialect; `mopsbot audit verify` reports any that is missing
EXPECTED_TRIGGERS = {
    "sqlite": ("audit_events_no_update", "audit_events_no_delete", "audit_events_chain", "audit_head_forward",
               "audit_head_no_delete"),
    "postgresql": ("audit_events_append_only", "audit_events_no_truncate", "audit_events_chain", "audit_head_forward",
                   "audit_head_no_truncate"),
}  # fmt: skip


def canonical(value: Any) -> str:
    """The one JSON text of a value that is hashed (sorted keys, no spaces, non-JSON values as strings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def as_stored(value: Any) -> Any:
    """`value` as the JSON column gives it back, so the hash of what was written equals the hash of what is read."""
    return json.loads(canonical(value))


def utc_text(at: datetime) -> str:
    """A timestamp as hashed: UTC, microseconds, no offset (SQLite keeps no zone; PostgreSQL returns one)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def row_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    event: str,
    subject_type: str | None,
    subject_id: str | None,
    data: Any,
    prev_hash: str,
) -> str:
    body = {
        "id": int(id),
        "at": utc_text(at),
        "actor": actor,
        "event": event,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "data": data,
        "prev": prev_hash,
    }
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def hash_of(row: Any) -> str:
    """The hash a stored audit row should carry, recomputed from its columns."""
    return row_hash(
        id=row.id,
        at=row.at,
        actor=row.actor,
        event=row.event,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        data=row.data,
        prev_hash=row.prev_hash,
    )
