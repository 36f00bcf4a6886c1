"""Two replicas on one PostgreSQL store: every question answered once, across redeliveries and a kill -9."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.conftest import (
    KNOWLEDGE_Q,
    LEASE_S,
    METRIC_Q,
    SWEEP_S,
    Replica,
    Slack,
    has_reference,
    wait_until,
)
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.faults

QUESTIONS = [
    KNOWLEDGE_Q,
    METRIC_Q,
    "how quickly do SDRs have to reach out when someone requests a demo?",
    "what was our cost per lead in EMEA last month?",
]


@pytest.fixture
def pair(start_pair: Callable[..., tuple[Replica, Replica]]) -> tuple[Replica, Replica]:
    return start_pair()


def test_twenty_questions_over_two_replicas_are_answered_once_and_redeliveries_are_not(
    start_pair: Callable[..., tuple[Replica, Replica]], slack: Slack
) -> None:
    # nothing fails here: a turn budget that 10 concurrent turns per replica on 2 busy cores cannot run out of
    pair = a, b = start_pair(short_lease=False)
    for replica in pair:
        assert replica.get("/livez").status == 200
        status, ready = replica.readyz()
        assert status == 200 and ready.get("ready") is True and ready.get("draining") is False, ready
        assert set(ready["checks"]) >= {"store", "warehouse", "index", "llm", "slack"}, ready
        assert ready["checks"]["store"]["ok"] is True and ready["checks"]["store"]["required"] is True, ready

    sent = []
    for i in range(20):
        target = pair[i % 2]
        body, ack = slack.ask(target, QUESTIONS[i % len(QUESTIONS)])
        assert ack.status == 200, (i, target.name, ack)
        sent.append((body, target))
    threads = [body["event"]["ts"] for body, _ in sent]
    slack.wait_answered(threads, timeout=120)

    for body, target in sent:  # Slack redelivers, and its retry lands on the other replica
        other = b if target is a else a
        assert slack.send(other, body, retry=1).status == 200
    slack.settle()

    counts = slack.counts(threads)
    assert all(n == 1 for n in counts.values()), {t: n for t, n in counts.items() if n != 1}
    failed = {t: text for t in threads for text in slack.replies(t) if has_reference(text)}
    assert not failed, failed  # nothing was broken: no reply reports a failure
    for replica in pair:
        assert replica.metric("mopsbot_claim_takeovers_total") is not None, replica.get("/metrics").body[:2000]
    events = [replica.metric("mopsbot_events_total") for replica in pair]
    assert None not in events and sum(events) >= 20, events  # type: ignore[arg-type]


def test_a_turn_killed_mid_flight_is_answered_once_by_the_other_replica_without_redelivery(
    pair: tuple[Replica, Replica], slack: Slack, fake: FakeSlack
) -> None:
    a, b = pair
    body = slack.question(KNOWLEDGE_Q)
    thread = body["event"]["ts"]
    fake.hold("chat.postMessage", match=lambda p: p.get("thread_ts") == thread, times=1)  # a's post only
    assert slack.send(a, body).status == 200
    fake.wait_paused(1, timeout=30)  # a has run the turn and is posting the answer
    a.kill()
    wait_until(lambda: fake.dropped, 5, "the killed replica's post to be dropped")  # the harness did its part
    killed = time.monotonic()

    slack.wait_answered([thread], timeout=LEASE_S + 5 * SWEEP_S + 15)  # no redelivery: b's sweeper takes over
    took = time.monotonic() - killed
    assert slack.counts([thread])[thread] == 1
    (reply,) = slack.replies(thread)
    assert not has_reference(reply), reply  # a real answer, not an apology
    assert (b.metric("mopsbot_claim_takeovers_total") or 0) >= 1, f"answered {took:.1f}s after the kill"

    assert slack.send(b, body, retry=1).status == 200  # Slack's redelivery after the lease
    slack.settle()
    assert slack.counts([thread])[thread] == 1
