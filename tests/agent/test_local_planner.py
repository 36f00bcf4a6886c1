"""The local planner: routing, follow-ups, refusals, and answers whose every number comes from a tool."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mopsbot.agent.guardrails import unsupported_numbers
from mopsbot.agent.runner import Agent
from mopsbot.caller import CallerContext

MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
OPS = CallerContext("U07PR0002", "C07MOPS001", "ops")


@pytest.fixture
def agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent("local")


@pytest.mark.parametrize(
    "question",
    [
        "what's our SOP for a webinar?",
        "how do UTMs have to be written?",
        "who signs off on a 30k campaign?",
        "what happens when the bounce rate spikes?",
        "is double opt-in needed for German contacts?",
    ],
)
def test_mops_questions_go_to_the_knowledge_tool_with_citations(agent: Agent, question: str) -> None:
    record = agent.run_turn(question, MARKETER)
    assert [c.name for c in record.tool_calls] == ["search_knowledge"]
    assert record.tool_calls[0].arguments["query"] == question
    assert record.citations and "Sources: [1]" in record.answer
    evidence = [question] + [{"citations": record.citations}] + [c.summary for c in record.tool_calls]
    passages = agent.knowledge.search(question, MARKETER).passages
    assert unsupported_numbers(record.answer, evidence + [p.text for p in passages]) == []


@pytest.mark.parametrize("message", ["tell me a joke", "what's the weather in Dublin tomorrow?", "write a poem"])
def test_out_of_scope_gets_a_polite_refusal_and_no_tool(agent: Agent, message: str) -> None:
    record = agent.run_turn(message, MARKETER)
    assert record.tool_calls == []
    assert record.answer.startswith("That's outside what I do") and "SOPs" in record.answer


@pytest.mark.parametrize("message", ["hi", "help", "what can you do?"])
def test_greetings_and_help_list_example_questions(agent: Agent, message: str) -> None:
    record = agent.run_turn(message, MARKETER)
    assert record.tool_calls == [] and "Try:" in record.answer


def test_follow_up_in_a_thread_reuses_the_previous_question(agent: Agent) -> None:
    agent.run_turn("how fast must SDRs follow up on a demo request?", MARKETER, "T9")
    record = agent.run_turn("and for other MQLs?", MARKETER, "T9")
    assert record.tool_calls[0].arguments["query"] == "how fast must SDRs follow up on a demo request? for other MQLs"


def test_follow_up_survives_a_restart(make_agent: Callable[..., Agent]) -> None:
    make_agent("local").run_turn("what is the MQL threshold?", MARKETER, "T10")
    record = make_agent("local").run_turn("what about hand-raisers?", MARKETER, "T10")
    assert record.tool_calls[0].arguments["query"].startswith("what is the MQL threshold?")


def test_nothing_found_says_so_and_points_to_ops_docs(agent: Agent) -> None:
    record = agent.run_turn("what's our TikTok ads budget?", MARKETER)
    assert record.answer.startswith("I couldn't find anything about 'tiktok'")
    assert "ask me in a DM" in record.answer and record.citations == []


def test_public_channel_answers_cite_public_documents_only(agent: Agent) -> None:
    record = agent.run_turn("how do I fix the Marketo Salesforce sync when it stops?", MARKETER)
    assert all(c["doc_id"] != "runbook-crm-sync-failure" for c in record.citations)
    ops = agent.run_turn("how do I fix the Marketo Salesforce sync when it stops?", OPS)
    assert any(c["doc_id"] == "runbook-crm-sync-failure" for c in ops.citations)


def test_injected_text_is_quoted_with_a_note_never_acted_on(agent: Agent) -> None:
    record = agent.run_turn("what did Pipeline Harbor ask in the sample file 2 email?", OPS)
    assert record.pending_actions == [] and [c.kind for c in record.tool_calls] == ["read"]
    assert record.answer.endswith(
        "Note: a quoted document contains text addressed to an AI; it is quoted here, not acted on."
    )
