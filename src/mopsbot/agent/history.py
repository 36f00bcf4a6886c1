"""Conversation state per thread: stored messages, loaded back trimmed to a token budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_index.core.utils import get_tokenizer
from sqlalchemy import select

from mopsbot.caller import CallerContext
from mopsbot.store.db import Store
from mopsbot.store.models import Conversation, Message

HISTORY_TOKEN_BUDGET = 3000


def count_tokens(text: str) -> int:
    """Tokens as OpenAI's cl100k tokenizer counts them (offline: llama-index ships the encoding)."""
    return len(get_tokenizer()(text))


@dataclass
class StoredMessage:
    role: str  # user | assistant | event
    content: str
    data: dict[str, Any]
    user_id: str | None


class ConversationStore:
    """Threads and their messages in the state store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def conversation_id(self, caller: CallerContext, thread_id: str) -> str:
        """The conversation for (channel, thread), created on first use."""
        with self.store.session() as s:
            conv = s.scalars(
                select(Conversation).where(
                    Conversation.channel_id == caller.channel_id, Conversation.thread_ts == thread_id
                )
            ).one_or_none()
            if conv is None:
                conv = Conversation(
                    channel_id=caller.channel_id, thread_ts=thread_id, channel_visibility=caller.channel_visibility
                )
                s.add(conv)
                s.flush()
            return conv.id

    def append(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        user_id: str | None = None,
        turn_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self.store.session() as s:
            s.add(
                Message(
                    conversation_id=conversation_id,
                    role=role,
                    content=content,
                    user_id=user_id,
                    turn_id=turn_id,
                    data=data,
                )
            )

    def load(self, conversation_id: str, budget: int = HISTORY_TOKEN_BUDGET) -> list[StoredMessage]:
        """The most recent messages that fit in `budget` tokens, oldest first (tool messages are not replayed)."""
        with self.store.session() as s:
            rows = s.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.role.in_(("user", "assistant", "event")))
                .order_by(Message.id.desc())
                .limit(200)
            ).all()
            kept: list[StoredMessage] = []
            used = 0
            for row in rows:
                cost = count_tokens(row.content) + 4
                if kept and used + cost > budget:
                    break
                used += cost
                kept.append(StoredMessage(row.role, row.content, dict(row.data or {}), row.user_id))
        return list(reversed(kept))
