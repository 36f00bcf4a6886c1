"""Answer extras: escalate to the ops group, show the query behind a metric answer, metric figures by channel rule."""

from __future__ import annotations

from tests.slack.conftest import LENA, MKTG, SAM, Harness

METRIC_QUESTION = "CPL by channel last quarter vs the quarter before"
OTHER_PUBLIC = "C07RANDOM01"  # a public channel that is not in slack.metric_channels


def test_escalate_tags_the_ops_group_in_the_thread(bot: Harness) -> None:
    ts = bot.mention("what's our SOP for a webinar?")
    bot.fake.wait_for("chat.postMessage", 1)
    answer = bot.fake.messages[MKTG][-1]
    assert bot.click(SAM, "mops_escalate", answer).status == 200
    _, escalation = bot.fake.wait_for("chat.postMessage", 2)
    assert escalation["thread_ts"] == ts
    assert escalation["text"].startswith("@mops-team: ") and f"<@{SAM}>" in escalation["text"]


def test_show_query_sends_the_sql_of_a_metric_answer_to_the_clicker(bot: Harness) -> None:
    bot.mention(METRIC_QUESTION)
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    buttons = [e["action_id"] for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "mops_show_query" in buttons
    answer = bot.fake.messages[MKTG][-1]
    assert bot.click(LENA, "mops_show_query", answer).status == 200
    (shown,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert shown["user"] == LENA and "```WITH c0 AS (SELECT" in shown["text"]


def test_metric_figures_stay_with_the_asker_outside_the_configured_channels(bot: Harness) -> None:
    bot.mention(METRIC_QUESTION, channel=OTHER_PUBLIC)
    (figures,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert figures["user"] == LENA and "CPL by channel, Q3 2026" in figures["text"]
    (note,) = bot.fake.wait_for("chat.postMessage", 1)
    assert note["channel"] == OTHER_PUBLIC and "sent the figures to you only" in note["text"]
    assert "$" not in note["text"]


def test_assistant_thread_gets_suggested_prompts_then_a_thinking_status_and_an_answer(bot: Harness) -> None:
    dm, thread = "D07LV0004", bot.fake.new_ts()
    started = {"type": "assistant_thread_started", "event_ts": thread,
               "assistant_thread": {"user_id": LENA, "channel_id": dm, "thread_ts": thread, "context": {}}}  # fmt: skip
    assert bot.event(started, event_id="EvASSISTSTART").status == 200
    (prompts,) = bot.fake.wait_for("assistant.threads.setSuggestedPrompts", 1)
    assert "CPL by channel last quarter vs the quarter before" in str(prompts["prompts"])
    question = bot.user_message("what's our SOP for a webinar?", channel=dm, thread_ts=thread, kind="message")
    assert bot.event(question).status == 200
    (status,) = bot.fake.wait_for("assistant.threads.setStatus", 1)
    assert status["status"] == "thinking…"
    posts = bot.fake.wait_for("chat.postMessage", 2)
    assert posts[-1]["thread_ts"] == thread and posts[-1]["channel"] == dm


def test_a_metric_breakdown_comes_with_a_chart_in_the_thread(bot: Harness) -> None:
    ts = bot.mention(METRIC_QUESTION)
    (done,) = bot.fake.wait_for("files.completeUploadExternal", 1)
    assert done["channel_id"] == MKTG and done["thread_ts"] == ts
    assert "CPL" in done["files"][0]["title"]
    (upload,) = bot.fake.uploads
    assert upload["bytes"].startswith(b"\x89PNG\r\n\x1a\n")
