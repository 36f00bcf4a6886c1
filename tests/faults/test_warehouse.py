"""The warehouse file changes under a serving replica: reseeded data is read, a corrupt file fails only metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import (
    KNOWLEDGE_Q,
    METRIC_Q,
    UNAVAILABLE,
    Replica,
    Replicas,
    Slack,
    assert_reference,
    cli,
    has_reference,
)  # fmt: skip

pytestmark = pytest.mark.faults


def _answer(slack: Slack, replica: Replica, question: str) -> str:
    body, ack = slack.ask(replica, question)
    assert ack.status == 200, ack
    slack.wait_answered([body["event"]["ts"]], timeout=30)
    (reply,) = slack.replies(body["event"]["ts"])
    return reply


def _figures(text: str) -> list[str]:
    """Counts written with thousands separators (3,879), in order: the figures a metric answer reports."""
    return re.findall(r"\b\d{1,3}(?:,\d{3})+\b", text)


def test_a_warehouse_reseeded_while_serving_is_what_the_next_answer_reads(
    replicas: Replicas, data_copy: Callable[[str], Path], slack: Slack
) -> None:
    data = data_copy("a")
    replica = replicas.start("a", data)
    before = _figures(_answer(slack, replica, METRIC_Q))
    assert before, "the metric answer reports no count"

    cli("demo", "seed", "--seed", "2", "--scale", "0.3", data_dir=data)  # another process rewrites it
    expected = _figures(cli("ask", METRIC_Q, data_dir=data).stdout)  # what a fresh process reads now
    assert expected and expected != before, (before, expected)

    after = _figures(_answer(slack, replica, METRIC_Q))
    assert after[: len(expected)] == expected, (before, expected, after)


def test_a_corrupt_warehouse_fails_metric_questions_only(
    replicas: Replicas, data_copy: Callable[[str], Path], slack: Slack
) -> None:
    data = data_copy("a")
    replica = replicas.start("a", data)
    assert _figures(_answer(slack, replica, METRIC_Q))

    (data / "warehouse.duckdb").write_bytes(b"this is not a duckdb file\n" * 40_000)
    reply = _answer(slack, replica, METRIC_Q)
    assert "warehouse" in reply.lower() and UNAVAILABLE.search(reply), reply
    if has_reference(reply):
        assert_reference(reply, [replica])
    knowledge = _answer(slack, replica, KNOWLEDGE_Q)
    assert not UNAVAILABLE.search(knowledge) and not has_reference(knowledge), knowledge
    ready = replica.wait_readyz(200)
    assert ready["checks"]["warehouse"]["ok"] is False and ready["checks"]["warehouse"]["required"] is False, ready
