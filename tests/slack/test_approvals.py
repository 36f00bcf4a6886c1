"""Approval cards in Slack: only the action id on the buttons, refusals shown privately, one execution, reasons kept."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mopsbot.store.models import ActionExecution, Message, PendingAction
from tests.slack.conftest import DANA, LENA, MKTG, PRIYA, SAM, Harness, contexts, sections

BRIEF = (
    "draft a Q1 webinar on AI ops for EMEA, 8k budget, audience emea-prospects, speakers Dana Whitfield, "
    "registration form rf-ai-ops, 150 mqls"
)


def _submit(bot: Harness) -> tuple[str, str, dict[str, Any]]:
    """Lena drafts in a thread and submits without a mention; returns (thread ts, action id, the card as held)."""
    thread = bot.mention(BRIEF, user=LENA)
    bot.fake.wait_for("chat.postMessage", 1)
    bot.say("submit it", user=LENA, thread_ts=thread)
    posts = bot.fake.wait_for("chat.postMessage", 3)
    cards = [p for p in posts if any(b["type"] == "actions" and b["block_id"].startswith("approval:")
                                     for b in p.get("blocks") or [])]  # fmt: skip
    assert len(cards) == 1 and cards[0]["thread_ts"] == thread, posts
    with bot.agent.store.session() as s:
        (action_id,) = s.scalars(select(PendingAction.id).where(PendingAction.status == "pending")).all()
    card = next(m for m in bot.fake.messages[MKTG] if m.get("blocks") == cards[0]["blocks"])
    return thread, action_id, copy.deepcopy(card)  # as the clients show it, unaffected by later updates


def _executions(bot: Harness, action_id: str) -> int:
    with bot.agent.store.session() as s:
        return s.scalar(select(func.count()).select_from(ActionExecution).where(ActionExecution.action_id == action_id))


def _status(bot: Harness, action_id: str) -> str:
    with bot.agent.store.session() as s:
        action = s.get(PendingAction, action_id)
        assert action is not None
        return action.status


def test_the_card_shows_the_payload_and_its_buttons_carry_only_the_action_id(bot: Harness) -> None:
    _, action_id, card = _submit(bot)
    (buttons,) = [b for b in card["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in buttons["elements"]] == [
        ("mops_approve", action_id),
        ("mops_reject", action_id),
    ]
    assert buttons["block_id"] == f"approval:{action_id}"
    assert sections(card)[0].startswith("*Approval needed:*")
    assert "rf-ai-ops" in sections(card)[1] and sections(card)[1].startswith("```")
    facts = contexts(card)[0]
    assert f"requested by <@{LENA}>" in facts and "mops-managers" in facts and "sha256" in facts
    assert _executions(bot, action_id) == 0


def test_only_an_authorized_approver_can_approve_and_it_runs_once(bot: Harness) -> None:
    thread, action_id, card = _submit(bot)

    assert bot.click(SAM, "mops_approve", card).status == 200
    (refused,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert (
        refused["user"] == SAM and refused["text"].startswith("Not done:") and "Sam Carter is not in" in refused["text"]
    )
    assert bot.click(LENA, "mops_approve", card).status == 200
    self_approval = bot.fake.wait_for("chat.postEphemeral", 2)[1]
    assert self_approval["user"] == LENA and "you requested this action" in self_approval["text"]
    bot.fake.wait_idle()
    assert bot.fake.of("chat.update") == [] and _status(bot, action_id) == "pending"
    assert _executions(bot, action_id) == 0

    assert bot.click(PRIYA, "mops_approve", card).status == 200
    (update,) = bot.fake.wait_for("chat.update", 1)
    assert update["channel"] == MKTG and update["ts"] == card["ts"]
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    assert "Approved by Priya Raman and executed once" in contexts(update)[-1]
    assert sections(update)[0].startswith("*Approval needed:*")  # the card itself stays readable
    outcome = bot.fake.wait_for("chat.postMessage", 4)[3]
    assert outcome["thread_ts"] == thread and outcome["text"].startswith("Approved by Priya Raman and executed once")
    assert _executions(bot, action_id) == 1 and _status(bot, action_id) == "executed"

    assert bot.click(DANA, "mops_approve", card).status == 200  # a stale card in someone else's client
    late = bot.fake.wait_for("chat.postEphemeral", 3)[2]
    assert late["user"] == DANA and "already executed by Priya Raman" in late["text"]
    bot.fake.wait_idle()
    assert _executions(bot, action_id) == 1
    assert len(bot.fake.of("chat.postMessage")) == 4  # no second outcome in the thread


def _open_reject_modal(bot: Harness, user: str, card: dict[str, Any]) -> dict[str, Any]:
    assert bot.click(user, "mops_reject", card).status == 200
    (opened,) = bot.fake.wait_for("views.open", 1)
    assert opened["trigger_id"].startswith(f"trigger-{user}-")
    return opened["view"]


def test_a_rejection_needs_a_reason_and_the_reason_reaches_the_thread(bot: Harness) -> None:
    thread, action_id, card = _submit(bot)
    view = _open_reject_modal(bot, PRIYA, card)
    assert view["type"] == "modal" and view["callback_id"] == "mops_reject_modal"
    assert json.loads(view["private_metadata"])["action_id"] == action_id

    for empty in ("", "   "):
        refused = bot.submit_view(PRIYA, view, empty)
        assert refused.status == 200
        assert json.loads(refused.body) == {
            "response_action": "errors",
            "errors": {"reason": "Not done: a rejection needs a reason"},
        }
    outsider = json.loads(bot.submit_view(SAM, view, "looks wrong").body)
    assert outsider["response_action"] == "errors" and "Sam Carter is not in" in outsider["errors"]["reason"]
    assert _status(bot, action_id) == "pending"

    reason = "Budget for Q1 EMEA webinars is not approved yet"
    accepted = bot.submit_view(PRIYA, view, reason)
    assert accepted.status == 200 and accepted.body in ("", "{}")
    (update,) = bot.fake.wait_for("chat.update", 1)
    assert update["ts"] == card["ts"] and not [b for b in update["blocks"] if b["type"] == "actions"]
    assert contexts(update)[-1].startswith(f"Rejected by Priya Raman. Reason: {reason}")
    outcome = bot.fake.wait_for("chat.postMessage", 4)[3]
    assert outcome["thread_ts"] == thread and reason in outcome["text"]
    assert _status(bot, action_id) == "rejected" and _executions(bot, action_id) == 0

    # the next turn in this thread has the rejection in its history
    with bot.agent.store.session() as s:
        conversation_id = s.scalars(select(PendingAction.conversation_id).where(PendingAction.id == action_id)).one()
        events = s.scalars(select(Message.content).where(Message.conversation_id == conversation_id,
                                                         Message.role == "event")).all()  # fmt: skip
    assert any(reason in e and "Priya Raman rejected" in e for e in events)
    history = bot.agent.conversations.load(conversation_id)
    assert any(m.role == "event" and reason in m.content for m in history)
    bot.say("ok, what should I change?", user=LENA, thread_ts=thread)
    assert bot.fake.wait_for("chat.postMessage", 5)[4]["thread_ts"] == thread
    bot.fake.wait_idle()
    assert bot.fake.of("chat.postEphemeral") == []


def test_a_rejected_card_keeps_its_summary_and_payload(bot: Harness) -> None:
    _, _, card = _submit(bot)
    view = _open_reject_modal(bot, PRIYA, card)
    assert bot.submit_view(PRIYA, view, "not this quarter").status == 200
    (update,) = bot.fake.wait_for("chat.update", 1)
    assert sections(update)[:2] == sections(card)[:2]


def test_a_click_on_an_expired_card_is_refused_and_closes_the_card(bot: Harness) -> None:
    _, action_id, card = _submit(bot)
    bot.agent.approvals.clock = lambda: datetime.now(UTC) + timedelta(hours=73)  # past the 72 h expiry
    assert bot.click(PRIYA, "mops_approve", card).status == 200
    (refused,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert refused["user"] == PRIYA and "expired" in refused["text"]
    (update,) = bot.fake.wait_for("chat.update", 1)
    assert not [b for b in update["blocks"] if b["type"] == "actions"] and "expired" in contexts(update)[-1]
    assert _status(bot, action_id) == "expired" and _executions(bot, action_id) == 0
