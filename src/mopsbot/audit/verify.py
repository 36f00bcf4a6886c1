"""`mopsbot audit verify`: walk the chain and name the first row that is broken or missing.

Checks, in order: the append-only triggers are all there; every row follows the one before it (prev_hash) and
hashes to what it carries (row_hash); the head row points at the last row; every action, execution, change request
and campaign version the store holds has the audit row it must have (so a truncated log shows even when the
chain that is left is whole).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text

from mopsbot.audit.chain import EXPECTED_TRIGGERS, GENESIS, hash_of
from mopsbot.store.db import Store
from mopsbot.store.models import (
    ActionExecution,
    AuditEvent,
    AuditHead,
    CampaignVersion,
    ChangeRequest,
    PendingAction,
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    problem: str | None = None
    row_id: int | None = None

    @property
    def message(self) -> str:
        return f"audit chain intact: {self.rows} rows" if self.ok else f"audit chain broken: {self.problem}"


def installed_triggers(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE c.relname IN ('audit_events', 'audit_head') AND c.relnamespace = "
                    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND NOT t.tgisinternal"
                )
            )
        else:
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return {r[0] for r in rows}


def verify(store: Store) -> Verdict:
    """The first problem found, or ok with the number of rows."""
    expected = EXPECTED_TRIGGERS.get(store.engine.dialect.name, ())
    missing = [t for t in expected if t not in installed_triggers(store)]
    if missing:
        return Verdict(False, 0, f"trigger {missing[0]} is missing: the log can be changed without trace")
    with store.session() as s:
        prev_hash, prev_id, count = GENESIS, 0, 0
        for row in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(1000):
            count += 1
            if row.prev_hash != prev_hash:
                where = f"after row {prev_id}" if prev_id else "at the start"
                return Verdict(False, count, f"row {row.id} does not follow the chain: rows {where} are missing "
                               "or were changed", row.id)  # fmt: skip
            if hash_of(row) != row.row_hash:
                return Verdict(False, count, f"row {row.id} was edited: its contents no longer match its hash", row.id)
            prev_hash, prev_id = row.row_hash, row.id
        head = s.get(AuditHead, 1)
        if head is None:
            if count:
                return Verdict(False, count, "the chain's head row is missing")
        elif head.last_id != prev_id or head.last_hash != prev_hash:
            return Verdict(
                False,
                count,
                f"row {head.last_id} is missing: the chain's head says the log ends there, the table ends at "
                f"row {prev_id} (rows were deleted or the table was truncated)",
                int(head.last_id),
            )
        problem = _unrecorded(s)
        if problem:
            return Verdict(False, count, problem)
    return Verdict(True, count)


def _unrecorded(s) -> str | None:  # type: ignore[no-untyped-def]
    """A record in the store whose audit row is gone."""
    seen: dict[tuple[str | None, str | None], set[str]] = {}
    for subject_type, subject_id, event in s.execute(
        select(AuditEvent.subject_type, AuditEvent.subject_id, AuditEvent.event)
    ):
        seen.setdefault((subject_type, subject_id), set()).add(event)
    for action_id in s.scalars(select(PendingAction.id)):
        if "action.proposed" not in seen.get(("pending_action", action_id), set()):
            return f"pending action {action_id} has no 'action.proposed' row: audit rows are missing"
    for action_id, status in s.execute(select(ActionExecution.action_id, ActionExecution.status)):
        events = seen.get(("pending_action", action_id), set())
        if status != "running" and not events & {"action.executed", "action.failed"}:
            return f"the execution of action {action_id} has no audit row: audit rows are missing"
    for cr_id in s.scalars(select(ChangeRequest.id)):
        if "change_request.transition" not in seen.get(("change_request", cr_id), set()):
            return f"change request {cr_id} has no audit row: audit rows are missing"
    for action_id in s.scalars(select(CampaignVersion.action_id)):
        if "action.executed" not in seen.get(("pending_action", action_id), set()):
            return f"campaign version of action {action_id} has no audit row: audit rows are missing"
    return None
