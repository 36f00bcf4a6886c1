"""Migrations and a round trip of every model, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from mopsbot.audit import events_for, record
from mopsbot.store.db import Store, StoreUnavailable, current_revision, downgrade, head_revision, make_engine, upgrade
from mopsbot.store.models import (
    ActionExecution,
    Base,
    CampaignDraft,
    ChangeRequest,
    Conversation,
    Feedback,
    Message,
    PendingAction,
    ProcessedEvent,
)

TABLES = {
    "conversations",
    "messages",
    "pending_actions",
    "action_executions",
    "change_requests",
    "campaign_drafts",
    "audit_events",
    "feedback",
    "processed_events",
}


def _pending(**fields: object) -> PendingAction:
    values: dict[str, object] = {
        "kind": "change_request",
        "summary": "s",
        "payload": '{"title":"x"}',
        "payload_hash": "a" * 64,
        "risk": "low",
        "required_group": "mops-directors",
        "requester_id": "U07SC0005",
        "expires_at": datetime.now(UTC) + timedelta(hours=72),
    }
    return PendingAction(**(values | fields))


def test_upgrade_creates_every_table_at_head(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_models_and_migrations_agree(store_url: str) -> None:
    """A model change without a migration fails here."""
    engine = make_engine(store_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_and_upgrade_again(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_round_trip_of_every_model(store_url: str) -> None:
    store = Store.open(store_url)
    now = datetime.now(UTC)
    with store.session() as s:
        conv = Conversation(channel_id="C07MOPS001", thread_ts="1732269000.000100", channel_visibility="ops")
        conv.messages.append(Message(role="user", user_id="U07SC0005", content="CPL by channel", data={"k": [1]}))
        s.add(conv)
        s.flush()
        action = _pending(summary="Add consent checkbox", risk="high", conversation_id=conv.id)
        s.add(action)
        s.flush()
        s.add_all(
            [
                ActionExecution(action_id=action.id, idempotency_key=f"exec:{action.id}", status="running"),
                ChangeRequest(
                    id="CR-0001",
                    change_type="normal",
                    title="Consent checkbox on demo form",
                    description="Add checkbox",
                    affected_systems=["Marketo"],
                    risk="high",
                    requester_id="U07SC0005",
                    action_id=action.id,
                ),
                CampaignDraft(name="2026-Q1_WBN_AI-Ops_EMEA", config={"budget": 8000}, requester_id="U07LV0004"),
                Feedback(turn_id="t1", user_id="U07SC0005", value=1),
                ProcessedEvent(event_id="Ev0001"),
            ]
        )
        record(s, actor="U07SC0005", event="proposed", subject_type="pending_action", subject_id=action.id)
        action_id = action.id
    with store.session() as s:
        conv = s.scalars(select(Conversation)).one()
        assert [m.content for m in conv.messages] == ["CPL by channel"]
        assert conv.messages[0].data == {"k": [1]}
        got = s.get(PendingAction, action_id)
        assert got is not None
        assert got.status == "pending"
        assert got.expires_at.replace(tzinfo=UTC) > now
        assert s.get(ChangeRequest, "CR-0001").affected_systems == ["Marketo"]  # type: ignore[union-attr]
        assert [e.event for e in events_for(s, "pending_action", action_id)] == ["proposed"]
    store.close()


def test_an_event_id_is_processed_once(store_url: str) -> None:
    store = Store.open(store_url)
    with store.session() as s:
        s.add(ProcessedEvent(event_id="Ev42"))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(ProcessedEvent(event_id="Ev42"))
    store.close()


def test_an_action_executes_under_one_idempotency_key_only(store_url: str) -> None:
    store = Store.open(store_url)
    with store.session() as s:
        a = _pending()
        s.add(a)
        s.flush()
        s.add(ActionExecution(action_id=a.id, idempotency_key="exec:1", status="running"))
        action_id = a.id
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(ActionExecution(action_id=action_id, idempotency_key="exec:1", status="running"))
    store.close()


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"])
def test_audit_log_is_append_only_in_the_database(store_url: str, statement: str) -> None:
    store = Store.open(store_url)
    with store.session() as s:
        record(s, actor="U07DW0001", event="approved", subject_type="pending_action", subject_id="x")
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement))
    with store.session() as s:
        assert [e.actor for e in events_for(s, "pending_action", "x")] == ["U07DW0001"]
    store.close()


def test_audit_redacts_secret_looking_values(store_url: str) -> None:
    store = Store.open(store_url)
    with store.session() as s:
        row = record(
            s, actor="system", event="config", data={"slack_bot_token": "xoxb-1", "nested": [{"password": "p"}]}
        )
        assert row.data == {"slack_bot_token": "[redacted]", "nested": [{"password": "[redacted]"}]}
    store.close()


def test_unreachable_database_gives_a_clear_error_without_the_password() -> None:
    engine = make_engine("postgresql+psycopg://mops:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StoreUnavailable) as err:
        upgrade(engine)
    assert "cannot reach the state store" in str(err.value)
    assert "hunter2" not in str(err.value)
