"""Executions a crash left `running`: refused while their lease lasts, resumed once after it with the same key (by an
approver or the sweeper), or failed visibly. Judged by what the store, the files, the webhook and the audit log hold."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from mopsbot.approvals import Approvals, Proposal
from mopsbot.approvals.decide import DecisionRefused, NotAuthorized, PayloadTampered, SelfApprovalRefused
from mopsbot.approvals.envelope import canonical_json, sha256
from mopsbot.approvals.executions import SWEEPER, NothingToResume, StillRunning
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit.verify import verify
from mopsbot.changes.service import WebhookTicketing
from mopsbot.cli import app
from mopsbot.config import load_settings
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, AuditEvent, CampaignVersion, ChangeRequest, PendingAction
from mopsbot.tools.actions import build_approvals
from tests.approvals.helpers import FnHandler

REPO = Path(__file__).resolve().parents[2]
POLICY = ApprovalPolicy.load(REPO / "tools")
SAM, PRIYA, DANA, LENA, NINA = "U07SC0005", "U07PR0002", "U07DW0001", "U07LV0004", "U07NP0011"
CHANNEL, THREAD = "C07MOPS001", "1763300000.000100"
LEASE = timedelta(seconds=300)
CAMPAIGN = "2026-q1-webinar-ai-ops-emea"
CHANGE = {
    "change_type": "standard",
    "title": "Copy fix on the AI Ops webinar page",
    "description": "Fix a typo in the headline of the AI Ops webinar landing page copy.",
    "affected_systems": ["Website"],
    "implementation_plan": "Edit the headline in the CMS.",
    "backout_plan": "Put the old headline back.",
    "test_plan": "Load the page and read the headline.",
}


class Crash(BaseException):
    """What a killed process looks like to the code after it: nothing after the raise runs, nothing is caught."""


@pytest.fixture
def store(store_url: str) -> Store:
    return Store.open(store_url)


class _Hook(BaseHTTPRequestHandler):
    """A ticketing system that makes one ticket per Idempotency-Key and answers a repeat with the same ticket."""

    posts: ClassVar[list[str | None]] = []
    tickets: ClassVar[dict[str | None, str]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("Idempotency-Key")
        self.posts.append(key)
        ref = self.tickets.setdefault(key, f"OPS-{len(self.tickets) + 1}")
        body = json.dumps({"key": ref}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.posts, _Hook.tickets = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _real(store: Store, data: Path, hook: str) -> Approvals:
    return build_approvals(store, POLICY, data, WebhookTicketing(hook))


def _propose(approvals: Approvals, kind: str) -> str:
    if kind == "campaign_config":
        proposal = Proposal(kind, {"draft_id": "d-1", "config": {"name": CAMPAIGN, "budget": 8000}}, "AI ops", "low")
        requester = LENA
    else:
        proposal = Proposal(kind, dict(CHANGE), "Copy fix", "low")
        requester = SAM
    action, _ = approvals.propose(proposal, requester=requester, channel_id=CHANNEL, thread_ts=THREAD)
    return action.id


CRASHER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from mopsbot.approvals.policy import ApprovalPolicy
    from mopsbot.changes.service import WebhookTicketing
    from mopsbot.store.db import Store
    from mopsbot.tools.actions import build_approvals

    url, data, tools, action_id, hook, crash, marker = sys.argv[1:8]
    real_forward = WebhookTicketing.forward

    def die(point):
        if crash == point:
            os._exit(9)
        if crash == "hang_" + point:  # the parent SIGKILLs it here
            Path(marker).write_text(point)
            time.sleep(120)

    def forward(self, change, idempotency_key=None):
        die("before_post")
        ref = real_forward(self, change, idempotency_key)
        die("after_post")
        return ref

    WebhookTicketing.forward = forward
    approvals = build_approvals(Store.open(url, migrate=False), ApprovalPolicy.load(Path(tools)), Path(data),
                                WebhookTicketing(hook))
    for handler in set(approvals.handlers.values()):  # after the executor, before the outcome is recorded
        def execute(action, key=None, real=handler.execute):
            result = real(action, key)
            die("after_execute")
            return result
        handler.execute = execute
    approvals.decide(action_id, "U07PR0002", "approve", via="cli")
    print("not crashed")
    """
)


def _crash_approval(url: str, data: Path, action_id: str, hook: str, crash: str) -> None:
    marker = data / "marker"
    args = [sys.executable, "-c", CRASHER, url, str(data), str(REPO / "tools"), action_id, hook, crash, str(marker)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if crash.startswith("hang_"):
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the point where it is killed"
        proc.kill()  # SIGKILL
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (9, -9), (out, err)


def _execution(store: Store, action_id: str) -> dict[str, Any]:
    with store.session() as s:
        row = s.scalars(select(ActionExecution).where(ActionExecution.action_id == action_id)).one()
        status = s.get(PendingAction, action_id).status  # type: ignore[union-attr]
        return {"status": row.status, "attempts": row.attempts, "owner": row.owner, "action": status}


def _events(store: Store, action_id: str, event: str) -> list[AuditEvent]:
    with store.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.subject_id == action_id, AuditEvent.event == event)))
        s.expunge_all()
    return rows


def _later(approvals: Approvals, by: timedelta = LEASE + timedelta(seconds=1)) -> None:
    approvals.clock = lambda: datetime.now(UTC) + by


@pytest.mark.parametrize("crash", ["after_execute", "hang_after_execute"])
def test_a_killed_campaign_write_is_resumed_once_with_one_version(
    store: Store, store_url: str, tmp_path: Path, webhook: str, crash: str
) -> None:
    approvals = _real(store, tmp_path, webhook)
    action_id = _propose(approvals, "campaign_config")
    _crash_approval(store_url, tmp_path, action_id, webhook, crash)
    stuck = _execution(store, action_id)
    assert stuck["status"] == "running" and stuck["action"] == "approved" and stuck["owner"]
    with pytest.raises(StillRunning, match=f"still running on {stuck['owner']} until"):
        approvals.resume(action_id, DANA)
    _later(approvals)
    with pytest.raises(SelfApprovalRefused):
        approvals.resume(action_id, LENA)
    result = approvals.resume(action_id, DANA)
    assert result.status == "executed" and result.decided_by == PRIYA  # Priya approved it; Dana only resumed
    with store.session() as s:
        versions = s.scalars(select(CampaignVersion).where(CampaignVersion.campaign == CAMPAIGN)).all()
        assert [(v.version, v.action_id) for v in versions] == [(1, action_id)]
    assert sorted(p.name for p in (tmp_path / "campaigns" / CAMPAIGN).iterdir()) == ["v1.yaml"]
    assert _execution(store, action_id) == {**stuck, "status": "succeeded", "attempts": 2, "action": "executed",
                                            "owner": approvals.executions.owner}  # fmt: skip
    assert len(_events(store, action_id, "action.executed")) == 1 and not _events(store, action_id, "action.failed")
    (resumed,) = _events(store, action_id, "execution.resumed")
    assert resumed.actor == DANA and resumed.data["attempt"] == 2 and resumed.data["previous_owner"] == stuck["owner"]
    assert verify(store).ok
    with pytest.raises(NothingToResume):
        approvals.resume(action_id, DANA)


@pytest.mark.parametrize(
    ("crash", "posts"), [("before_post", 1), ("after_post", 2), ("hang_after_post", 2), ("after_execute", 1)]
)
def test_a_killed_change_files_exactly_one_ticket_under_one_key(
    store: Store, store_url: str, tmp_path: Path, webhook: str, crash: str, posts: int
) -> None:
    approvals = _real(store, tmp_path, webhook)
    action_id = _propose(approvals, "change_request")
    _crash_approval(store_url, tmp_path, action_id, webhook, crash)
    assert _execution(store, action_id)["status"] == "running"
    _later(approvals)
    result = approvals.resume(action_id, DANA)
    assert result.status == "executed", result.error
    key = f"exec:{action_id}"
    assert _Hook.posts == [key] * posts  # a repeat carries the same key, so the ticketing system dedupes it
    assert _Hook.tickets == {key: "OPS-1"}
    with store.session() as s:
        cr = s.scalars(select(ChangeRequest).where(ChangeRequest.action_id == action_id)).one()
        assert (cr.state, cr.external_ref) == ("approved", "OPS-1")
        moves = [e.data for e in s.scalars(select(AuditEvent).where(AuditEvent.subject_id == cr.id))]
        assert [m["to"] for m in moves if "to" in m].count("approved") == 1
    assert len(_events(store, action_id, "action.executed")) == 1
    assert verify(store).ok


def test_an_edited_external_ref_does_not_skip_the_ticket(store: Store, tmp_path: Path, webhook: str) -> None:
    approvals = _real(store, tmp_path, webhook)
    action_id = _propose(approvals, "change_request")
    with store.session() as s:
        s.execute(update(ChangeRequest).values(external_ref="FAKE-1"))
    assert approvals.decide(action_id, PRIYA, "approve").result["external_ref"] == "OPS-1"  # type: ignore[index]
    assert _Hook.posts == [f"exec:{action_id}"]


# --- the rules of resuming, with in-process executors ---------------------------------------------------------


class Executor(FnHandler):
    """Counts its runs (with their keys); the first `crashes` runs die half-way like a killed process."""

    def __init__(self, crashes: int = 1) -> None:
        super().__init__(lambda payload, action: {"ok": True})
        self.crashes, self.keys, self.lock = crashes, [], threading.Lock()

    def execute(self, action: Any, key: str | None = None) -> dict[str, Any]:
        with self.lock:
            self.keys.append(key)
            if self.crashes:
                self.crashes -= 1
                raise Crash
        return {"ok": True, "payload": action.payload_text}


class Resumable(Executor):
    resumable = True


def _stuck(store: Store, executor: Executor, kind: str = "change_request") -> tuple[str, Approvals]:
    """An approved action whose execution died: still `running`, owned by a replica that is gone."""
    crashed = Approvals(store, POLICY, {kind: executor})
    action, _ = crashed.propose(Proposal(kind, {"title": "x"}, "x", "low"), requester=SAM, channel_id=CHANNEL,
                                thread_ts=THREAD)  # fmt: skip
    with pytest.raises(Crash):
        crashed.decide(action.id, PRIYA, "approve")
    return action.id, crashed


def test_resume_is_refused_to_requesters_outsiders_and_a_forged_sweeper(store: Store) -> None:
    executor = Resumable()
    action_id, _ = _stuck(store, executor)
    replica = Approvals(store, POLICY, {"change_request": executor})
    _later(replica)
    for actor, refusal in ((SAM, SelfApprovalRefused), (NINA, NotAuthorized), (SWEEPER, NotAuthorized)):
        with pytest.raises(refusal):
            replica.resume(action_id, actor, via="cli")
    assert executor.keys == [f"exec:{action_id}"] and _execution(store, action_id)["status"] == "running"
    refused = _events(store, action_id, "decision.refused")
    assert [(e.actor, e.data["decision"], e.data["via"]) for e in refused] == [
        (SAM, "resume", "cli"), (NINA, "resume", "cli"), (SWEEPER, "resume", "cli")
    ]  # fmt: skip
    assert replica.resume(action_id, PRIYA).status == "executed"
    assert executor.keys == [f"exec:{action_id}"] * 2


def test_nothing_to_resume_for_a_pending_or_finished_action(store: Store) -> None:
    approvals = Approvals(store, POLICY, {"change_request": Resumable(crashes=0)})
    action, _ = approvals.propose(Proposal("change_request", {"title": "x"}, "x", "low"), requester=SAM)
    with pytest.raises(NothingToResume, match="never ran"):
        approvals.resume(action.id, DANA)
    approvals.decide(action.id, PRIYA, "approve")
    _later(approvals)
    with pytest.raises(NothingToResume, match="already succeeded"):
        approvals.resume(action.id, DANA)


def test_an_edited_payload_is_refused_at_resume_and_never_runs(store: Store) -> None:
    executor = Resumable()
    action_id, _ = _stuck(store, executor)
    forged = canonical_json({"title": "drop the consent table"})
    with store.session() as s:
        row = s.get(PendingAction, action_id)
        row.payload, row.payload_hash = forged, sha256(forged)  # type: ignore[union-attr]
    replica = Approvals(store, POLICY, {"change_request": executor})
    _later(replica)
    with pytest.raises(PayloadTampered, match="envelope"):
        replica.resume(action_id, DANA)
    (recovered,) = replica.recover()  # the sweeper does not run it either: it fails it, visibly
    assert recovered.status == "failed" and "envelope" in recovered.message
    assert executor.keys == [f"exec:{action_id}"]  # only the crashed first run
    assert _execution(store, action_id)["status"] == "failed"
    assert verify(store).ok


def test_two_resumers_racing_run_the_executor_once(store: Store) -> None:
    executor = Resumable()
    action_id, _ = _stuck(store, executor)
    barrier = threading.Barrier(8)
    outcomes: list[Any] = []

    def replica() -> None:
        approvals = Approvals(store, POLICY, {"change_request": executor})  # each its own owner
        _later(approvals)
        barrier.wait()
        try:
            outcomes.append(approvals.resume(action_id, DANA).status)
        except DecisionRefused as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=replica) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert outcomes.count("executed") == 1, outcomes
    assert executor.keys == [f"exec:{action_id}"] * 2  # the crashed run and exactly one resumed run
    assert len(_events(store, action_id, "execution.resumed")) == 1
    assert len(_events(store, action_id, "action.executed")) == 1
    assert _execution(store, action_id)["attempts"] == 2
    assert verify(store).ok


def test_recover_resumes_a_resumable_execution_as_the_sweeper(store: Store) -> None:
    executor = Resumable()
    action_id, _ = _stuck(store, executor)
    sweeper = Approvals(store, POLICY, {"change_request": executor})
    (recovered,) = sweeper.recover(datetime.now(UTC) + LEASE + timedelta(seconds=1))
    assert (recovered.action_id, recovered.status, recovered.channel_id, recovered.thread_ts) == (
        action_id, "executed", CHANNEL, THREAD
    )  # fmt: skip
    assert executor.keys == [f"exec:{action_id}"] * 2
    (resumed,) = _events(store, action_id, "execution.resumed")
    assert resumed.actor == SWEEPER and resumed.data["via"] == "sweeper"
    assert sweeper.recover(datetime.now(UTC) + 3 * LEASE) == []  # finished: nothing left to do
    assert verify(store).ok


def test_recover_fails_a_non_resumable_execution_visibly_without_running_it(store: Store) -> None:
    executor = Executor()  # declares nothing: its effects may not be safe to repeat
    action_id, _ = _stuck(store, executor)
    sweeper = Approvals(store, POLICY, {"change_request": executor})
    (recovered,) = sweeper.recover(datetime.now(UTC) + LEASE + timedelta(seconds=1))
    assert recovered.status == "failed" and "not safe to re-run automatically" in recovered.message
    assert executor.keys == [None]  # the crashed run only
    assert _execution(store, action_id)["status"] == "failed"
    assert _execution(store, action_id)["action"] == "failed"
    (failed,) = _events(store, action_id, "action.failed")
    assert failed.actor == SWEEPER and failed.data["interrupted"] is True
    _later(sweeper)
    with pytest.raises(NothingToResume):
        sweeper.resume(action_id, DANA)
    assert verify(store).ok


def test_recover_gives_up_on_an_execution_that_keeps_crashing(store: Store) -> None:
    executor = Resumable(crashes=3)
    action_id, _ = _stuck(store, executor)
    for attempt in (2, 3):  # each resumed run dies too
        sweeper = Approvals(store, POLICY, {"change_request": executor})
        with pytest.raises(Crash):
            sweeper.recover(datetime.now(UTC) + attempt * LEASE)
        assert _execution(store, action_id)["attempts"] == attempt
    (recovered,) = Approvals(store, POLICY, {"change_request": executor}).recover(datetime.now(UTC) + 9 * LEASE)
    assert recovered.status == "failed" and "interrupted 3 times" in recovered.message
    assert len(executor.keys) == 3 and _execution(store, action_id)["action"] == "failed"
    assert verify(store).ok


def test_recover_leaves_an_execution_within_its_lease_alone(store: Store) -> None:
    executor = Resumable()
    action_id, _ = _stuck(store, executor)
    before = _execution(store, action_id)
    sweeper = Approvals(store, POLICY, {"change_request": executor})
    assert sweeper.recover() == []
    assert sweeper.recover(datetime.now(UTC) + LEASE - timedelta(seconds=5)) == []
    assert _execution(store, action_id) == before and executor.keys == [f"exec:{action_id}"]
    with store.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "execution.resumed")) == 0
        )


def test_cli_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MOPSBOT_EXECUTION_LEASE_S", "60")
    store = Store.open(load_settings(env_file=None).resolved_database_url)
    crashed = build_approvals(store, POLICY, tmp_path / "var")
    action_id = _propose(crashed, "change_request")

    def crash(action: Any, key: str | None = None) -> dict[str, Any]:
        raise Crash

    crashed.handlers["change_request"].execute = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):  # approved an hour ago, so its lease ran out long since
        crashed.decide(action_id, PRIYA, "approve", now=datetime.now(UTC) - timedelta(hours=1))
    runner = CliRunner()
    refused = runner.invoke(app, ["approvals", "resume", action_id, "--as", SAM])
    assert refused.exit_code == 1 and "refused:" in refused.output
    ok = runner.invoke(app, ["approvals", "resume", action_id, "--as", DANA])
    assert ok.exit_code == 0, ok.output
    assert "Approved by Priya Raman and executed once." in ok.output
    assert _execution(store, action_id)["action"] == "executed"
    (resumed,) = _events(store, action_id, "execution.resumed")
    assert resumed.data["via"] == "cli" and resumed.data["os_user"]
