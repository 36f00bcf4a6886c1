"""Operators' view: Prometheus metrics move on real turns, /metrics text parses, JSON log lines hold ids, not text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mopsbot.agent.factory import build_agent
from mopsbot.agent.runner import Agent
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.observability import metrics
from mopsbot.observability.logs import configure_logging, log_context, reset_logging

from .conftest import REPO

MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
SECRET_QUESTION = "what's our webinar SOP? my codename is zebra-canary-1234"


@pytest.fixture
def agent(knowledge_index_dir: Path, warehouse: Path, tmp_path: Path) -> Agent:
    settings = load_settings(
        env_file=None,
        chroma_path=knowledge_index_dir,
        workspace=REPO,
        data_dir=tmp_path / "var",
        warehouse_path=warehouse,
        today=date(2026, 11, 16),
    )
    return build_agent(settings, backend="local")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines into a buffer, as `MOPSBOT_LOG_FORMAT=json` makes it write to stderr."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream, force=True)
    yield stream
    reset_logging()
    root.setLevel(level)


def test_a_local_turn_moves_the_turn_and_tool_metrics(agent: Agent) -> None:
    def values() -> dict[str, float]:
        return {
            "turns": metrics.value("mopsbot_turns_total", backend="local", outcome="ok"),
            "turn_seconds": metrics.value("mopsbot_turn_seconds_count", backend="local"),
            "docs": metrics.value("mopsbot_tool_calls_total", tool="search_knowledge", outcome="ok"),
            "docs_seconds": metrics.value("mopsbot_tool_seconds_count", tool="search_knowledge"),
            "numbers": metrics.value("mopsbot_tool_calls_total", tool="query_metrics", outcome="ok"),
        }

    before = values()
    agent.run_turn("what's our webinar SOP?", MARKETER)
    agent.run_turn("how many MQLs last quarter?", MARKETER)
    after = values()
    assert {k: after[k] - before[k] for k in after} == {
        "turns": 2,
        "turn_seconds": 2,
        "docs": 1,
        "docs_seconds": 1,
        "numbers": 1,
    }


def test_render_is_prometheus_text_with_every_metric() -> None:
    metrics.TOOL_CALLS.labels("search_knowledge", "ok").inc(0)  # a labelled family shows once it has a child
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain") and "version=" in content_type
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert set(families) >= {
        "mopsbot_events",
        "mopsbot_ack_seconds",
        "mopsbot_turns",
        "mopsbot_turn_seconds",
        "mopsbot_tool_calls",
        "mopsbot_tool_seconds",
        "mopsbot_llm_request_seconds",
        "mopsbot_llm_tokens",
        "mopsbot_errors",
        "mopsbot_claim_takeovers",
        "mopsbot_approvals",
        "mopsbot_inflight_turns",
    }
    assert families["mopsbot_turns"].type == "counter" and families["mopsbot_turn_seconds"].type == "histogram"
    assert families["mopsbot_inflight_turns"].type == "gauge"


def test_json_log_lines_hold_ids_and_outcomes_never_the_question_or_answer(agent: Agent, json_logs) -> None:
    with log_context(event_id="Ev0TEST01"):
        record = agent.run_turn(SECRET_QUESTION, MARKETER, "1700000000.000100")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert lines and all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    (turn,) = [line for line in lines if line["logger"] == "mopsbot.agent.runner" and "outcome" in line]
    assert turn["event_id"] == "Ev0TEST01" and turn["turn_id"] == record.turn_id
    assert turn["conversation_id"] == record.conversation_id and turn["thread_id"] == "1700000000.000100"
    assert turn["backend"] == "local" and turn["outcome"] == "ok" and turn["latency_ms"] > 0
    assert turn["tools"] == [{"tool": "search_knowledge", "ok": True}] and turn["references"] == []
    text = json_logs.getvalue()
    assert "zebra-canary" not in text and "webinar SOP" not in text
    assert record.answer[:40] not in text


def test_json_lines_carry_reference_ids_of_failures(agent: Agent, json_logs) -> None:
    agent.knowledge = None  # a broken knowledge dependency: the tool fails with a reference
    record = agent.run_turn("what's our webinar SOP?", MARKETER)
    (call,) = record.tool_calls
    ref = call.error.rsplit("reference ", 1)[1].rstrip(")")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    failure = [line for line in lines if line.get("reference") == ref]
    assert failure and failure[0]["level"] == "error" and failure[0]["tool"] == "search_knowledge"
    assert "exception" in failure[0]  # the traceback is in the log, not in the answer
    (turn,) = [line for line in lines if "outcome" in line]
    assert turn["references"] == [ref] and turn["tools"] == [{"tool": "search_knowledge", "ok": False}]


def test_text_format_is_todays_line(json_logs) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream=stream, force=True)
    logging.getLogger("mopsbot.test").info("turn %s ok", "abc", extra={"turn_id": "abc"})
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" INFO mopsbot.test turn abc ok")
    assert json_logs.getvalue() == ""  # the earlier handler was replaced, not added to


def test_configure_logging_leaves_an_embedding_apps_handlers_alone() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)  # pytest's capture handlers are on the root logger
    logging.getLogger("mopsbot.test").warning("hello")
    assert stream.getvalue() == ""
