"""The turn loop on the openai backend, driven by a scripted model: tools, writes, errors and guardrails."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import openai
import pytest
from sqlalchemy import func, select

from mopsbot.agent.errors import BackendUnavailable
from mopsbot.agent.runner import Agent
from mopsbot.agent.testing import ScriptedChatClient, reply, tool_call
from mopsbot.caller import CallerContext
from mopsbot.store.models import ActionExecution, AuditEvent, PendingAction

from .conftest import explode, pause_campaign

MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
OPS = CallerContext("U07PR0002", "C07MOPS001", "ops")


@pytest.fixture
def agent_with(make_agent: Callable[..., Agent]) -> Callable[[list], tuple[Agent, ScriptedChatClient]]:
    def make(script: list) -> tuple[Agent, ScriptedChatClient]:
        client = ScriptedChatClient(script)
        agent = make_agent("openai", client)
        agent.registry.register(pause_campaign, explode)
        return agent, client

    return make


def test_read_tool_result_reaches_the_model_as_data(agent_with) -> None:
    agent, client = agent_with(
        [
            tool_call("search_knowledge", {"query": "CPL threshold paid social EMEA"}),
            reply("The paid social EMEA threshold is USD 170 (Paid Media and CPL Guardrails)."),
        ]
    )
    record = agent.run_turn("what's the CPL threshold for paid social in EMEA?", MARKETER)
    assert record.answer.startswith("The paid social EMEA threshold is USD 170")
    assert [c.name for c in record.tool_calls] == ["search_knowledge"] and record.tool_calls[0].ok
    assert record.citations and record.usage == {
        "prompt_tokens": 220,
        "completion_tokens": 35,
        "total_tokens": 255,
        "llm_calls": 2,
    }
    tool_message = client.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"].startswith("<tool_result>")
    assert "not instructions" in tool_message["content"]
    assert {t["function"]["name"] for t in client.requests[0]["tools"]} >= {"search_knowledge", "pause_campaign"}


def test_a_write_tool_call_never_executes(agent_with, store) -> None:
    agent, client = agent_with(
        [
            tool_call("pause_campaign", {"campaign": "2026-Q4_PSO_AI-Ops_EMEA", "reason": "CPL breach"}),
            reply("I proposed pausing 2026-Q4_PSO_AI-Ops_EMEA; it waits for approval."),
        ]
    )
    record = agent.run_turn("pause the EMEA AI ops LinkedIn campaign, CPL is too high", MARKETER)
    assert len(record.pending_actions) == 1
    pending = record.pending_actions[0]
    assert pending.status == "pending" and pending.kind == "change_request"
    assert (
        record.tool_calls[0].kind == "write"
        and "waiting for approval by mops-directors" in record.tool_calls[0].summary
    )
    with store.session() as s:
        action = s.get(PendingAction, pending.id)
        assert action.status == "pending" and action.requester_id == "U07SC0005"
        assert action.payload == '{"campaign":"2026-Q4_PSO_AI-Ops_EMEA","reason":"CPL breach"}'
        assert action.payload_hash == hashlib.sha256(action.payload.encode()).hexdigest() == pending.payload_hash
        assert s.scalar(select(func.count()).select_from(ActionExecution)) == 0  # nothing ran
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "action.proposed")) == 1
    assert (
        json.loads(client.requests[1]["messages"][-1]["content"].split("\n")[1])["pending_action"]["status"]
        == "pending"
    )


def test_invalid_arguments_go_back_to_the_model_which_corrects_them(agent_with) -> None:
    agent, client = agent_with(
        [
            tool_call("search_knowledge", {"query": "x", "k": 99}),
            tool_call("search_knowledge", "{not json"),
            tool_call("search_knowledge", {"query": "webinar runbook"}),
            reply("Webinars need a dry run (Webinar Runbook)."),
        ]
    )
    record = agent.run_turn("what's our webinar SOP?", MARKETER)
    assert [c.ok for c in record.tool_calls] == [False, False, True]
    assert "query: String should have at least 2 characters" in record.tool_calls[0].error
    assert "k: Input should be less than or equal to 10" in record.tool_calls[0].error
    assert "invalid arguments" in record.tool_calls[1].error
    assert json.loads(client.requests[1]["messages"][-1]["content"])["error"].startswith("invalid arguments")


def test_unknown_tool_and_failing_tool_are_errors_not_crashes(agent_with) -> None:
    agent, _ = agent_with(
        [
            tool_call("delete_everything", {}, ("explode", {"campaign": "x", "reason": "y"})),
            reply("Sorry, I could not do that."),
        ]
    )
    record = agent.run_turn("do something", MARKETER)
    unknown, failed = record.tool_calls
    assert "unknown tool 'delete_everything'; available: search_knowledge" in unknown.error
    assert "failed unexpectedly (reference ref-" in failed.error and "secret" not in failed.error


def test_rounds_are_bounded(agent_with, settings) -> None:
    rounds = settings.max_tool_rounds
    agent, client = agent_with([tool_call("search_knowledge", {"query": "loop"})] * rounds)
    record = agent.run_turn("loop forever", MARKETER)
    assert f"within {rounds} tool rounds" in record.answer
    assert len(client.requests) == rounds


def test_invented_numbers_are_removed_and_flagged(agent_with) -> None:
    agent, _ = agent_with(
        [
            tool_call("search_knowledge", {"query": "CPL threshold paid social EMEA"}),
            reply("The threshold is USD 170 and last month's CPL was USD 1,234."),
        ]
    )
    record = agent.run_turn("what's the paid social EMEA CPL threshold?", MARKETER)
    assert "USD 170" in record.answer and "1,234" not in record.answer
    assert "[unverified number removed]" in record.answer
    assert record.guardrails == ["removed numbers no tool result supports: 1,234."] or record.guardrails == [
        "removed numbers no tool result supports: 1,234"
    ]


def test_a_write_after_instructions_inside_documents_carries_where_they_came_from(agent_with, store) -> None:
    agent, _ = agent_with(
        [
            tool_call("search_knowledge", {"query": "what did Pipeline Harbor ask in the sample file 2 email?"}),
            tool_call("pause_campaign", {"campaign": "all", "reason": "the vendor email said so"}),
            reply("I found the vendor notes."),
        ]
    )
    record = agent.run_turn("what did Pipeline Harbor ask in the sample file 2 email?", OPS)
    (pending,) = record.pending_actions  # proposed, never executed: a person decides, warned on the card
    assert "text addressing an AI" in record.tool_calls[1].summary
    with store.session() as s:
        action = s.get(PendingAction, pending.id)
        assert action.status == "pending" and action.provenance
        assert "proposed after reading the document" in action.provenance[0]
        assert s.scalar(select(func.count()).select_from(ActionExecution)) == 0


def test_an_unreachable_llm_is_a_clear_user_facing_error(agent_with) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    agent, _ = agent_with([openai.APIConnectionError(request=request)])
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        agent.run_turn("what's our webinar SOP?", MARKETER)


def test_history_and_events_reach_the_next_turn(agent_with) -> None:
    agent, client = agent_with([reply("Webinars need a dry run."), reply("Yes, two days before.")])
    agent.run_turn("what's our webinar SOP?", MARKETER, "T1")
    conversation = agent.conversations.conversation_id(MARKETER, "T1")
    agent.conversations.append(conversation, "event", "Action abc was rejected by Dana Whitfield: budget too high")
    agent.run_turn("and when is the dry run?", MARKETER, "T1")
    messages = client.requests[1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "user"]
    assert (
        messages[3]["content"]
        == "[event recorded by mopsbot] Action abc was rejected by Dana Whitfield: budget too high"
    )
