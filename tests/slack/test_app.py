"""What a Slack user sees when talking to the bot: answers in threads, once, within Slack's limits, never silent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from mopsbot.agent.runner import Agent
from mopsbot.agent.turn import TurnRecord
from mopsbot.errors import UserFacingError
from mopsbot.slack.blocks import BLOCK_LIMIT, SECTION_LIMIT, answer_messages, split_text
from mopsbot.store.models import Feedback
from tests.slack.conftest import LENA, MKTG, SAM, Harness, contexts, sections
from tests.slack.fake_slack import BOT_ID, BOT_USER

SOP_QUESTION = "what's our SOP for a webinar?"


def _posts(bot: Harness) -> list[dict[str, Any]]:
    bot.fake.wait_idle()
    return bot.fake.of("chat.postMessage")


def test_a_mention_is_acked_fast_and_answered_in_its_thread_with_sources(bot: Harness) -> None:
    event = bot.user_message(f"<@{BOT_USER}> {SOP_QUESTION}")
    response = bot.event(event)  # the very first request: auth.test and the agent are not warmed up yet
    assert response.status == 200 and response.seconds < 3.0, response
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["channel"] == MKTG and posted["thread_ts"] == event["ts"]
    assert any("webinar" in text.lower() for text in sections(posted))
    assert any(text.startswith("Sources:") and "Webinar Runbook" in text for text in contexts(posted))
    assert len(_posts(bot)) == 1


def test_a_redelivered_event_is_answered_once(bot: Harness) -> None:
    event = bot.user_message(f"<@{BOT_USER}> {SOP_QUESTION}")
    assert bot.event(event, event_id="Ev0REDELIVER").status == 200
    bot.event(event, event_id="Ev0REDELIVER", retry=1)
    bot.fake.wait_for("chat.postMessage", 1)
    assert len(_posts(bot)) == 1


def test_a_redelivery_is_acknowledged_with_200(bot: Harness) -> None:
    event = bot.user_message(f"<@{BOT_USER}> {SOP_QUESTION}")
    assert bot.event(event, event_id="Ev0REDELIVER").status == 200
    assert bot.event(event, event_id="Ev0REDELIVER", retry=1).status == 200


def test_follow_ups_in_the_bots_threads_are_answered_and_other_messages_ignored(bot: Harness) -> None:
    thread = bot.mention(SOP_QUESTION)
    bot.fake.wait_for("chat.postMessage", 1)

    bot.say("and how far ahead do we start promoting it?", thread_ts=thread)
    second = bot.fake.wait_for("chat.postMessage", 2)[1]
    assert second["thread_ts"] == thread

    bot.say("lunch anyone?", user=SAM)  # channel chatter, not in a thread
    other_thread = bot.fake.new_ts()
    bot.say("what's our SOP for a webinar?", user=SAM, thread_ts=other_thread)  # a thread the bot is not in
    own = bot.user_message("an answer", user=BOT_USER, thread_ts=thread, kind="message", bot_id=BOT_ID)
    assert bot.event(own).status == 200
    other_bot = bot.user_message("a digest", user="U0OTHERBOT", thread_ts=thread, kind="message", bot_id="B0OTHER")
    assert bot.event(other_bot).status == 200
    # one message with a mention arrives twice, as app_mention and as message (different event ids)
    mention = bot.user_message(f"<@{BOT_USER}> who owns the webinar runbook?", thread_ts=thread)
    assert bot.event(mention).status == 200
    assert bot.event({**mention, "type": "message", "channel_type": "channel"}).status == 200

    posts = bot.fake.wait_for("chat.postMessage", 3)
    assert len(_posts(bot)) == 3
    assert {p["thread_ts"] for p in posts} == {thread}


def test_a_direct_message_is_answered_in_a_thread_of_that_dm(bot: Harness) -> None:
    dm = "D07LV00040"
    ts = bot.say(SOP_QUESTION, channel=dm)
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["channel"] == dm and posted["thread_ts"] == ts
    assert sections(posted)


def test_a_direct_message_that_mentions_the_bot_is_answered(bot: Harness) -> None:
    ts = bot.say(f"<@{BOT_USER}> {SOP_QUESTION}", channel="D07LV00040")
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["thread_ts"] == ts


def test_a_metric_question_shows_a_monospace_table(bot: Harness) -> None:
    thread = bot.mention("CPL by channel last quarter vs the quarter before")
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["thread_ts"] == thread
    tables = [text for text in sections(posted) if text.startswith("```")]
    assert tables and "paid_search" in tables[0] and tables[0].endswith("```")
    assert any("data through" in text for text in contexts(posted))


def _record(answer: str, **fields: Any) -> TurnRecord:
    return TurnRecord(turn_id="turn1", conversation_id="c1", thread_id="t1", backend="stub", answer=answer, **fields)


def _prose(n_chars: int) -> str:
    """Words with a line end now and then, exactly n_chars long."""
    words = ["attribution", "webinar", "pipeline", "budget", "MQL", "EMEA"] * 6
    line = " ".join(words) + "\n"
    return (line * (n_chars // len(line) + 1))[:n_chars]


def _within_limits(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        assert len(message["blocks"]) <= BLOCK_LIMIT
        assert all(len(text) <= SECTION_LIMIT for text in sections(message))


def test_split_text_keeps_every_character_within_the_section_limit() -> None:
    text = _prose(10_000)
    pieces = split_text(text)
    assert len(pieces) >= 4 and all(len(p) <= SECTION_LIMIT for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", text)
    unbroken = "x" * 7_000  # no line ends or spaces: hard cuts
    assert "".join(split_text(unbroken)) == unbroken


def test_a_long_answer_is_split_into_messages_within_the_block_limit() -> None:
    text = _prose(160_000)  # ~54 sections: more than one message can hold
    messages = answer_messages(_record(text, citations=[{"doc_id": "d", "title": "Doc", "section": "S"}]))
    assert len(messages) == 2
    _within_limits(messages)
    shown = "".join(t for m in messages for t in sections(m))
    assert re.sub(r"\s", "", shown) == re.sub(r"\s", "", text)
    assert all(len(m["text"]) <= 3900 for m in messages)


def test_a_long_answer_reaches_slack_as_several_valid_messages(make_bot: Callable[..., Harness]) -> None:
    text = _prose(160_000)

    def long_answers(agent: Agent) -> Agent:
        agent.run_turn = lambda message, caller, thread_id=None: _record(text)  # type: ignore[method-assign]
        return agent

    bot = make_bot(wrap=long_answers)
    thread = bot.mention("tell me everything")
    posts = bot.fake.wait_for("chat.postMessage", 2)
    _within_limits(posts)
    assert {p["thread_ts"] for p in posts} == {thread}
    assert re.sub(r"\s", "", "".join(t for p in posts for t in sections(p))) == re.sub(r"\s", "", text)


def _failing(error: Exception) -> Callable[[Agent], Agent]:
    def wrap(agent: Agent) -> Agent:
        def run_turn(*args: Any, **kwargs: Any) -> TurnRecord:
            raise error

        agent.run_turn = run_turn  # type: ignore[method-assign]
        return agent

    return wrap


def test_a_failing_turn_posts_a_reference_id_and_not_the_error(make_bot: Callable[..., Harness]) -> None:
    bot = make_bot(wrap=_failing(RuntimeError("db password=hunter2 in traceback")))
    thread = bot.mention(SOP_QUESTION)
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["thread_ts"] == thread
    assert re.search(r"reference ref-[0-9a-f]{10}", posted["text"]) and "hunter2" not in json.dumps(posted)


def test_a_user_facing_error_is_shown_as_its_message(make_bot: Callable[..., Harness]) -> None:
    bot = make_bot(wrap=_failing(UserFacingError("the LLM endpoint is not reachable")))
    bot.mention(SOP_QUESTION)
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["text"] == "Sorry: the LLM endpoint is not reachable"


def test_a_rate_limited_post_is_retried_and_shown_once(make_bot: Callable[..., Harness]) -> None:
    bot = make_bot(rate_limit_once=("chat.postMessage",))
    bot.mention(SOP_QUESTION)
    bot.fake.wait_for("chat.postMessage", 1)
    assert [a.status for a in bot.fake.attempts("chat.postMessage")] == [429, 200]
    assert len(_posts(bot)) == 1


def test_unsigned_requests_are_refused_and_health_is_reported(bot: Harness) -> None:
    event = bot.user_message(f"<@{BOT_USER}> {SOP_QUESTION}")
    assert bot.event(event, secret="not-the-secret").status == 401
    for path in ("/livez", "/healthz"):
        assert bot.get(path).status == 200 and json.loads(bot.get(path).body) == {"ok": True, "draining": False}
    assert bot.get("/elsewhere").status == 404
    bot.fake.wait_idle()
    assert bot.fake.of("chat.postMessage") == []


def test_the_slash_command_posts_the_question_and_answers_in_its_thread(bot: Harness) -> None:
    form = {"command": "/mops", "text": SOP_QUESTION, "user_id": LENA, "channel_id": MKTG, "team_id": "T0FAKE",
            "trigger_id": "trigger-cmd", "response_url": "http://127.0.0.1:9/unused"}  # fmt: skip
    assert bot.post(urlencode(form), "application/x-www-form-urlencoded").status == 200
    question, answer = bot.fake.wait_for("chat.postMessage", 2)
    assert question["text"] == f"<@{LENA}> asked: {SOP_QUESTION}" and "thread_ts" not in question
    top = bot.fake.messages[MKTG][0]
    assert answer["thread_ts"] == top["ts"] and sections(answer)


def test_a_thumbs_up_is_stored_and_thanked_privately(bot: Harness) -> None:
    bot.mention(SOP_QUESTION)
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    answer = bot.fake.messages[MKTG][-1]
    assert bot.click(SAM, "mops_feedback_up", answer).status == 200
    (thanks,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert thanks["user"] == SAM and "Thanks" in thanks["text"]
    with bot.agent.store.session() as s:
        (row,) = s.scalars(select(Feedback)).all()
        assert (row.user_id, row.value, row.channel_id) == (SAM, 1, MKTG)
    assert posted["blocks"][-1]["block_id"] == f"feedback:{row.turn_id}"
