"""Retention: processed Slack events and idle conversations are deleted once past their windows.

Only `processed_events`, `conversations`, `messages` and `feedback` are pruned. The audit log and its head,
pending actions, executions, change requests and campaign records are never touched, and a conversation that a
pending action points to is kept: the action's sealed envelope names the conversation, so clearing the link (the
foreign key's ON DELETE SET NULL) would make the action fail its envelope check. Deletes run in batches, each in
its own short transaction, so a large prune never holds the store's write lock for long.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select

from mopsbot.store.db import Store
from mopsbot.store.models import Conversation, Feedback, Message, PendingAction, ProcessedEvent

BATCH = 500
# The watcher records each alert it posted as a processed event ("watch:<metric>:<group>:<bucket>") so it never
# posts it twice; its checks look back further than the event window, so these few rows are kept.
KEPT_EVENT_PREFIXES = ("watch:",)


@dataclass(frozen=True)
class PruneReport:
    """Rows deleted per table (or, in a dry run, that would be)."""

    processed_events: int = 0
    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "dry_run"}


def _utc(at: datetime) -> datetime:
    # SQLite compares timestamps as text: the bound value must be in UTC like the stored ones.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _prunable_events(now: datetime, days: float) -> ColumnElement[bool]:
    live_claim = and_(
        ProcessedEvent.status == "claimed",
        ProcessedEvent.lease_until.is_not(None),
        ProcessedEvent.lease_until > now,
    )
    kept = or_(*(ProcessedEvent.event_id.startswith(p, autoescape=True) for p in KEPT_EVENT_PREFIXES))
    return and_(ProcessedEvent.received_at < now - timedelta(days=days), not_(live_claim), not_(kept))


def _idle_conversations(now: datetime, days: float) -> ColumnElement[bool]:
    cutoff = now - timedelta(days=days)
    recent_message = exists().where(Message.conversation_id == Conversation.id, Message.created_at >= cutoff)
    linked_action = exists().where(PendingAction.conversation_id == Conversation.id)
    return and_(Conversation.updated_at < cutoff, not_(recent_message), not_(linked_action))


def prune(
    store: Store,
    *,
    now: datetime,
    event_retention_days: float,
    conversation_retention_days: float,
    dry_run: bool = False,
    batch_size: int = BATCH,
) -> PruneReport:
    """Delete processed events received more than `event_retention_days` ago (except live claims) and conversations
    idle for more than `conversation_retention_days` (0 keeps them), with their messages and feedback.

    A conversation's last activity is the later of its update time and its newest message. Store errors propagate.
    """
    now = _utc(now)
    if dry_run:
        return _count(store, now, event_retention_days, conversation_retention_days)
    events = conversations = messages = feedback = 0
    event_filter = _prunable_events(now, event_retention_days)
    while True:
        with store.session() as s:
            ids = list(s.scalars(select(ProcessedEvent.event_id).where(event_filter).limit(batch_size)))
            if ids:  # the filter again: a row taken over since the select keeps its claim
                events += s.execute(
                    delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(ids), event_filter)
                ).rowcount
        if len(ids) < batch_size:
            break
    while conversation_retention_days > 0:
        with store.session() as s:
            ids = list(
                s.scalars(
                    select(Conversation.id)
                    .where(_idle_conversations(now, conversation_retention_days))
                    .limit(batch_size)
                )
            )
            if ids:
                turns = select(Message.turn_id).where(Message.conversation_id.in_(ids), Message.turn_id.is_not(None))
                feedback += s.execute(delete(Feedback).where(Feedback.turn_id.in_(turns))).rowcount
                messages += s.execute(delete(Message).where(Message.conversation_id.in_(ids))).rowcount
                conversations += s.execute(delete(Conversation).where(Conversation.id.in_(ids))).rowcount
        if len(ids) < batch_size:
            break
    return PruneReport(events, conversations, messages, feedback)


def _count(store: Store, now: datetime, event_days: float, conversation_days: float) -> PruneReport:
    with store.session() as s:
        events = s.scalar(select(func.count()).select_from(ProcessedEvent).where(_prunable_events(now, event_days)))
        if conversation_days <= 0:
            return PruneReport(int(events or 0), dry_run=True)
        idle = select(Conversation.id).where(_idle_conversations(now, conversation_days))
        turns = select(Message.turn_id).where(Message.conversation_id.in_(idle), Message.turn_id.is_not(None))
        return PruneReport(
            int(events or 0),
            int(s.scalar(select(func.count()).select_from(idle.subquery())) or 0),
            int(s.scalar(select(func.count()).select_from(Message).where(Message.conversation_id.in_(idle))) or 0),
            int(s.scalar(select(func.count()).select_from(Feedback).where(Feedback.turn_id.in_(turns))) or 0),
            dry_run=True,
        )
