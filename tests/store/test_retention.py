"""Retention: old processed events and idle conversations go; live claims, approvals and the audit log stay.

Runs on SQLite (foreign keys on) and on PostgreSQL (MOPSBOT_TEST_POSTGRES_URL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mopsbot.approvals import Approvals, Proposal
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit import record
from mopsbot.audit.verify import verify
from mopsbot.cli.app import app
from mopsbot.store.db import Store
from mopsbot.store.models import AuditEvent, Conversation, Feedback, Message, PendingAction, ProcessedEvent
from mopsbot.store.retention import PruneReport, prune

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def _event(
    event_id: str, received: datetime, status: str = "answered", lease_until: datetime | None = None
) -> ProcessedEvent:
    return ProcessedEvent(event_id=event_id, received_at=received, status=status, lease_until=lease_until)


def _conversation(s: Session, thread: str, updated: datetime, messages: Sequence[tuple[str, datetime]] = ()) -> str:
    conv = Conversation(channel_id="C07MKTG001", thread_ts=thread, created_at=updated, updated_at=updated)
    s.add(conv)
    s.flush()
    for turn, at in messages:
        s.add(Message(conversation_id=conv.id, turn_id=turn, role="user", content="q", created_at=at))
    return conv.id


def _prune(store: Store, **kw: object) -> PruneReport:
    return prune(store, now=NOW, event_retention_days=7, conversation_retention_days=180, **kw)  # type: ignore[arg-type]


def _event_ids(store: Store) -> set[str]:
    with store.session() as s:
        return set(s.scalars(select(ProcessedEvent.event_id)))


def test_events_just_outside_the_window_go_and_just_inside_stay(store: Store) -> None:
    with store.session() as s:
        s.add_all(
            [
                _event("Ev-old", NOW - 7 * DAY - MINUTE),
                _event("Ev-old-failed", NOW - 30 * DAY, status="failed"),
                _event("Ev-recent", NOW - 7 * DAY + MINUTE),
                # an orphaned claim (lease run out long ago) is pruned; a live one is kept, however old
                _event("Ev-orphan", NOW - 8 * DAY, status="claimed", lease_until=NOW - 8 * DAY + MINUTE),
                _event("Ev-live", NOW - 8 * DAY, status="claimed", lease_until=NOW + MINUTE),
                # the watcher's record of an alert it posted outlives the event window (its checks look back 90 days)
                _event("watch:mqls:EMEA:2026-09-01", NOW - 60 * DAY),
            ]
        )
    report = _prune(store)
    assert report.processed_events == 3
    assert _event_ids(store) == {"Ev-recent", "Ev-live", "watch:mqls:EMEA:2026-09-01"}


def test_idle_conversations_go_with_their_messages_and_feedback(store: Store) -> None:
    with store.session() as s:
        old = _conversation(s, "1.0", NOW - 181 * DAY, [("t-old", NOW - 181 * DAY), ("t-old2", NOW - 200 * DAY)])
        recent = _conversation(s, "2.0", NOW - 179 * DAY, [("t-recent", NOW - 179 * DAY)])
        # the row is old but a message is recent: the conversation is active
        talking = _conversation(s, "3.0", NOW - 365 * DAY, [("t-talk", NOW - 365 * DAY), ("t-talk2", NOW - DAY)])
        s.add_all(
            [
                Feedback(turn_id="t-old", user_id="U07SC0005", value=1),
                Feedback(turn_id="t-recent", user_id="U07SC0005", value=-1),
            ]
        )
    report = _prune(store)
    assert report == PruneReport(processed_events=0, conversations=1, messages=2, feedback=1)
    with store.session() as s:
        assert set(s.scalars(select(Conversation.id))) == {recent, talking}
        assert s.scalar(select(func.count()).select_from(Message).where(Message.conversation_id == old)) == 0
        assert list(s.scalars(select(Feedback.turn_id))) == ["t-recent"]


def test_zero_days_keeps_conversations(store: Store) -> None:
    with store.session() as s:
        _conversation(s, "1.0", NOW - 1000 * DAY, [("t", NOW - 1000 * DAY)])
    report = prune(store, now=NOW, event_retention_days=7, conversation_retention_days=0)
    assert report.conversations == report.messages == 0
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1


def test_a_dry_run_counts_and_deletes_nothing(store: Store) -> None:
    with store.session() as s:
        s.add(_event("Ev-old", NOW - 10 * DAY))
        _conversation(s, "1.0", NOW - 200 * DAY, [("t-old", NOW - 200 * DAY)])
        s.add(Feedback(turn_id="t-old", user_id="U07SC0005", value=1))
    dry = _prune(store, dry_run=True)
    assert dry == PruneReport(processed_events=1, conversations=1, messages=1, feedback=1, dry_run=True)
    assert _event_ids(store) == {"Ev-old"}
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
    assert _prune(store).counts() == dry.counts()  # the real run deletes what the dry run counted


def test_batches_delete_everything_past_the_window(store: Store) -> None:
    with store.session() as s:
        s.add_all([_event(f"Ev{i:03d}", NOW - 10 * DAY) for i in range(23)])
        for i in range(7):
            _conversation(s, f"{i}.0", NOW - 200 * DAY, [(f"t{i}", NOW - 200 * DAY)])
    report = _prune(store, batch_size=5)
    assert (report.processed_events, report.conversations, report.messages) == (23, 7, 7)
    assert _event_ids(store) == set()


def test_approvals_and_the_audit_chain_are_untouched(store: Store) -> None:
    with store.session() as s:
        linked = _conversation(s, "1.0", NOW - 400 * DAY, [("t-linked", NOW - 400 * DAY)])
        _conversation(s, "2.0", NOW - 400 * DAY, [("t-other", NOW - 400 * DAY)])
        record(s, actor="U07SC0005", event="turn.answered", subject_type="turn", subject_id="t-other")
    approvals = Approvals(store, ApprovalPolicy(), {})
    action, _ = approvals.propose(
        Proposal("change_request", {"title": "Fix the MQL sync"}, "Fix the MQL sync", "low"),
        requester="U07SC0005",
        conversation_id=linked,
    )
    with store.session() as s:
        audit_rows = s.scalar(select(func.count()).select_from(AuditEvent))
    assert verify(store).ok

    report = _prune(store)

    assert report.conversations == 1  # the other one
    with store.session() as s:
        # the action's sealed envelope names its conversation: it is kept, so the link is not cleared
        assert s.get(Conversation, linked) is not None
        assert s.get(PendingAction, action.id).conversation_id == linked  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows
    assert approvals.sealed(action.id).conversation_id == linked  # still passes the envelope check
    verdict = verify(store)
    assert verdict.ok, verdict.message


def test_the_cli_prunes_and_reports_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("MOPSBOT_DATABASE_URL", url)
    store = Store.open(url)
    with store.session() as s:
        s.add(_event("Ev-old", datetime.now(UTC) - 30 * DAY))
    runner = CliRunner()
    dry = runner.invoke(app, ["db", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 processed events, 0 conversations" in dry.output
    assert _event_ids(store) == {"Ev-old"}
    done = runner.invoke(app, ["db", "prune"])
    assert done.exit_code == 0, done.output
    assert "deleted 1 processed events" in done.output and "older than 7 days" in done.output
    assert _event_ids(store) == set()
    store.close()


def test_the_cli_refuses_a_store_behind_the_newest_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(app, ["db", "prune"])
    assert result.exit_code == 1
    assert "run `mopsbot db upgrade` first" in result.output
