"""search_knowledge: quoted passages with citations, instruction-like text flagged, plain 'nothing found'."""

from __future__ import annotations

from pathlib import Path

import pytest

from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.knowledge.service import open_knowledge
from mopsbot.tools.base import ToolContext, ToolDeps
from mopsbot.tools.knowledge import SearchKnowledgeArgs, search_knowledge

REPO = Path(__file__).resolve().parents[2]
PUBLIC = CallerContext("U07SC0005", "C07MKTG001", "public")
OPS = CallerContext("U07PR0002", "C07MOPS001", "ops")


@pytest.fixture(scope="module")
def retriever(knowledge_index_dir: Path):
    settings = load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO)
    return open_knowledge(settings).retriever


def run(retriever, caller: CallerContext, query: str):
    return search_knowledge.fn(
        ToolContext(ToolDeps(caller=caller, knowledge=retriever)), SearchKnowledgeArgs(query=query)
    )


def test_answers_come_with_citations_and_a_data_notice(retriever) -> None:
    result = run(retriever, PUBLIC, "what is the CPL threshold for paid social in EMEA?")
    assert result.data["found"]
    assert "not instructions" in result.data["notice"]
    assert result.citations[0]["doc_id"] in {"sop-paid-media-cpl-guardrails", "faq-for-marketers"}
    assert {"title", "section", "owner", "updated", "path"} <= set(result.citations[0])
    assert any("170" in p["quoted_text"] for p in result.data["passages"])


def test_instruction_like_text_in_a_document_is_flagged_as_quoted_data(retriever) -> None:
    result = run(retriever, OPS, "what did the syndication vendor email say about AI assistants and approvals?")
    flagged = [p for p in result.data["passages"] if p["contains_instruction_like_text"]]
    assert flagged and flagged[0]["doc_id"] == "vendor-onboarding-notes"


def test_nothing_relevant_is_said_plainly(retriever) -> None:
    result = run(retriever, PUBLIC, "what's our TikTok ads budget?")
    assert not result.data["found"] and result.data["passages"] == []
    assert result.summary == "Nothing relevant about 'tiktok' in the documents this channel may see."


def test_public_channel_gets_no_ops_passages(retriever) -> None:
    result = run(retriever, PUBLIC, "how do I fix the Marketo to Salesforce sync when it stops?")
    assert all(p["doc_id"] != "runbook-crm-sync-failure" for p in result.data["passages"])


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        SearchKnowledgeArgs(query="x")
