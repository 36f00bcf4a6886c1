"""What the bot owns, as SQLAlchemy 2 models. Schema changes go through alembic migrations (store/migrations)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# SQLite has no 64-bit autoincrement under BigInteger; use INTEGER there so rowid aliasing works.
AutoId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON, datetime: Timestamp}


class Conversation(Base):
    """One Slack thread (or DM thread, or terminal session) the bot takes part in."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel_id", "thread_ts"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    channel_id: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str] = mapped_column(String(64))
    channel_visibility: Mapped[str] = mapped_column(String(16), default="public")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )


class Message(Base):
    """A turn element: a user message, the bot's answer, a tool result, or an event such as an approval."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    turn_id: Mapped[str | None] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | tool | event
    user_id: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    slack_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class PendingAction(Base):
    """A write the agent proposed. It runs only after an authorized approver decides, and then only once."""

    __tablename__ = "pending_actions"
    __table_args__ = (Index("ix_pending_actions_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as shown to the approver
    payload_hash: Mapped[str] = mapped_column(String(64))
    risk: Mapped[str] = mapped_column(String(16))
    required_group: Mapped[str | None] = mapped_column(String(64))
    requester_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # everyone who shaped the action (drafter, submitter, the person it acts for); none of them may decide it
    requesters: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    category: Mapped[str | None] = mapped_column(String(32))
    routing_reasons: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    provenance: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the sealed envelope written to the audit chain at proposal; decisions check the row against it
    envelope_hash: Mapped[str | None] = mapped_column(String(64))


class ActionExecution(Base):
    """The single execution of an approved action; the unique idempotency key makes a second run impossible."""

    __tablename__ = "action_executions"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(ForeignKey("pending_actions.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # who runs it and until when: a `running` row past its lease was left by a crash and can be resumed
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class ChangeRequest(Base):
    """A change to the martech stack, tracked through its ITSM-style states."""

    __tablename__ = "change_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # CR-0001
    change_type: Mapped[str] = mapped_column(String(16))  # standard | normal | emergency
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    affected_systems: Mapped[list[Any]] = mapped_column(JSON, default=list)
    risk: Mapped[str] = mapped_column(String(16))
    implementation_plan: Mapped[str] = mapped_column(Text, default="")
    backout_plan: Mapped[str] = mapped_column(Text, default="")
    test_plan: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(24), default="draft")
    requester_id: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str | None] = mapped_column(ForeignKey("pending_actions.id", ondelete="SET NULL"))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    category: Mapped[str | None] = mapped_column(String(32))
    fields: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    requesters: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignDraft(Base):
    """A campaign config drafted by the bot; approved versions are exported under the data dir."""

    __tablename__ = "campaign_drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | submitted | approved | rejected
    version: Mapped[int] = mapped_column(Integer, default=1)
    requester_id: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str | None] = mapped_column(ForeignKey("pending_actions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignVersion(Base):
    """One approved version of a campaign config; (campaign, version) can never be taken twice."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign", "version"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    action_id: Mapped[str] = mapped_column(ForeignKey("pending_actions.id"), unique=True)
    config_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditHead(Base):
    """The end of the audit chain (one row): the lock appenders take, and an anchor `audit verify` checks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(AutoId, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """Append-only, hash-chained record of every step; database triggers refuse UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class Feedback(Base):
    """A 👍/👎 on one of the bot's answers."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    turn_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(SmallInteger)  # +1 | -1
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(Base):
    """A Slack event's claim: `claimed` by one replica under a lease, then `answered` or `failed` (told why).

    A redelivery, or another replica's sweeper, takes over a `claimed` row whose lease has run out (its owner died
    or was stopped before answering); an `answered` or `failed` event is never answered again. `request` keeps what
    is needed to answer it without Slack redelivering (pruned with the row).
    """

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # claimed | answered | failed
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reference: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_processed_events_status_lease", "status", "lease_until"),)
