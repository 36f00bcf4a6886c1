"""SIGTERM: a replica stops taking events, finishes what it is answering, exits 0; nothing is lost or doubled."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.conftest import DRAIN_S, KNOWLEDGE_Q, METRIC_Q, Replica, Slack, wait_until
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.faults


LEASE = 20.0  # above turn budget + the slowed-down post below: a drain never outlives a live claim here


@pytest.fixture
def pair(start_pair: Callable[..., tuple[Replica, Replica]]) -> tuple[Replica, Replica]:
    return start_pair(env={"MOPSBOT_CLAIM_LEASE_S": str(LEASE)})


def test_sigterm_finishes_in_flight_turns_refuses_new_events_and_exits_0(
    pair: tuple[Replica, Replica], slack: Slack, fake: FakeSlack
) -> None:
    a, b = pair
    questions = [KNOWLEDGE_Q, METRIC_Q, "how quickly do SDRs have to reach out when someone requests a demo?"]
    bodies = [slack.question(q) for q in questions]
    in_flight = {body["event"]["ts"] for body in bodies}
    fake.delay("chat.postMessage", 4.0, match=lambda p: p.get("thread_ts") in in_flight)  # answers take a while
    for body in bodies:
        assert slack.send(a, body).status == 200
    fake.wait_paused(1, timeout=60)  # at least one turn is posting its answer

    a.terminate()
    termed = time.monotonic()
    wait_until(lambda: a.readyz()[1].get("draining") is True, 5, "a to report draining on /readyz")
    status, ready = a.readyz()
    assert status == 503 and ready["ready"] is False, ready
    late, ack = slack.ask(a, METRIC_Q)
    assert ack.status == 503, ack  # Slack will redeliver it, to a replica that takes it

    code = a.wait(DRAIN_S + 10)
    took = time.monotonic() - termed
    assert code == 0, a.tail()
    assert took <= DRAIN_S + 5, f"exited {took:.1f}s after SIGTERM"

    assert slack.send(b, late, retry=1).status == 200
    threads = [*in_flight, late["event"]["ts"]]
    slack.wait_answered(threads, timeout=LEASE + 30)
    slack.settle(quiet=LEASE + 3)
    counts = slack.counts(threads)
    assert all(n == 1 for n in counts.values()), counts
