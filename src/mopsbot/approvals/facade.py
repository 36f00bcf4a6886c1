"""The Approvals facade: propose, decide (authorize, fail closed), execute once, expire, supersede.

Every decision attempt is audited, refusals included, with the surface it came from. Refusals, in order: CLI
decisions turned off; unknown action; a stored row that no longer matches its sealed envelope; already decided
(by the audit chain, not only the row); expired; any requester deciding; an approval policy that changed the
route since proposal; an actor outside the sealed approver groups (nobody when none is configured); a rejection
without a reason; an action its handler says is not ready. One conditional UPDATE from `pending` picks the single
winner, which re-verifies the envelope and executes the sealed payload once under a unique idempotency key, owning
the execution under a lease. An execution a crash left `running` past its lease is resumed with the same key (by
an approver, or by the sweeper when its executor is idempotent) or failed visibly: see `resume` and `recover`.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mopsbot.approvals.decide import (
    ActionExpired,
    ActionNotFound,
    AlreadyDecided,
    Decision,
    DecisionRefused,
    DecisionResult,
    NotApprovable,
    NotAuthorized,
    PayloadTampered,
    PolicyChanged,
    ReasonRequired,
    SelfApprovalRefused,
    SurfaceNotAllowed,
    Via,
)
from mopsbot.approvals.envelope import (
    EnvelopeMismatch,
    SealedAction,
    canonical_json,
    envelope_hash,
    envelope_of,
    groups_of,
    sealed_envelope,
    sha256,
    sign,
    verify,
)
from mopsbot.approvals.executions import (
    SWEEPER,
    SWEEPER_ATTEMPTS,
    ExecutionLedger,
    NothingToResume,
    Recovered,
    StillRunning,
    TakenOver,
)
from mopsbot.approvals.handlers import ActionHandler, NotReady, Proposal, is_resumable, run_executor
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit import record, redact_text
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, AuditEvent, Message, PendingAction

log = logging.getLogger(__name__)
RISKS = ("low", "medium", "high")
CLOSING_EVENTS = ("action.approved", "action.rejected", "action.expired", "action.superseded")


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class Approvals:
    """Pending actions end to end. `handlers` maps an action kind to its effects; an execution runs under a lease
    of `execution_lease_s` seconds, owned by this instance (`executions.owner`)."""

    def __init__(
        self,
        store: Store,
        policy: ApprovalPolicy,
        handlers: Mapping[str, ActionHandler],
        signing_key: str | None = None,
        execution_lease_s: float = 300.0,
    ) -> None:
        self.store = store
        self.policy = policy
        self.handlers = dict(handlers)
        self._key = signing_key
        self.executions = ExecutionLedger(store, timedelta(seconds=execution_lease_s))
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests move time forward here

    # --- proposing -----------------------------------------------------------------------------------------

    def propose(
        self,
        proposal: Proposal,
        *,
        requester: str,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        conversation_id: str | None = None,
        provenance: tuple[str, ...] = (),
    ) -> tuple[PendingAction, dict[str, Any]]:
        """Store a pending action and seal its envelope in the audit chain. Nothing is executed here.

        Returns the action and what its handler linked to it (e.g. the change request id).
        """
        if proposal.risk not in RISKS:
            raise ValueError(f"risk must be one of {', '.join(RISKS)}")
        handler = self.handlers.get(proposal.action_kind)
        for attempt in range(5):  # handlers allocate sequential ids (CR-0001); retry when another writer took one
            try:
                return self._propose(proposal, handler, requester, channel_id, thread_ts, conversation_id, provenance)
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _propose(
        self,
        proposal: Proposal,
        handler: ActionHandler | None,
        requester: str,
        channel_id: str | None,
        thread_ts: str | None,
        conversation_id: str | None,
        provenance: tuple[str, ...],
    ) -> tuple[PendingAction, dict[str, Any]]:
        text = canonical_json(proposal.payload)
        groups = self.policy.approver_groups(proposal.action_kind, proposal.risk)
        now = datetime.now(UTC)
        requesters = sorted({canonical_user(r) for r in (requester, *proposal.requesters)} - {""})
        with self.store.session() as s:
            if proposal.supersedes:
                self._supersede(s, proposal.supersedes, requester, now)
            action = PendingAction(
                kind=proposal.action_kind,
                summary=proposal.summary,
                payload=text,
                payload_hash=sha256(text),
                risk=proposal.risk,
                required_group=",".join(groups) or None,
                requester_id=requester,
                requesters=requesters,
                category=proposal.category,
                routing_reasons=list(proposal.routing_reasons),
                provenance=list(provenance),
                policy_version=self.policy.version,
                channel_id=channel_id,
                thread_ts=thread_ts,
                conversation_id=conversation_id,
                status="pending",
                created_at=now,
                expires_at=now + timedelta(hours=self.policy.expiry_hours),
            )
            s.add(action)
            s.flush()
            s.refresh(action)  # expires_at as the database keeps it, so the envelope hashes what is read back
            envelope = envelope_of(action)
            digest = envelope_hash(envelope)
            action.envelope_hash = digest
            linked = handler.on_proposed(s, action, proposal) if handler else {}
            record(
                s,
                actor=requester,
                event="action.proposed",
                subject_type="pending_action",
                subject_id=action.id,
                data={"envelope": envelope, "envelope_hash": digest, "signature": sign(digest, self._key), **linked},
            )
            s.flush()
            s.expunge(action)
        return action, linked

    def _supersede(self, s: Any, old_id: str, actor: str, now: datetime) -> None:
        changed = s.execute(
            update(PendingAction)
            .where(PendingAction.id == old_id, PendingAction.status == "pending")
            .values(status="superseded", decided_at=now, decided_by=actor)
        ).rowcount
        if changed != 1:
            raise DecisionRefused(f"action {old_id} is no longer pending, so it cannot be amended")
        record(s, actor=actor, event="action.superseded", subject_type="pending_action", subject_id=old_id)

    # --- reading -------------------------------------------------------------------------------------------

    def sealed(self, action_id: str) -> SealedAction:
        """The action as sealed at proposal, verified against the audit chain. Raises EnvelopeMismatch, KeyError."""
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            if row is None:
                raise KeyError(action_id)
            return verify(s, row, self._key)

    def get(self, action_id: str) -> dict[str, Any] | None:
        """The action as approvers see it (requesters, groups, payload, hashes, route reasons, provenance)."""
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            if row is not None:
                s.expunge(row)
        return self._view(row) if row else None  # outside the transaction: a handler's check opens its own

    def list(self, status: str | None = "pending") -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(PendingAction).order_by(PendingAction.created_at)
            if status:
                q = q.where(PendingAction.status == status)
            rows = list(s.scalars(q))
            s.expunge_all()
        return [self._view(a) for a in rows]

    def _view(self, a: PendingAction) -> dict[str, Any]:
        import json

        not_ready: list[str] = []
        missing: list[str] = []
        handler = self.handlers.get(a.kind)
        if handler is not None and a.status == "pending":
            try:
                handler.check(_unverified(a))
            except NotReady as err:
                not_ready, missing = [str(err)], list(err.missing)
        return {
            "id": a.id,
            "kind": a.kind,
            "summary": a.summary,
            "status": a.status,
            "risk": a.risk,
            "category": a.category,
            "requester": a.requester_id,
            "requesters": list(a.requesters or [a.requester_id]),
            "approver_groups": groups_of(a),
            "required_group": a.required_group,
            "routing_reasons": list(a.routing_reasons or []),
            "provenance": list(a.provenance or []),
            "not_ready": not_ready,
            "missing_plans": missing,
            "payload_hash": a.payload_hash,
            "envelope_hash": a.envelope_hash,
            "payload": json.loads(a.payload),
            "created_at": a.created_at,
            "expires_at": a.expires_at,
            "decided_by": a.decided_by,
            "decided_at": a.decided_at,
            "reason": a.decision_reason,
            "channel_id": a.channel_id,
            "thread_ts": a.thread_ts,
        }

    # --- deciding ------------------------------------------------------------------------------------------

    def decide(
        self,
        action_id: str,
        actor: str,
        decision: Decision,
        *,
        reason: str | None = None,
        via: Via = "slack",
        os_user: str | None = None,
        now: datetime | None = None,
    ) -> DecisionResult:
        """Approve or reject. Raises a DecisionRefused subclass (with a clear message); every attempt is audited."""
        if via == "cli" and os_user is None:
            os_user = _os_user()
        actor = canonical_user(actor)
        try:
            return self._decide(action_id, actor, decision, reason, via, os_user, now or self.clock())
        except DecisionRefused as err:
            self._audit_refusal(action_id, actor, decision, via, os_user, str(err))
            raise
        except EnvelopeMismatch as err:
            self._audit_refusal(action_id, actor, decision, via, os_user, str(err))
            raise PayloadTampered(str(err)) from None

    def _audit_refusal(
        self, action_id: str, actor: str, decision: str, via: str, os_user: str | None, why: str
    ) -> None:
        try:
            with self.store.session() as s:
                record(
                    s,
                    actor=actor,
                    event="decision.refused",
                    subject_type="pending_action",
                    subject_id=action_id[:64],
                    data={"decision": decision, "via": via, "os_user": os_user, "reason": why},
                )
        except Exception:  # the refusal stands even if it cannot be written down; the operator sees the log
            log.exception("could not audit a refused decision on %s", action_id)

    def _decide(
        self, action_id: str, actor: str, decision: Decision, reason: str | None, via: Via, os_user: str | None,
        now: datetime,
    ) -> DecisionResult:  # fmt: skip
        reason = (reason or "").strip() or None
        if via in ("cli", "terminal") and not self.policy.allow_cli_decisions:
            # the terminal chat, like the CLI, acts as whichever user it is started with: no signed identity
            raise SurfaceNotAllowed(
                f"decisions from the {via} are turned off (approvals.allow_cli_decisions: false); decide in the thread"
            )
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            if row is None:
                raise ActionNotFound(f"no pending action {action_id}")
            sealed = verify(s, row, self._key)
            closing = s.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.subject_type == "pending_action",
                    AuditEvent.subject_id == action_id,
                    AuditEvent.event.in_(CLOSING_EVENTS),
                )
                .order_by(AuditEvent.id)
            ).first()
            status = row.status
            s.expunge(row)
        if closing is not None or status != "pending":
            raise self._closed(row, closing)
        if sealed.expires_at <= now:
            self._expire(action_id, now)
            raise ActionExpired(f"action {action_id} expired at {sealed.expires_at:%Y-%m-%d %H:%M} UTC")
        self._authorize(sealed, actor, "decide", approving=decision == "approve")
        if decision == "reject" and not reason:
            raise ReasonRequired("a rejection needs a reason")
        handler = self.handlers.get(sealed.kind)
        if decision == "approve" and handler is not None:
            try:
                handler.check(sealed)
            except NotReady as err:
                raise NotApprovable(str(err)) from None
        new_status = "approved" if decision == "approve" else "rejected"
        if not self._mark(action_id, new_status, actor, now, reason, via, os_user, sealed.envelope_hash):
            with self.store.session() as s:
                fresh = s.get(PendingAction, action_id)
                assert fresh is not None
                s.expunge(fresh)
            raise self._closed(fresh, None)
        name = self.policy.name(actor)
        if decision == "reject":
            if handler is not None:
                handler.on_closed(sealed, "rejected", actor, reason)
            self._outcome_event(sealed, f"{name} rejected {sealed.summary!r}: {reason}")
            return DecisionResult(action_id, "rejected", actor, now, decided_by_name=name)
        return self._run(action_id, handler, 1, approver=actor, actor=actor, decided_at=now)

    def _authorize(self, sealed: SealedAction, actor: str, verb: str, *, approving: bool = True) -> None:
        """Refuse requesters, a changed route and anyone outside the sealed approver groups (decide and resume)."""
        if actor in sealed.requesters:
            raise SelfApprovalRefused(
                "you requested this action or shaped it (requesters: "
                f"{', '.join(self.policy.name(r) for r in sealed.requesters)}), so you cannot {verb} it; another "
                "approver must"
            )
        current = self.policy.approver_groups(sealed.kind, sealed.risk)
        if set(current) != set(sealed.approver_groups):
            raise PolicyChanged(
                "the approval policy for this action changed since it was proposed "
                f"(then: {', '.join(sealed.approver_groups) or 'nobody'}; now: {', '.join(current) or 'nobody'}); "
                "propose it again"
            )
        groups = sealed.approver_groups
        if approving and not groups:
            raise NotAuthorized(
                f"no approver group is configured for {sealed.kind} at {sealed.risk} risk, so nobody can approve it"
            )
        if not self.policy.in_any(actor, groups):
            needed = " or ".join(groups) or "an approver group (none is configured)"
            raise NotAuthorized(
                f"{self.policy.name(actor)} is not in {needed}, which decides {sealed.kind} at {sealed.risk} risk"
            )

    def _closed(self, row: PendingAction, closing: AuditEvent | None) -> DecisionRefused:
        if row.status == "expired" or (closing is not None and closing.event == "action.expired"):
            return ActionExpired(f"action {row.id} expired at {_aware(row.expires_at):%Y-%m-%d %H:%M} UTC")
        if row.status == "superseded" or (closing is not None and closing.event == "action.superseded"):
            return AlreadyDecided(f"action {row.id} was replaced by an amended version; decide that one instead")
        who = closing.actor if closing is not None else row.decided_by
        at = closing.at if closing is not None else row.decided_at
        status = row.status if row.status != "pending" else (closing.event.split(".")[1] if closing else "decided")
        when = f" at {_aware(at):%Y-%m-%d %H:%M} UTC" if at else ""
        return AlreadyDecided(f"action {row.id} was already {status} by {self.policy.name(who or 'nobody')}{when}")

    def _mark(
        self, action_id: str, status: str, actor: str, now: datetime, reason: str | None, via: str,
        os_user: str | None, sealed_hash: str,
    ) -> bool:  # fmt: skip
        """One conditional UPDATE from `pending`: True for the single caller that changed the row. An approval
        opens its execution in the same transaction, so no crash leaves an approved action without one."""
        with self.store.session() as s:
            changed = s.execute(
                update(PendingAction)
                .where(PendingAction.id == action_id, PendingAction.status == "pending")
                .values(status=status, decided_by=actor, decided_at=now, decision_reason=reason)
            ).rowcount
            if changed == 1:
                if status == "approved":
                    self.executions.open(s, action_id, now)
                record(
                    s,
                    actor=actor,
                    event=f"action.{status}",
                    subject_type="pending_action",
                    subject_id=action_id,
                    data={"reason": reason, "via": via, "os_user": os_user, "envelope_hash": sealed_hash},
                )
        return changed == 1

    def _expire(self, action_id: str, now: datetime) -> bool:
        with self.store.session() as s:
            changed = s.execute(
                update(PendingAction)
                .where(PendingAction.id == action_id, PendingAction.status == "pending")
                .values(status="expired", decided_at=now)
            ).rowcount
            if changed:
                record(s, actor="system", event="action.expired", subject_type="pending_action", subject_id=action_id)
        if changed:
            self._close_handler(action_id, "expired")
        return bool(changed)

    def _close_handler(self, action_id: str, status: str) -> None:
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            assert row is not None
            sealed = _unverified(row)
        handler = self.handlers.get(sealed.kind)
        if handler is not None:
            handler.on_closed(sealed, status, "system", status)

    def _run(
        self, action_id: str, handler: ActionHandler | None, attempt: int, *, approver: str, actor: str,
        decided_at: datetime,
    ) -> DecisionResult:  # fmt: skip
        """Re-verify the sealed envelope and run the executor under the execution's key; record the outcome once.

        `approver` approved the action; `actor` runs this attempt (the approver, or whoever resumed it).
        Raises TakenOver when another process took the execution over while this run was past its lease.
        """
        key = self.executions.key_of(action_id)
        result: dict[str, Any] | None = None
        error: str | None = None
        sealed: SealedAction | None = None
        try:
            with self.store.session() as s:  # verified again at execution: nothing edited since the decision runs
                row = s.get(PendingAction, action_id)
                assert row is not None
                sealed = verify(s, row, self._key)
            sealed = SealedAction(**{**sealed.__dict__, "decided_by": approver})
            if handler is None:
                error = f"no executor is configured for {sealed.kind} actions"
            else:
                result = run_executor(handler, sealed, key)
        except EnvelopeMismatch as err:
            error = str(err)
        except Exception as err:  # the failure is recorded and reported; a failed execution is never re-run
            log.exception("executor for action %s failed", action_id)
            error = redact_text(f"{type(err).__name__}: {err}")
        if not self.executions.finish(action_id, attempt, actor, result, error):
            raise TakenOver(
                f"action {action_id} ran past its execution lease and another process took it over; that run "
                "records the outcome"
            )
        status = "executed" if error is None else "failed"
        name = self.policy.name(approver)
        if sealed is not None:
            outcome = (
                f"{name} approved {sealed.summary!r}; it ran once: {canonical_json(result or {})}"
                if error is None
                else f"{name} approved {sealed.summary!r} but it failed: {error}"
            )
            if attempt > 1:
                outcome += f" (resumed by {self.policy.name(actor)} after an interrupted run)"
            self._outcome_event(sealed, outcome)
        return DecisionResult(action_id, status, approver, decided_at, result, error, name)

    # --- recovering interrupted executions -----------------------------------------------------------------

    def resume(
        self, action_id: str, actor: str, *, via: Via = "slack", os_user: str | None = None, now: datetime | None = None
    ) -> DecisionResult:
        """Finish an approved action whose execution a crash left `running` past its lease: take it over, re-verify
        the envelope and run the executor with the same idempotency key. Allowed to the action's approvers as for a
        decision. Raises a DecisionRefused subclass (NothingToResume, StillRunning, TakenOver, SelfApprovalRefused,
        NotAuthorized, PayloadTampered, ...); every refusal is audited."""
        if via == "cli" and os_user is None:
            os_user = _os_user()
        actor = canonical_user(actor)
        try:
            return self._resume(action_id, actor, now or self.clock(), {"via": via, "os_user": os_user}, person=True)
        except DecisionRefused as err:
            self._audit_refusal(action_id, actor, "resume", via, os_user, str(err))
            raise
        except EnvelopeMismatch as err:
            self._audit_refusal(action_id, actor, "resume", via, os_user, str(err))
            raise PayloadTampered(str(err)) from None

    def _resume(
        self, action_id: str, actor: str, now: datetime, context: dict[str, Any], *, person: bool
    ) -> DecisionResult:
        via = context["via"]
        if person and via in ("cli", "terminal") and not self.policy.allow_cli_decisions:
            raise SurfaceNotAllowed(
                f"decisions from the {via} are turned off (approvals.allow_cli_decisions: false); resume in the thread"
            )
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            if row is None:
                raise ActionNotFound(f"no pending action {action_id}")
            sealed = verify(s, row, self._key)
            approval = s.scalars(
                select(AuditEvent).where(
                    AuditEvent.subject_type == "pending_action",
                    AuditEvent.subject_id == action_id,
                    AuditEvent.event == "action.approved",
                )
            ).first()
            status, decided_at = row.status, row.decided_at
        if person:
            self._authorize(sealed, actor, "resume")
        execution = self.executions.get(action_id)
        if execution is None or approval is None:
            raise NothingToResume(f"nothing to resume: action {action_id} is {status} and never ran")
        if execution.status != "running":
            raise NothingToResume(f"nothing to resume: the execution of action {action_id} already {execution.status}")
        if self.executions.lease_end(execution) >= now:
            raise StillRunning(
                f"action {action_id} is still running on {execution.owner or 'an unknown process'} until "
                f"{self.executions.lease_end(execution):%Y-%m-%d %H:%M:%S} UTC; resume it after that if it is stuck"
            )
        attempt = self.executions.take_over(execution, actor, now, context)
        if attempt is None:
            raise TakenOver(f"action {action_id} was just resumed by another process")
        return self._run(
            action_id,
            self.handlers.get(sealed.kind),
            attempt,
            approver=approval.actor,
            actor=actor,
            decided_at=_aware(decided_at) if decided_at else now,
        )

    def recover(self, now: datetime | None = None) -> list[Recovered]:
        """Finish every execution a crash left `running` past its lease (the `serve` sweeper calls this).

        One whose executor is idempotent (`resumable`) is resumed as mopsbot-sweeper with the same key, up to
        SWEEPER_ATTEMPTS attempts. Any other, or one whose stored row no longer matches its envelope, is marked failed
        with its action, the error saying it was interrupted and may have partly run: a person checks the target
        system and proposes it again, since repeating it blindly could do it twice. Executions within their lease
        are left alone. Returns what it finished (with the thread to tell); one taken first by a person or another
        replica is left out.
        """
        now = now or self.clock()
        return [done for execution in self.executions.stuck(now) if (done := self._recover(execution, now))]

    def _recover(self, execution: ActionExecution, now: datetime) -> Recovered | None:
        action_id = execution.action_id
        with self.store.session() as s:
            row = s.get(PendingAction, action_id)
            assert row is not None
            try:
                sealed: SealedAction | None = verify(s, row, self._key)
                why = None
            except EnvelopeMismatch as err:
                sealed, why = None, str(err)
            try:
                envelope = sealed_envelope(s, action_id)
            except EnvelopeMismatch:
                envelope = {}
            kind = str(envelope.get("kind") or row.kind)
        thread = {"action_id": action_id, "kind": kind, "channel_id": envelope.get("channel_id"),
                  "thread_ts": envelope.get("thread_ts")}  # fmt: skip
        attempts = execution.attempts or 1
        if sealed is not None and is_resumable(self.handlers.get(sealed.kind)) and attempts < SWEEPER_ATTEMPTS:
            try:
                result = self._resume(action_id, SWEEPER, now, {"via": "sweeper"}, person=False)
            except (DecisionRefused, EnvelopeMismatch) as err:  # a person or another replica got there first
                log.info("not resuming action %s: %s", action_id, type(err).__name__)
                return None
            text = "completed" if result.status == "executed" else f"failed: {result.error}"
            return Recovered(**thread, status=result.status, message=f"Resumed after an interrupted run; {text}")
        where = execution.owner or "an unknown process"
        if why is None and attempts >= SWEEPER_ATTEMPTS:
            why = f"interrupted {attempts} times (last on {where}); not resumed again: check it, then propose it again"
        why = why or (
            f"interrupted while running on {where}; a {kind} action is not safe to re-run automatically and may have "
            "partly run: check it, then propose it again"
        )
        if not self.executions.abandon(execution, SWEEPER, now, why):
            return None
        if sealed is not None:
            self._outcome_event(sealed, f"{sealed.summary!r} was approved but did not finish: {why}")
        return Recovered(**thread, status="failed", message=f"Execution failed: {why}")

    def _outcome_event(self, action: SealedAction, text: str) -> None:
        """Put the outcome in the action's conversation so the agent sees it next turn."""
        if not action.conversation_id:
            return
        with self.store.session() as s:
            s.add(
                Message(
                    conversation_id=action.conversation_id, role="event", content=text, data={"action_id": action.id}
                )
            )

    def sweep(self, now: datetime | None = None) -> list[str]:
        """Mark every pending action past its expiry as expired (and close its domain records); returns their ids."""
        now = now or self.clock()
        with self.store.session() as s:
            due = [
                a.id
                for a in s.scalars(select(PendingAction).where(PendingAction.status == "pending"))
                if _aware(a.expires_at) <= now
            ]
        return [action_id for action_id in due if self._expire(action_id, now)]


def _unverified(row: PendingAction) -> SealedAction:
    """The row as it stands, for previews and closing domain records (never for executing)."""
    return SealedAction(
        id=row.id,
        kind=row.kind,
        summary=row.summary,
        risk=row.risk,
        approver_groups=tuple(groups_of(row)),
        requesters=tuple(row.requesters or ()),
        payload_text=row.payload,
        expires_at=_aware(row.expires_at),
        category=row.category,
        conversation_id=row.conversation_id,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )


def canonical_user(user_id: str | None) -> str:
    """One spelling of a Slack user id (" u07pr0002 " is U07PR0002), so nobody slips past the requester check."""
    text = (user_id or "").strip()
    return text.upper() if re.fullmatch(r"[UuWw][A-Za-z0-9]{2,}", text) else text


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"
