"""Block Kit for answers and approval cards, always within Slack's limits (3,000 characters a section, 50 blocks)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mopsbot.agent.turn import TurnRecord
from mopsbot.metrics.present import slack_table

SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
TEXT_LIMIT = 3900  # the notification text of a message (Slack truncates at 40,000; keep it readable)


def _md(text: str) -> str:
    """Markdown from the agent (**bold**, _note_) in Slack's mrkdwn."""
    return text.replace("**", "*")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends (or spaces) where possible, never losing text."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n")
    if text.strip():
        pieces.append(text)
    return pieces


def answer_messages(record: TurnRecord) -> list[dict[str, Any]]:
    """The answer as one or more messages (text + blocks), each within the block limit."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in split_text(_md(record.answer))
    ]
    for table in record.data.get("tables", [])[:3]:
        if table.get("rows"):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": slack_table(table)}})
            latest = min((d for d in table.get("freshness", {}).values() if d), default="unknown")
            note = f"{table['row_count']} rows · data through {latest} · computed from the governed metric catalog"
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    if record.citations:
        cited = "; ".join(_citation(c) for c in record.citations[:8])
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Sources: {cited}"[:SECTION_LIMIT]}]}
        )
    blocks.append(feedback_block(record.turn_id, show_query=bool(record.data.get("tables"))))
    messages = []
    for start in range(0, len(blocks), BLOCK_LIMIT):
        chunk = blocks[start : start + BLOCK_LIMIT]
        text = record.answer if start == 0 else "(continued)"
        messages.append({"text": text[:TEXT_LIMIT], "blocks": chunk})
    return messages


def _citation(c: dict[str, Any]) -> str:
    """Title — section (owner, updated), as the knowledge tool cites it."""
    text = f"{c.get('title', c['doc_id'])} — {c.get('section', '')}".rstrip(" —")
    facts = ", ".join(v for v in (c.get("owner"), f"updated {c['updated']}" if c.get("updated") else None) if v)
    return f"{text} ({facts})" if facts else text


def feedback_block(turn_id: str, show_query: bool = False) -> dict[str, Any]:
    """👍 / 👎 (stored), escalate to the ops group, and "show query" for metric answers; values carry the turn id."""

    def button(action_id: str, text: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": text},
            "value": turn_id,
        }

    elements = [
        button("mops_feedback_up", "👍"),
        button("mops_feedback_down", "👎"),
        button("mops_escalate", "Escalate to ops"),
    ]
    if show_query:
        elements.append(button("mops_show_query", "Show query"))
    return {"type": "actions", "block_id": f"feedback:{turn_id}", "elements": elements}


def approval_card(action: Any) -> dict[str, Any]:
    """A stored PendingAction as a card: what will happen, the exact payload (its canonical JSON, which is what runs),
    its hash, risk, requester, approvers and expiry. The buttons carry only the action id."""
    try:
        payload = json.dumps(json.loads(action.payload), indent=2, ensure_ascii=False)
    except ValueError:
        payload = str(action.payload)
    code = "```\n" + payload[: SECTION_LIMIT - 8] + "\n```"
    expires: datetime | None = action.expires_at
    expiry = f" · expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    approvers = (action.required_group or "none configured (nobody can approve)").replace(",", " or ")
    requesters = ", ".join(f"<@{r}>" for r in (action.requesters or [action.requester_id]))
    facts = (
        f"{action.kind} · risk {action.risk} · requested by {requesters} (none of them can decide it) · "
        f"approvers: {approvers}{expiry} · sha256 `{action.payload_hash[:16]}…`"
    )
    notes = [f"Route: {r}" for r in (action.routing_reasons or [])]
    notes += [f":warning: {p}" for p in (action.provenance or [])]
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Approval needed:* {action.summary}"[:SECTION_LIMIT]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": code}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": facts[:SECTION_LIMIT]}]},
        *([{"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(notes)[:SECTION_LIMIT]}]}]
          if notes else []),
        {"type": "actions", "block_id": f"approval:{action.id}", "elements": [
            {"type": "button", "style": "primary", "action_id": "mops_approve", "value": action.id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "style": "danger", "action_id": "mops_reject", "value": action.id,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]},
    ]  # fmt: skip
    return {"text": f"Approval needed: {action.summary}"[:TEXT_LIMIT], "blocks": blocks}


def decided_card(blocks: list[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    """The same card for everyone, buttons replaced by who decided, when and the result."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    return [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": outcome[:SECTION_LIMIT]}]}]


def reject_modal(action_id: str, channel: str, message_ts: str, thread_ts: str) -> dict[str, Any]:
    meta = json.dumps({"action_id": action_id, "channel": channel, "ts": message_ts, "thread_ts": thread_ts})
    return {
        "type": "modal",
        "callback_id": "mops_reject_modal",
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Reject action"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "blocks": [
            {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason (required)"},
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "min_length": 3}},
        ],
    }  # fmt: skip
