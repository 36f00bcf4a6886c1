"""Exactly once or told why, in one process: claims with leases, orphans, store failures, drain, operator endpoints.

(tests/faults runs the same promises across real `mopsbot serve` processes, a private PostgreSQL and Chroma.)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from mopsbot.slack.app import SlackBot
from mopsbot.slack.questions import Question
from mopsbot.store.claims import EventClaims
from mopsbot.store.models import ProcessedEvent
from tests.slack.conftest import LENA, MKTG, PRIYA, Harness
from tests.slack.fake_slack import BOT_USER
from tests.slack.test_approvals import _executions, _status, _submit

SOP = "what's our SOP for a webinar?"
REF = re.compile(r"reference (ref-[0-9a-f]{10})")


def _replies(bot: Harness, thread: str) -> list[dict]:
    return [m for m in bot.fake.messages.get(MKTG, []) if m.get("bot_id") and m.get("thread_ts") == thread]


def _row(bot: Harness, event_id: str) -> ProcessedEvent:
    with bot.agent.store.session() as s:
        row = s.get(ProcessedEvent, event_id)
        assert row is not None
        s.expunge(row)
        return row


def _store_down(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("INSERT", {}, Exception("connection refused"))


def test_an_answered_event_is_closed_and_a_redelivery_to_another_replica_is_not_answered(
    make_bot: Callable[..., Harness],
) -> None:
    a = make_bot()
    event = a.user_message(f"<@{BOT_USER}> {SOP}")
    assert a.event(event).status == 200
    a.fake.wait_for("chat.postMessage", 1)
    a.fake.wait_idle()
    event_id = a.event_body(event)["event_id"]
    row = _row(a, event_id)
    assert row.status == "answered" and row.lease_until is None and row.request["text"] == SOP
    # a second replica on the same store gets the redelivery (Slack retries when an ack was slow)
    b = SlackBot(a.bot.settings, lambda: a.agent, client=a.bot.app.client)
    assert b.claims.owner != a.bot.claims.owner
    assert b.claims.claim(event_id).outcome == "duplicate"
    assert a.event(event, retry=1).status == 200
    a.fake.wait_idle()
    assert len(_replies(a, event["ts"])) == 1


def test_an_orphaned_claim_is_answered_once_by_another_replica_without_a_redelivery(bot: Harness) -> None:
    """A replica claimed the question and died: after its lease, the sweeper of another one answers it."""
    event = bot.user_message(f"<@{BOT_USER}> {SOP}")
    question = Question(LENA, MKTG, "channel", event["ts"], event["ts"], SOP, "EvOrphan1")
    dead = EventClaims(bot.agent.store, owner="dead-replica:1", lease_s=0.2)
    assert dead.claim("EvOrphan1", question.to_dict()).outcome == "new"
    live = EventClaims(bot.agent.store, owner="live-replica:2", lease_s=60)
    assert live.orphans() == []  # the lease still runs: nobody takes it
    time.sleep(0.3)
    assert bot.bot.answer_orphans() == 1
    bot.fake.wait_for("chat.postMessage", 1)
    bot.fake.wait_idle()
    assert bot.bot.answer_orphans() == 0
    assert len(_replies(bot, event["ts"])) == 1
    row = _row(bot, "EvOrphan1")
    assert row.status == "answered" and row.attempts == 2 and row.owner == bot.bot.claims.owner
    # Slack's own redelivery, later, changes nothing
    assert bot.event(event, event_id="EvOrphan1", retry=2).status == 200
    bot.fake.wait_idle()
    assert len(_replies(bot, event["ts"])) == 1


def test_a_takeover_does_not_answer_again_when_the_dead_replica_had_already_posted(bot: Harness) -> None:
    event = bot.user_message(f"<@{BOT_USER}> {SOP}")
    question = Question(LENA, MKTG, "channel", event["ts"], event["ts"], SOP, "EvPosted1")
    EventClaims(bot.agent.store, owner="dead:1", lease_s=0.1).claim("EvPosted1", question.to_dict())
    bot.bot.app.client.chat_postMessage(channel=MKTG, thread_ts=event["ts"], text="the dead replica's answer")
    time.sleep(0.2)
    assert bot.bot.answer_orphans() == 1
    deadline = time.monotonic() + 10
    while _row(bot, "EvPosted1").status == "claimed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _row(bot, "EvPosted1").status == "answered"
    assert [m["text"] for m in _replies(bot, event["ts"])] == ["the dead replica's answer"]


def test_two_replicas_racing_for_one_orphan_take_it_once(bot: Harness) -> None:
    question = Question(LENA, MKTG, "channel", "1.1", "1.1", SOP, "EvRace1")
    EventClaims(bot.agent.store, owner="dead:1", lease_s=0.05).claim("EvRace1", question.to_dict())
    time.sleep(0.1)
    takers = [EventClaims(bot.agent.store, owner=f"replica:{i}") for i in range(4)]
    won = [c.take_orphan("EvRace1") for c in takers]
    assert sum(w is not None for w in won) == 1


def test_when_the_store_cannot_claim_slack_is_asked_to_retry_and_the_last_retry_is_told_why(
    bot: Harness, monkeypatch
) -> None:
    monkeypatch.setattr(bot.bot.claims, "claim", _store_down)
    event = bot.user_message(f"<@{BOT_USER}> {SOP}")
    response = bot.event(event)
    assert response.status == 503 and "ref-" in response.body
    assert bot.event(event, retry=1).status == 503
    bot.fake.wait_idle(quiet=0.3)
    assert _replies(bot, event["ts"]) == []  # nothing said yet: Slack redelivers
    assert bot.event(event, retry=3).status == 200  # Slack's last try: the asker is told
    (told,) = bot.fake.wait_for("chat.postMessage", 1)
    assert "can't reach my state store" in told["text"] and REF.search(told["text"])
    monkeypatch.undo()
    # the store is back: a new question is answered normally
    later = bot.user_message(f"<@{BOT_USER}> {SOP}")
    assert bot.event(later).status == 200
    bot.fake.wait_for("chat.postMessage", 2)


def test_a_turn_whose_store_fails_tells_the_asker_with_a_reference(bot: Harness, monkeypatch, caplog) -> None:
    bot.agent  # noqa: B018
    monkeypatch.setattr(bot.agent, "run_turn", _store_down)
    event = bot.user_message(f"<@{BOT_USER}> {SOP}")
    assert bot.event(event).status == 200
    (told,) = bot.fake.wait_for("chat.postMessage", 1)
    ref = REF.search(told["text"]).group(1)
    assert ref in caplog.text
    bot.fake.wait_idle()
    row = _row(bot, bot.event_body(event)["event_id"])
    assert row.status == "failed" and row.reference == ref


def test_an_approve_click_while_the_store_is_down_gets_a_private_reason(bot: Harness, monkeypatch) -> None:
    _thread, action_id, card = _submit(bot)
    monkeypatch.setattr(bot.agent.approvals, "decide", _store_down)
    assert bot.click(PRIYA, "mops_approve", card).status == 200
    (told,) = bot.fake.wait_for("chat.postEphemeral", 1)
    assert told["user"] == PRIYA and REF.search(told["text"]) and "nothing was decided" in told["text"]
    monkeypatch.undo()
    assert _status(bot, action_id) == "pending" and _executions(bot, action_id) == 0


def test_a_draining_replica_refuses_new_events_and_reports_not_ready(bot: Harness) -> None:
    assert bot.get("/readyz").status == 200
    bot.bot.lifecycle.draining.set()
    event = bot.user_message(f"<@{BOT_USER}> {SOP}")
    assert bot.event(event).status == 503
    ready = bot.get("/readyz")
    assert ready.status == 503 and json.loads(ready.body)["draining"] is True
    assert bot.get("/livez").status == 200
    bot.fake.wait_idle(quiet=0.3)
    assert _replies(bot, event["ts"]) == []
    with bot.agent.store.session() as s:  # not claimed, so another replica takes the redelivery
        assert (
            s.scalars(
                select(ProcessedEvent).where(ProcessedEvent.event_id == bot.event_body(event)["event_id"])
            ).first()
            is None
        )


def test_drain_waits_for_accepted_turns_and_gives_back_what_did_not_finish(bot: Harness) -> None:
    lifecycle = bot.bot.lifecycle
    lifecycle.accept("EvSlow1")
    start = time.monotonic()
    assert lifecycle.drain(0.3) == ["EvSlow1"]
    assert 0.25 < time.monotonic() - start < 2
    lifecycle.done("EvSlow1")
    assert lifecycle.drain(5) == []


def test_readiness_lists_each_dependency_and_fails_when_the_store_cannot_write(bot: Harness, monkeypatch) -> None:
    report = json.loads(bot.get("/readyz").body)
    assert report["ready"] is True
    assert set(report["checks"]) == {"store", "slack", "warehouse", "index", "llm"}
    assert report["checks"]["store"] == {"ok": True, "detail": "writable", "required": True}
    monkeypatch.setattr(bot.bot.claims, "probe", _store_down)
    monkeypatch.setattr("mopsbot.slack.health.CACHE_S", 0.0)
    down = bot.get("/readyz")
    body = json.loads(down.body)
    assert down.status == 503 and body["checks"]["store"]["ok"] is False
    assert "connection refused" in body["checks"]["store"]["detail"]


def test_metrics_are_served_in_prometheus_format(bot: Harness) -> None:
    bot.mention(SOP)
    bot.fake.wait_for("chat.postMessage", 1)
    bot.fake.wait_idle()
    text = bot.get("/metrics").body
    assert 'mopsbot_events_total{kind="app_mention",outcome="accepted"}' in text
    assert "mopsbot_ack_seconds_bucket" in text


def test_claims_expire_by_lease_not_by_time_since_received() -> None:
    """The lease decides: an old row whose owner renewed is not an orphan; an answered one never is."""
    assert timedelta(seconds=1) < timedelta(seconds=2)  # the clock below is injected
    clock = [datetime(2026, 12, 1, tzinfo=UTC)]
    from mopsbot.store.db import Store

    store = Store.open("sqlite://")
    claims = EventClaims(store, owner="a", lease_s=10, clock=lambda: clock[0])
    claims.claim("E1", {"text": "x"})
    claims.claim("E2", {"text": "y"})
    claims.finish("E2", "answered")
    clock[0] += timedelta(seconds=11)
    assert claims.orphans() == ["E1"]
    other = EventClaims(store, owner="b", lease_s=10, clock=lambda: clock[0])
    assert other.claim("E2").outcome == "duplicate"
    assert other.claim("E1").outcome == "takeover"
    assert claims.finish("E1", "answered") is False  # the old owner lost it: its late close changes nothing


def test_a_live_replica_renews_the_leases_of_its_slow_turns_so_no_sweeper_answers_them_twice(bot: Harness) -> None:
    """A turn (or a slow Slack post) that outlasts one lease keeps its claim while its replica lives."""
    from mopsbot.slack.server import Service

    settings = bot.bot.settings.model_copy(update={"claim_lease_s": 0.3, "sweep_interval_s": 0.1})
    slow = SlackBot(settings, lambda: bot.agent, client=bot.bot.app.client)
    question = Question(LENA, MKTG, "channel", "9.1", "9.1", SOP, "EvSlow2")
    slow.claims.claim("EvSlow2", question.to_dict())
    slow.lifecycle.accept("EvSlow2")  # queued or being answered here
    service = Service(slow, settings)
    service.start()
    try:
        other = EventClaims(bot.agent.store, owner="other-replica:9", lease_s=60)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert other.orphans() == []
            assert other.take_orphan("EvSlow2") is None
            time.sleep(0.05)
    finally:
        slow.lifecycle.done("EvSlow2")
        service.stop()
    time.sleep(0.5)  # the replica stopped renewing (it died, say): the lease runs out and the claim can be taken
    assert other.take_orphan("EvSlow2") is not None
