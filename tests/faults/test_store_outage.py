"""The PostgreSQL state store goes away for ~10 s under two replicas: Slack is asked to retry, the last retry and
approval clicks are told why with a reference, nothing runs, and everything works again once it is back."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from tests.faults.conftest import (
    KNOWLEDGE_Q,
    LENA,
    METRIC_Q,
    PRIYA,
    PgCluster,
    Replica,
    Slack,
    approval_cards,
    assert_reference,
    has_reference,
    message_text,
    wait_until,
)  # fmt: skip
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.faults

BRIEF = (
    "draft a Q1 webinar on AI ops for EMEA, 8k budget, audience emea-prospects, speakers Dana Whitfield, "
    "registration form rf-ai-ops, 150 mqls"
)
OUTAGE_S = 10.0


@pytest.fixture
def pair(start_pair: Callable[..., tuple[Replica, Replica]]) -> tuple[Replica, Replica]:
    return start_pair()


def _pending_card(a: Replica, slack: Slack, fake: FakeSlack) -> tuple[str, dict]:
    """Lena drafts a campaign and submits it: an approval card is in the channel (the store is up)."""
    body, ack = slack.ask(a, BRIEF, user=LENA)
    assert ack.status == 200
    thread = body["event"]["ts"]
    slack.wait_answered([thread], timeout=60)
    submit = slack.question("submit it", user=LENA, thread_ts=thread, kind="message")
    assert slack.send(a, submit).status == 200
    (card,) = wait_until(lambda: approval_cards(fake), 60, "an approval card")
    return thread, copy.deepcopy(card)


def _action(store_url: str, action_id: str) -> tuple[str, int]:
    from mopsbot.store.db import Store
    from mopsbot.store.models import ActionExecution, PendingAction

    store = Store.open(store_url)
    try:
        with store.session() as s:
            action = s.get(PendingAction, action_id)
            assert action is not None
            runs = s.scalar(
                select(func.count()).select_from(ActionExecution).where(ActionExecution.action_id == action_id)
            )
            return action.status, int(runs or 0)
    finally:
        store.close()


def test_a_store_outage_asks_slack_to_retry_explains_the_last_retry_and_recovers(
    pair: tuple[Replica, Replica], slack: Slack, fake: FakeSlack, pg: PgCluster, store_url: str
) -> None:
    a, b = pair
    card_thread, card = _pending_card(a, slack, fake)
    action_id = next(e["value"] for blk in card["blocks"] if blk["type"] == "actions" for e in blk["elements"])
    card_posts = len(slack.posts(card_thread))

    pg.stop()
    down = time.monotonic()
    for replica in pair:
        ready = replica.wait_readyz(503, timeout=10)
        assert ready["ready"] is False and ready["checks"]["store"]["ok"] is False, ready

    first, ack_a = slack.ask(a, METRIC_Q)
    second, ack_b = slack.ask(b, KNOWLEDGE_Q)
    assert (ack_a.status, ack_b.status) == (503, 503), (ack_a, ack_b)  # Slack will redeliver both

    last, ack = slack.ask(a, KNOWLEDGE_Q, retry=3)  # Slack's last try: no more redeliveries after this one
    assert ack.status == 200, ack
    slack.wait_answered([last["event"]["ts"]], timeout=30)
    (sorry,) = slack.replies(last["event"]["ts"])
    assert_reference(sorry, pair)

    ephemerals = len(fake.of("chat.postEphemeral"))
    assert slack.click(b, PRIYA, "mops_approve", card).status == 200
    notice = fake.wait_for("chat.postEphemeral", ephemerals + 1, timeout=30)[-1]
    assert notice["user"] == PRIYA, notice
    assert_reference(message_text(notice), pair)

    time.sleep(max(0.0, down + OUTAGE_S - time.monotonic()))
    pg.start()
    for replica in pair:
        ready = replica.wait_readyz(200, timeout=30)
        assert ready["ready"] is True and ready["checks"]["store"]["ok"] is True, ready

    assert slack.send(b, first, retry=1).status == 200  # the redeliveries land on the other replica
    assert slack.send(a, second, retry=1).status == 200
    fresh, ack = slack.ask(b, METRIC_Q)
    assert ack.status == 200
    answered = [first["event"]["ts"], second["event"]["ts"], fresh["event"]["ts"]]
    slack.wait_answered(answered, timeout=60)
    slack.settle()

    counts = slack.counts([*answered, last["event"]["ts"]])
    assert all(n == 1 for n in counts.values()), counts
    for thread in answered:
        assert not [t for t in slack.replies(thread) if has_reference(t)], slack.replies(thread)
    assert len(slack.posts(card_thread)) == card_posts  # no outcome was posted for the click
    assert _action(store_url, action_id) == ("pending", 0)  # and nothing ran
