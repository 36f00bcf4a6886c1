"""The openai backend against a real OpenAI-compatible server, replayed from vcrpy cassettes.

The cassettes in tests/cassettes/agent/ were recorded against llama.cpp's OpenAI-compatible server running Gemma 3
270M (a tiny base model: its answers are poor, the wire format is real). Re-record against any endpoint with

    OPENAI_BASE_URL=http://127.0.0.1:8089/v1 make cassettes

Replay needs no network: vcrpy serves the recorded responses, and a test fails if a cassette is not fully played.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mopsbot.agent.openai_backend import make_client
from mopsbot.agent.runner import Agent
from mopsbot.caller import CallerContext
from mopsbot.evals.cassettes import recorder

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "agent"
RECORD = os.environ.get("MOPSBOT_TEST_RECORD") == "1"
BASE_URL = os.environ.get("MOPSBOT_TEST_OPENAI_BASE_URL", "http://127.0.0.1:8089/v1")
MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")


@pytest.fixture
def cassette_agent(make_agent: Callable[..., Agent], request: pytest.FixtureRequest) -> Iterator[Callable[..., Agent]]:
    name = f"{request.node.name}.yaml"
    if not RECORD and not (CASSETTES / name).exists():
        pytest.fail(f"missing cassette {name}; record it with `make cassettes` (see this module's docstring)")
    with recorder(CASSETTES, RECORD).use_cassette(name) as cassette:

        def make(first_tool: str | None = None) -> Agent:
            client = make_client(BASE_URL, "sk-test-not-a-real-key", timeout_s=120, max_retries=0)
            agent = make_agent("openai", client)
            agent.backend.model = "gemma-3-270m"
            agent.backend.max_tokens = 64
            agent.backend.first_tool = first_tool
            return agent

        yield make
        if not RECORD:
            assert cassette.all_played, f"{name}: not every recorded request was replayed"


def test_plain_answer_round_trip(cassette_agent: Callable[..., Agent]) -> None:
    record = cassette_agent().run_turn("what's our webinar SOP?", MARKETER)
    assert record.backend == "openai"
    assert (
        record.usage["llm_calls"] == 1 and record.usage["prompt_tokens"] > 0 and record.usage["completion_tokens"] > 0
    )
    assert isinstance(record.answer, str) and record.answer


def test_tool_round_trip_with_a_forced_first_tool(cassette_agent: Callable[..., Agent]) -> None:
    record = cassette_agent(first_tool="search_knowledge").run_turn("what's our webinar SOP?", MARKETER)
    assert record.usage["llm_calls"] == 2
    assert [c.name for c in record.tool_calls] == ["search_knowledge"]
    call = record.tool_calls[0]
    # a tiny model's arguments may be malformed; that must come back as an error result, never an exception
    assert call.ok or call.error.startswith("invalid arguments")


def test_cassettes_hold_no_secrets() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text().lower()
        assert "sk-test-not-a-real-key" not in text and "authorization" not in text, path.name
