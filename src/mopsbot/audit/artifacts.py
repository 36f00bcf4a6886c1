"""Model artifacts in the audit chain: training and registration record each file's SHA-256; loading checks it.

A manifest next to the artifact only checks itself (whoever edits coefficients can recompute it); the audit
chain is where the hashes an operator trained or registered are kept, so an artifact changed on disk, even with
a matching manifest, is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mopsbot.audit.chain import hash_of
from mopsbot.audit.recorder import record
from mopsbot.store.db import Store
from mopsbot.store.models import AuditEvent

EVENT = "model.registered"


class AuditLedger:
    """Records and looks up artifact hashes in a store's audit chain."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, name: str, version: str, hashes: dict[str, str], actor: str, source: str) -> None:
        with self.store.session() as s:
            record(s, actor=actor, event=EVENT, subject_type="model", subject_id=f"{name}/{version}",
                   data={"files": dict(hashes), "source": source})  # fmt: skip

    def lookup(self, name: str, version: str) -> dict[str, Any] | None:
        """The file hashes last recorded for this model version, from an audit row that is intact; else None."""
        with self.store.session() as s:
            row = s.scalars(
                select(AuditEvent)
                .where(AuditEvent.event == EVENT, AuditEvent.subject_id == f"{name}/{version}")
                .order_by(AuditEvent.id.desc())
            ).first()
            if row is None or hash_of(row) != row.row_hash:
                return None
            return dict((row.data or {}).get("files") or {})
