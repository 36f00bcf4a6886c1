"""Every refusal of the approval service, exactly-once execution under concurrency, and payload integrity."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from mopsbot.approvals.decide import (
    ActionExpired,
    ActionNotFound,
    AlreadyDecided,
    NotAuthorized,
    PayloadTampered,
    ReasonRequired,
    SelfApprovalRefused,
)
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, AuditEvent, Conversation, Message, PendingAction
from tests.approvals.helpers import decide, propose, sweep_expired

REPO = Path(__file__).resolve().parents[2]
POLICY = ApprovalPolicy.load(REPO / "tools")
SAM, PRIYA, DANA, RACHEL = "U07SC0005", "U07PR0002", "U07DW0001", "U07RK0009"


class Recorder:
    """An executor that remembers every payload it ran (thread-safe)."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, payload: str, action: PendingAction) -> dict:
        with self.lock:
            self.runs.append(payload)
        return {"ok": True}


@pytest.fixture
def store(store_url: str) -> Store:
    return Store.open(store_url)


def _propose(store: Store, risk: str = "medium", kind: str = "change_request", requester: str = SAM) -> PendingAction:
    with store.session() as s:
        conv = Conversation(channel_id="C07MKTG001", thread_ts=uuid.uuid4().hex)
        s.add(conv)
        s.flush()
        conv_id = conv.id
    return propose(
        store,
        POLICY,
        kind=kind,
        payload={"title": "Consent checkbox", "risk": risk},
        summary="Add box",
        risk=risk,
        requester=requester,
        conversation_id=conv_id,
    )


def test_authorized_approval_executes_the_stored_payload_once(store: Store) -> None:
    action = _propose(store)
    run = Recorder()
    result = decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": run})
    assert result.status == "executed" and result.decided_by == DANA
    assert run.runs == [action.payload] == ['{"risk":"medium","title":"Consent checkbox"}']  # byte for byte
    with store.session() as s:
        assert s.get(PendingAction, action.id).status == "executed"  # type: ignore[union-attr]
        events = [e.event for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert events == ["action.proposed", "action.approved", "action.executed"]
        outcome = s.scalars(select(Message).where(Message.role == "event")).one()
        assert "Dana Whitfield approved 'Add box'" in outcome.content  # the agent sees it next turn


def test_second_decision_is_told_who_decided_and_when(store: Store) -> None:
    action = _propose(store)
    decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": Recorder()})
    with pytest.raises(AlreadyDecided, match=r"already executed by Dana Whitfield at \d{4}-\d\d-\d\d \d\d:\d\d UTC"):
        decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": Recorder()})


def test_requester_cannot_approve_their_own_action(store: Store) -> None:
    action = _propose(store, requester=DANA)
    with pytest.raises(SelfApprovalRefused):
        decide(store, POLICY, action.id, DANA, "approve", executors={})


def test_someone_outside_the_approver_groups_is_refused(store: Store) -> None:
    action = _propose(store, risk="medium")  # change_request medium: mops-directors only
    with pytest.raises(NotAuthorized, match="Priya Raman is not in mops-directors"):
        decide(store, POLICY, action.id, PRIYA, "approve", executors={})


def test_no_configured_group_means_nobody_can_approve(store: Store) -> None:
    action = _propose(store, kind="campaign_budget_transfer", risk="low")
    with pytest.raises(NotAuthorized, match="nobody can approve it"):
        decide(store, POLICY, action.id, DANA, "approve", executors={})
    empty = ApprovalPolicy()  # no approvals.yaml at all
    with pytest.raises(NotAuthorized):
        decide(store, empty, _propose(store).id, DANA, "approve", executors={})


def test_rejection_needs_a_reason_and_reaches_the_conversation(store: Store) -> None:
    action = _propose(store)
    with pytest.raises(ReasonRequired):
        decide(store, POLICY, action.id, DANA, "reject", reason="  ", executors={})
    result = decide(store, POLICY, action.id, DANA, "reject", reason="needs a backout plan", executors={})
    assert result.status == "rejected"
    with store.session() as s:
        assert s.get(PendingAction, action.id).decision_reason == "needs a backout plan"  # type: ignore[union-attr]
        assert "rejected 'Add box': needs a backout plan" in s.scalars(select(Message.content)).one()


def test_expired_actions_are_refused_and_swept(store: Store) -> None:
    action = _propose(store)
    later = datetime.now(UTC) + timedelta(hours=POLICY.expiry_hours + 1)
    with pytest.raises(ActionExpired):
        decide(store, POLICY, action.id, DANA, "approve", executors={}, now=later)
    other = _propose(store)
    assert sweep_expired(store, later) == [other.id]
    with pytest.raises(ActionExpired):
        decide(store, POLICY, other.id, DANA, "approve", executors={})


def test_unknown_action(store: Store) -> None:
    with pytest.raises(ActionNotFound):
        decide(store, POLICY, "nope", DANA, "approve", executors={})


def test_a_payload_changed_after_proposal_is_refused(store: Store) -> None:
    action = _propose(store)
    with store.session() as s:
        s.execute(update(PendingAction).where(PendingAction.id == action.id).values(payload='{"title":"Drop table"}'))
    run = Recorder()
    with pytest.raises(PayloadTampered):
        decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": run})
    assert run.runs == []


def test_a_failing_executor_is_recorded_and_never_retried(store: Store) -> None:
    action = _propose(store)

    def broken(payload: str, a: PendingAction) -> dict:
        raise RuntimeError("ticketing system down")

    result = decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": broken})
    assert result.status == "failed" and "ticketing system down" in (result.error or "")
    with pytest.raises(AlreadyDecided, match="already failed"):
        decide(store, POLICY, action.id, DANA, "approve", executors={"change_request": broken})


def test_fifty_concurrent_deciders_execute_exactly_once(store: Store) -> None:
    action = _propose(store, risk="high")  # change_request high: mops-directors or revops-admins
    run = Recorder()
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def worker(i: int) -> None:
        actor = DANA if i % 2 else "U07MO0003"
        barrier.wait()
        try:
            decide(store, POLICY, action.id, actor, "approve", executors={"change_request": run})
            outcomes.append("won")
        except AlreadyDecided:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1 and outcomes.count("refused") == 49
    assert len(run.runs) == 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ActionExecution)) == 1
