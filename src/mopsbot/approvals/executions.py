"""Executions of approved actions: one `action_executions` row per action, owned by one process under a lease.

The row is opened with the approval (same transaction), so an approved action always has one. A row still
`running` past its lease was left by a crash: ONE conditional UPDATE (status, owner and attempt as last read, lease
run out) takes it over, so of two replicas resuming at once exactly one wins. Finishing is fenced the same way: a
run whose execution was taken over meanwhile records nothing.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from mopsbot.approvals.decide import AlreadyDecided, DecisionRefused
from mopsbot.audit import record
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, PendingAction

SWEEPER = "mopsbot-sweeper"
SWEEPER_ATTEMPTS = 3  # an execution that keeps killing its process is failed, not resumed forever


class NothingToResume(DecisionRefused):
    """The action has no interrupted execution: it never started, or its execution already finished."""


class StillRunning(DecisionRefused):
    """The execution's lease has not run out, so its owner may still be running it."""


class TakenOver(AlreadyDecided):
    """Another process took the execution over first; its run records the outcome."""


@dataclass(frozen=True)
class Recovered:
    """An interrupted execution the sweeper finished: where to tell the thread, and what happened."""

    action_id: str
    kind: str
    channel_id: str | None
    thread_ts: str | None
    status: str  # executed | failed
    message: str


def process_owner() -> str:
    """This process's identity on the rows it runs: host:pid:random (the random part tells restarts apart)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def _equals(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


class ExecutionLedger:
    """The action_executions rows as one process (`owner`) opens, takes over and finishes them."""

    def __init__(self, store: Store, lease: timedelta, owner: str | None = None) -> None:
        self.store = store
        self.lease = lease
        self.owner = owner or process_owner()

    @staticmethod
    def key_of(action_id: str) -> str:
        return f"exec:{action_id}"

    def open(self, session: Session, action_id: str, now: datetime) -> str:
        """Add the `running` row in the caller's transaction (the approval's); returns its idempotency key."""
        key = self.key_of(action_id)
        session.add(
            ActionExecution(action_id=action_id, idempotency_key=key, status="running", started_at=_utc(now),
                            owner=self.owner, lease_until=_utc(now) + self.lease, attempts=1)
        )  # fmt: skip
        session.flush()
        return key

    def get(self, action_id: str) -> ActionExecution | None:
        with self.store.session() as s:
            row = s.scalars(select(ActionExecution).where(ActionExecution.idempotency_key == self.key_of(action_id)))
            execution = row.one_or_none()
            if execution is not None:
                s.expunge(execution)
        return execution

    def lease_end(self, execution: ActionExecution) -> datetime:
        """When the lease runs out (rows from before leases: one lease after they started)."""
        if execution.lease_until is not None:
            return _utc(execution.lease_until)
        return _utc(execution.started_at) + self.lease

    def _lapsed(self, now: datetime) -> Any:
        now = _utc(now)
        return or_(
            ActionExecution.lease_until < now,
            and_(ActionExecution.lease_until.is_(None), ActionExecution.started_at < now - self.lease),
        )

    def _as_read(self, execution: ActionExecution) -> Any:
        return and_(
            ActionExecution.idempotency_key == execution.idempotency_key,
            ActionExecution.status == "running",
            _equals(ActionExecution.owner, execution.owner),
            _equals(ActionExecution.attempts, execution.attempts),
        )

    def stuck(self, now: datetime) -> list[ActionExecution]:
        """Executions still `running` past their lease, oldest first."""
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(ActionExecution)
                    .where(ActionExecution.status == "running", self._lapsed(now))
                    .order_by(ActionExecution.started_at)
                )
            )
            s.expunge_all()
        return rows

    def take_over(self, execution: ActionExecution, actor: str, now: datetime, data: dict[str, Any]) -> int | None:
        """Own a lapsed execution (one conditional UPDATE) and audit `execution.resumed`; None if another won."""
        attempt = (execution.attempts or 1) + 1
        lease_until = _utc(now) + self.lease
        with self.store.session() as s:
            changed = s.execute(
                update(ActionExecution)
                .where(self._as_read(execution), self._lapsed(now))
                .values(owner=self.owner, lease_until=lease_until, attempts=attempt)
            ).rowcount
            if changed == 1:
                record(s, actor=actor, event="execution.resumed", subject_type="pending_action",
                       subject_id=execution.action_id,
                       data={"attempt": attempt, "previous_owner": execution.owner, "owner": self.owner,
                             "lease_until": lease_until.isoformat(), **data})  # fmt: skip
        return attempt if changed == 1 else None

    def finish(
        self, action_id: str, attempt: int, actor: str, result: dict[str, Any] | None, error: str | None,
    ) -> bool:  # fmt: skip
        """Record the outcome on the execution, the action and the audit log, if this run still owns the execution."""
        status = "executed" if error is None else "failed"
        with self.store.session() as s:
            changed = s.execute(
                update(ActionExecution)
                .where(
                    ActionExecution.idempotency_key == self.key_of(action_id),
                    ActionExecution.status == "running",
                    ActionExecution.owner == self.owner,
                    _equals(ActionExecution.attempts, attempt),
                )
                .values(status="succeeded" if error is None else "failed", result=result, error=error,
                        finished_at=datetime.now(UTC))
            ).rowcount  # fmt: skip
            if changed == 1:
                s.execute(update(PendingAction).where(PendingAction.id == action_id).values(status=status))
                data = {"result": result, "error": error} | ({"attempt": attempt} if attempt > 1 else {})
                record(s, actor=actor, event=f"action.{status}", subject_type="pending_action", subject_id=action_id,
                       data=data)  # fmt: skip
        return changed == 1

    def abandon(self, execution: ActionExecution, actor: str, now: datetime, error: str) -> bool:
        """Mark a lapsed execution and its action failed without running anything; False if another got it first."""
        with self.store.session() as s:
            changed = s.execute(
                update(ActionExecution)
                .where(self._as_read(execution), self._lapsed(now))
                .values(status="failed", error=error, finished_at=datetime.now(UTC))
            ).rowcount
            if changed == 1:
                s.execute(update(PendingAction).where(PendingAction.id == execution.action_id).values(status="failed"))
                record(s, actor=actor, event="action.failed", subject_type="pending_action",
                       subject_id=execution.action_id,
                       data={"result": None, "error": error, "attempt": execution.attempts, "interrupted": True,
                             "previous_owner": execution.owner})  # fmt: skip
        return changed == 1
