"""Which Slack events are questions for the bot, as plain data (kept in the event's claim to answer it later)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
# plain messages, thread replies also sent to the channel, and messages with a file are questions; edits, joins,
# deletions and bot messages are not
ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")


@dataclass(frozen=True)
class Question:
    """One question: who asked, where, in which thread, and the text without the bot mention."""

    user: str
    channel: str
    channel_type: str | None
    thread: str
    ts: str
    text: str
    event_id: str | None = None
    assistant: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def strip_mention(text: str) -> str:
    return _MENTION.sub("", text or "").strip()


def question_of(
    body: dict[str, Any], bot_user_id: str | None, bot_in_thread: Callable[[str, str], bool]
) -> Question | None:
    """The question an event_callback body asks the bot, or None (bot messages, edits, chatter, other events).

    A mention is a question; so is any message in a DM (or an assistant thread), and a reply in a channel thread
    the bot is already in. A channel message that also mentions the bot is answered through its app_mention event
    (Slack sends both), so the message event is not a question. `bot_in_thread` may read the state store.
    """
    event = body.get("event") or {}
    kind = event.get("type")
    if kind not in ("app_mention", "message") or event.get("bot_id") or not event.get("user"):
        return None
    if event.get("subtype") not in ANSWERED_SUBTYPES:
        return None
    channel, text, ts = event.get("channel"), event.get("text") or "", event.get("ts")
    if not channel or not ts:
        return None
    event_id = body.get("event_id")
    if kind == "app_mention":
        thread = event.get("thread_ts") or ts
        return Question(event["user"], channel, event.get("channel_type"), thread, ts, strip_mention(text), event_id)
    direct = event.get("channel_type") == "im"
    if bot_user_id and f"<@{bot_user_id}>" in text and not direct:
        return None
    thread = event.get("thread_ts")
    if direct:
        # bolt routes a DM reply in a thread to the assistant's user_message listener
        return Question(event["user"], channel, "im", thread or ts, ts, strip_mention(text), event_id, bool(thread))
    if not thread or not bot_in_thread(channel, thread):
        return None  # channel chatter: only threads the bot is already in
    return Question(event["user"], channel, event.get("channel_type"), thread, ts, strip_mention(text), event_id)
