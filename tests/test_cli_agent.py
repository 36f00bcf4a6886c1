"""`mopsbot ask` (the JSON contract of DESIGN.md) and `mopsbot chat` on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mopsbot.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def indexed(monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(knowledge_index_dir))


def test_ask_json_follows_the_contract() -> None:
    result = runner.invoke(app, ["ask", "what's our SOP for a webinar?", "--channel", "C07MKTG001", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"answer", "citations", "tool_calls", "pending_actions", "data", "usage", "timings_ms"} <= set(data)
    assert data["backend"] == "local"
    assert {"doc_id", "title", "section", "path"} <= set(data["citations"][0])
    assert {"name", "arguments", "ok", "summary"} <= set(data["tool_calls"][0])
    assert data["pending_actions"] == []


def test_ask_continues_a_thread() -> None:
    runner.invoke(app, ["ask", "how fast must SDRs follow up on a demo request?", "--thread", "T-cli"])
    result = runner.invoke(app, ["ask", "and for other MQLs?", "--thread", "T-cli", "--json"])
    query = json.loads(result.output)["tool_calls"][0]["arguments"]["query"]
    assert query == "how fast must SDRs follow up on a demo request? for other MQLs"


def test_ask_openai_without_an_endpoint_is_a_clear_error() -> None:
    result = runner.invoke(app, ["ask", "hi", "--backend", "openai", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "error": "MOPSBOT_LLM=openai needs OPENAI_BASE_URL (and OPENAI_API_KEY if the endpoint wants one)",
        "reference": None,
    }


def test_ask_with_a_down_llm_answers_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MOPSBOT_LLM_MAX_RETRIES", "0")
    result = runner.invoke(app, ["ask", "what's our webinar SOP?"])
    assert result.exit_code == 1
    assert "cannot be reached" in result.output


def test_chat_answers_questions_with_sources() -> None:
    result = runner.invoke(app, ["chat"], input="what's the CPL threshold for paid social in EMEA?\n/quit\n")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Sources: [1]" in output and "search_knowledge" in output
