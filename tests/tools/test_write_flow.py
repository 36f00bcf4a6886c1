"""Governed writes end to end: draft -> submit (pending, nothing written) -> decision -> one execution."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from sqlalchemy import func, select

from mopsbot.agent.factory import build_agent
from mopsbot.agent.runner import Agent
from mopsbot.approvals.decide import AlreadyDecided, NotApprovable, NotAuthorized, SelfApprovalRefused
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.caller import CallerContext
from mopsbot.changes.service import WebhookTicketing, get_change
from mopsbot.config import load_settings
from mopsbot.knowledge.service import open_knowledge
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, CampaignDraft, PendingAction
from mopsbot.tools.actions import build_approvals

REPO = Path(__file__).resolve().parents[2]
LENA = CallerContext("U07LV0004", "C07MKTG001", "public")
SAM = CallerContext("U07SC0005", "C07MKTG001", "public")
PRIYA, DANA = "U07PR0002", "U07DW0001"
BRIEF = (
    "draft a Q1 webinar on AI ops for EMEA, 8k budget, audience emea-prospects, speakers Dana Whitfield, "
    "registration form rf-ai-ops, 150 mqls"
)
POLICY = ApprovalPolicy.load(REPO / "tools")
PLANNED_CHANGE = (
    "file a change request to update the Looker funnel dashboard. implementation: edit the funnel explore in a "
    "dev branch and deploy; backout: revert the LookML commit; test: compare the funnel tile with the warehouse "
    "query for October"
)


@pytest.fixture
def env(knowledge_index_dir: Path, tmp_path: Path) -> tuple[Agent, Path]:
    settings = load_settings(
        env_file=None, chroma_path=knowledge_index_dir, workspace=REPO, data_dir=tmp_path, today=date(2026, 11, 15)
    )
    store = Store.open(settings.resolved_database_url)
    return build_agent(settings, backend="local", store=store, knowledge=open_knowledge(settings)), tmp_path


def _decide(
    agent: Agent,
    data: Path,
    action_id: str,
    actor: str,
    decision: str = "approve",
    reason: str | None = None,
    ticket: object = None,
    now: datetime | None = None,
):
    approvals = build_approvals(agent.store, POLICY, data, ticket) if ticket else agent.approvals  # type: ignore[arg-type]
    return approvals.decide(action_id, actor, decision, reason=reason, now=now)  # type: ignore[arg-type]


def test_campaign_config_waits_for_approval_then_is_written_once_exactly_as_shown(env) -> None:
    agent, data = env
    draft = agent.run_turn(BRIEF, LENA, "T1")
    assert "Policy check: no findings" in draft.answer
    submitted = agent.run_turn("submit it", LENA, "T1")
    (pending,) = submitted.pending_actions
    assert pending.risk == "low" and "waiting for approval by mops-managers or mops-directors" in submitted.answer
    with agent.store.session() as s:
        assert s.scalar(select(func.count()).select_from(ActionExecution)) == 0
        shown = s.get(PendingAction, pending.id).payload  # type: ignore[union-attr]
    assert not (data / "campaigns").exists()  # nothing written before the decision

    with pytest.raises(SelfApprovalRefused):
        _decide(agent, data, pending.id, LENA.user_id)
    with pytest.raises(NotAuthorized):
        _decide(agent, data, pending.id, SAM.user_id)
    result = _decide(agent, data, pending.id, PRIYA)
    assert result.status == "executed" and result.message == "Approved by Priya Raman and executed once."
    written = yaml.safe_load((data / "campaigns" / "2027-Q1_WBN_AI-Ops_EMEA" / "v1.yaml").read_text())
    assert written == json.loads(shown)["config"]  # exactly the payload whose hash was shown
    with pytest.raises(AlreadyDecided, match="already executed by Priya Raman"):
        _decide(agent, data, pending.id, DANA)
    with agent.store.session() as s:
        assert s.scalars(select(CampaignDraft.status)).one() == "approved"

    follow_up = agent.run_turn("thanks", LENA, "T1")  # the outcome is in the thread's history now
    history = agent.conversations.load(follow_up.conversation_id)
    assert any(m.role == "event" and "Priya Raman approved" in m.content for m in history)


def test_a_draft_with_policy_errors_cannot_be_submitted(env) -> None:
    agent, _ = env
    agent.run_turn("draft a Q1 email newsletter about product news for EMEA, 2k budget", LENA, "T2")
    submitted = agent.run_turn("submit it", LENA, "T2")
    assert submitted.pending_actions == [] and "policy error" in submitted.answer


def test_routing_changes_are_high_risk_for_directors_or_revops(env) -> None:
    agent, _ = env
    record = agent.run_turn("open a change request for the lead routing rules in LeanData", SAM, "T7")
    (pending,) = record.pending_actions
    assert pending.kind == "change_request" and pending.risk == "high"
    assert "waiting for approval by mops-directors or revops-admins" in record.answer


def test_consent_change_goes_to_the_dpo_then_is_rejected_with_reason(env) -> None:
    agent, data = env
    record = agent.run_turn("file a change request to add a consent checkbox to the demo form", SAM, "T3")
    (pending,) = record.pending_actions
    assert pending.kind == "consent_change" and pending.risk == "high"
    assert "waiting for approval by privacy" in record.answer and "CR-0001" in record.answer
    assert get_change(agent.store, "CR-0001")["state"] == "pending_approval"  # type: ignore[index]
    with pytest.raises(NotAuthorized):  # the Director of MOps is not the DPO
        _decide(agent, data, pending.id, DANA, "reject", reason="needs a backout plan")
    with pytest.raises(NotApprovable, match="implementation plan, backout plan, test plan"):
        _decide(agent, data, pending.id, "U07TR0010")
    _decide(agent, data, pending.id, "U07TR0010", "reject", reason="needs a backout plan")
    change = get_change(agent.store, "CR-0001")
    assert change["state"] == "rejected"  # type: ignore[index]
    history = agent.conversations.load(record.conversation_id)
    assert any("rejected" in m.content and "needs a backout plan" in m.content for m in history)


def test_expired_change_requests_follow_their_action(env) -> None:
    agent, _ = env
    agent.run_turn("file a change request to update the Looker funnel dashboard", SAM, "T4")
    later = datetime.now(UTC) + timedelta(days=4)
    assert len(agent.approvals.sweep(later)) == 1
    assert get_change(agent.store, "CR-0001")["state"] == "expired"  # type: ignore[index]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"auth": self.headers.get("Authorization"), "body": json.loads(body)})
        reply = json.dumps({"key": "OPS-123"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_approved_change_is_forwarded_to_the_ticketing_webhook(env, webhook: str) -> None:
    agent, data = env
    record = agent.run_turn(PLANNED_CHANGE, SAM, "T5")
    (pending,) = record.pending_actions
    assert pending.risk == "medium"  # reporting logic (sop-change-management-policy)
    result = _decide(agent, data, pending.id, DANA, ticket=WebhookTicketing(webhook, "tok"))
    assert result.result == {"change_request": "CR-0001", "state": "approved", "external_ref": "OPS-123"}
    (sent,) = _Hook.received[-1:]
    assert sent["auth"] == "Bearer tok" and sent["body"]["id"] == "CR-0001" and sent["body"]["approved_by"] == DANA
    assert sent["body"]["test_plan"] == "compare the funnel tile with the warehouse query for October"
    assert get_change(agent.store, "CR-0001")["external_ref"] == "OPS-123"  # type: ignore[index]


def test_executors_never_run_for_a_pending_action_created_by_the_agent(env) -> None:
    agent, _ = env
    runs: list[str] = []
    agent.run_turn(BRIEF, LENA, "T6")
    agent.run_turn("submit it", LENA, "T6")
    with agent.store.session() as s:
        assert s.scalars(select(PendingAction.status)).all() == ["pending"]
    assert runs == []
