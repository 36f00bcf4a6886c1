"""Deciding a pending action: authorize (fail closed), change state once, execute the stored payload once.

Refusals, in the order they are checked: unknown action; already decided (says who and when); expired; the
requester deciding their own action; an actor in no approver group for the action's kind and risk (and nobody at
all when no group is configured); a rejection without a reason; a stored payload whose hash no longer matches.
Among concurrent deciders, one conditional UPDATE from `pending` picks exactly one winner; only the winner runs
the executor, under a unique idempotency key, with the payload exactly as stored and shown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.approvals.service import payload_hash
from mopsbot.audit import record
from mopsbot.errors import UserFacingError
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, Message, PendingAction

log = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
# An executor gets the payload text exactly as stored (and hashed) and the action; it returns a result to record.
Executor = Callable[[str, PendingAction], dict[str, Any]]


class DecisionRefused(UserFacingError):
    """The decision was not taken; the message says why."""


class ActionNotFound(DecisionRefused):
    pass


class AlreadyDecided(DecisionRefused):
    pass


class ActionExpired(DecisionRefused):
    pass


class SelfApprovalRefused(DecisionRefused):
    pass


class NotAuthorized(DecisionRefused):
    pass


class ReasonRequired(DecisionRefused):
    pass


class PayloadTampered(DecisionRefused):
    pass


@dataclass(frozen=True)
class DecisionResult:
    action_id: str
    status: str  # executed | failed | rejected
    decided_by: str
    decided_at: datetime
    result: dict[str, Any] | None = None
    error: str | None = None
    decided_by_name: str = ""

    @property
    def message(self) -> str:
        who = self.decided_by_name or self.decided_by
        if self.status == "rejected":
            return f"Rejected by {who}."
        if self.status == "executed":
            return f"Approved by {who} and executed once."
        return f"Approved by {who}, but execution failed: {self.error}"


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def decide(
    store: Store,
    policy: ApprovalPolicy,
    action_id: str,
    actor: str,
    decision: Decision,
    *,
    reason: str | None = None,
    executors: Mapping[str, Executor],
    now: datetime | None = None,
) -> DecisionResult:
    """Approve or reject. Raises a DecisionRefused subclass (with a clear message) for every refusal above."""
    now = now or datetime.now(UTC)
    reason = (reason or "").strip() or None
    with store.session() as s:
        action = s.get(PendingAction, action_id)
        if action is None:
            raise ActionNotFound(f"no pending action {action_id}")
        s.expunge(action)
    _refuse_if_closed(action, policy)
    if _aware(action.expires_at) <= now:
        _expire(store, action, now)
        raise ActionExpired(f"action {action_id} expired at {_aware(action.expires_at):%Y-%m-%d %H:%M} UTC")
    if actor == action.requester_id:
        raise SelfApprovalRefused("you requested this action, so you cannot decide it; another approver must")
    groups = policy.approver_groups(action.kind, action.risk)
    if decision == "approve" and not groups:
        raise NotAuthorized(
            f"no approver group is configured for {action.kind} at {action.risk} risk, so nobody can approve it"
        )
    if not policy.may_approve(actor, action.kind, action.risk):
        needed = " or ".join(groups) or "an approver group (none is configured)"
        raise NotAuthorized(
            f"{policy.name(actor)} is not in {needed}, which decides {action.kind} at {action.risk} risk"
        )
    if decision == "reject" and not reason:
        raise ReasonRequired("a rejection needs a reason")
    if decision == "approve" and payload_hash(action.payload) != action.payload_hash:
        _mark(store, action.id, "failed", actor, now, "payload changed after it was proposed")
        raise PayloadTampered(f"action {action_id}: the stored payload no longer matches the hash shown; refused")

    new_status = "approved" if decision == "approve" else "rejected"
    if not _mark(store, action.id, new_status, actor, now, reason):
        with store.session() as s:
            fresh = s.get(PendingAction, action_id)
            assert fresh is not None
            s.expunge(fresh)
        _refuse_if_closed(fresh, policy)
        raise AlreadyDecided(f"action {action_id} was decided concurrently")  # pragma: no cover - race window
    # the detached copy now says what the database says, for the executor and the outcome message
    action.status, action.decided_by, action.decided_at, action.decision_reason = new_status, actor, now, reason
    if decision == "reject":
        _outcome_event(store, action, f"{policy.name(actor)} rejected {action.summary!r}: {reason}")
        return DecisionResult(action.id, "rejected", actor, now, decided_by_name=policy.name(actor))
    return _execute_once(store, policy, action, actor, now, executors)


def _refuse_if_closed(action: PendingAction, policy: ApprovalPolicy) -> None:
    if action.status == "pending":
        return
    if action.status == "expired":
        raise ActionExpired(f"action {action.id} expired at {_aware(action.expires_at):%Y-%m-%d %H:%M} UTC")
    who = policy.name(action.decided_by) if action.decided_by else "nobody"
    when = f" at {_aware(action.decided_at):%Y-%m-%d %H:%M} UTC" if action.decided_at else ""
    raise AlreadyDecided(f"action {action.id} was already {action.status} by {who}{when}")


def _mark(store: Store, action_id: str, status: str, actor: str, now: datetime, reason: str | None) -> bool:
    """One conditional UPDATE from `pending`: True for the single caller that changed the row."""
    with store.session() as s:
        changed = s.execute(
            update(PendingAction)
            .where(PendingAction.id == action_id, PendingAction.status == "pending")
            .values(status=status, decided_by=actor, decided_at=now, decision_reason=reason)
        ).rowcount
        if changed == 1:
            record(
                s,
                actor=actor,
                event=f"action.{status}",
                subject_type="pending_action",
                subject_id=action_id,
                data={"reason": reason} if reason else {},
            )
    return changed == 1


def _expire(store: Store, action: PendingAction, now: datetime) -> None:
    with store.session() as s:
        changed = s.execute(
            update(PendingAction)
            .where(PendingAction.id == action.id, PendingAction.status == "pending")
            .values(status="expired", decided_at=now)
        ).rowcount
        if changed:
            record(s, actor="system", event="action.expired", subject_type="pending_action", subject_id=action.id)


def _execute_once(
    store: Store,
    policy: ApprovalPolicy,
    action: PendingAction,
    actor: str,
    now: datetime,
    executors: Mapping[str, Executor],
) -> DecisionResult:
    key = f"exec:{action.id}"
    try:
        with store.session() as s:
            s.add(ActionExecution(action_id=action.id, idempotency_key=key, status="running", started_at=now))
    except IntegrityError:  # another process holds the key: it executes, not us
        raise AlreadyDecided(f"action {action.id} is already being executed") from None
    executor = executors.get(action.kind)
    result: dict[str, Any] | None = None
    error: str | None = None
    if executor is None:
        error = f"no executor is configured for {action.kind} actions"
    else:
        try:
            result = executor(action.payload, action)
        except Exception as err:  # the failure is recorded and reported; the action never re-runs
            log.exception("executor for %s failed on action %s", action.kind, action.id)
            error = f"{type(err).__name__}: {err}"
    status = "executed" if error is None else "failed"
    finished = datetime.now(UTC)
    with store.session() as s:
        execution = s.scalars(select(ActionExecution).where(ActionExecution.idempotency_key == key)).one()
        execution.status = "succeeded" if error is None else "failed"
        execution.result = result
        execution.error = error
        execution.finished_at = finished
        s.execute(update(PendingAction).where(PendingAction.id == action.id).values(status=status))
        record(
            s,
            actor=actor,
            event=f"action.{status}",
            subject_type="pending_action",
            subject_id=action.id,
            data={"result": result, "error": error},
        )
    outcome = (
        f"{policy.name(actor)} approved {action.summary!r}; it ran once: {json.dumps(result, default=str)}"
        if error is None
        else f"{policy.name(actor)} approved {action.summary!r} but it failed: {error}"
    )
    _outcome_event(store, action, outcome)
    return DecisionResult(action.id, status, actor, now, result, error, policy.name(actor))


def _outcome_event(store: Store, action: PendingAction, text: str) -> None:
    """Put the outcome in the action's conversation so the agent sees it next turn."""
    if not action.conversation_id:
        return
    with store.session() as s:
        s.add(
            Message(conversation_id=action.conversation_id, role="event", content=text, data={"action_id": action.id})
        )


def sweep_expired(store: Store, now: datetime | None = None) -> list[str]:
    """Mark every pending action past its expiry as expired; returns their ids."""
    now = now or datetime.now(UTC)
    with store.session() as s:
        due = [
            a.id
            for a in s.scalars(select(PendingAction).where(PendingAction.status == "pending"))
            if _aware(a.expires_at) <= now
        ]
    expired = []
    for action_id in due:
        with store.session() as s:
            changed = s.execute(
                update(PendingAction)
                .where(PendingAction.id == action_id, PendingAction.status == "pending")
                .values(status="expired", decided_at=now)
            ).rowcount
            if changed:
                record(s, actor="system", event="action.expired", subject_type="pending_action", subject_id=action_id)
                expired.append(action_id)
    return expired
