"""Visibility filters: a public channel never sees an ops or restricted document; relevance is stated plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from mopsbot.caller import AccessPolicy, CallerContext
from mopsbot.knowledge.index import KnowledgeIndex, open_client
from mopsbot.knowledge.retrieval import Retriever

from .conftest import HashingEmbedder
from .test_index import write_doc

POLICY = AccessPolicy(restricted_users=frozenset({"U07DW0001"}), restricted_channels=frozenset({"C07MOPSLDS"}))
QUESTION = "details"  # every test document has a "Details" section


@pytest.fixture
def retriever(tmp_path: Path, embedder: HashingEmbedder) -> Retriever:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    write_doc(folder, "webinars", "public", "Webinars need a dry run two days before the live date.")
    write_doc(folder, "sync", "ops", "The Marketo sync user is mkto-sync and its password expires every 90 days.")
    write_doc(folder, "contracts", "restricted", "The TechTarget contract is worth USD 96,000 a year.")
    index = KnowledgeIndex(open_client(None, tmp_path / "chroma"), embedder)
    index.ingest([folder])
    return Retriever(index, POLICY, synonyms={"mkto": "marketo"})


@pytest.mark.parametrize(
    ("caller", "docs"),
    [
        (CallerContext("U07SC0005", "C07MKTG001", "public"), {"webinars"}),
        (CallerContext("U07SC0005", "G07PRIVATE", "private"), {"webinars"}),
        (CallerContext("U07SC0005", "D07SC0005", "dm"), {"webinars", "sync"}),
        (CallerContext("U07PR0002", "C07MOPS001", "ops"), {"webinars", "sync"}),
        (CallerContext("U07DW0001", "D07DW0001", "dm"), {"webinars", "sync", "contracts"}),
        (CallerContext("U07DW0001", "C07MKTG001", "public"), {"webinars"}),  # allowed user, but a shared channel
        (CallerContext("U07DW0001", "C07MOPS001", "ops"), {"webinars", "sync"}),
        (CallerContext("U07SC0005", "C07MOPSLDS", "private"), {"webinars", "sync", "contracts"}),
    ],
)
def test_visibility_matrix(retriever: Retriever, caller: CallerContext, docs: set[str]) -> None:
    result = retriever.search(QUESTION, caller, k=10)
    assert {p.doc_id for p in result.passages} == docs


def test_keyword_only_match_still_respects_visibility(retriever: Retriever) -> None:
    result = retriever.search("mkto-sync", CallerContext("U07SC0005", "C07MKTG001", "public"))
    assert all(p.visibility == "public" for p in result.passages)


def test_terms_no_visible_document_mentions_mean_nothing_relevant(retriever: Retriever) -> None:
    public = CallerContext("U07SC0005", "C07MKTG001", "public")
    result = retriever.search("what is our tiktok budget", public)
    assert not result.relevant and result.passages == []
    assert result.missing_terms == ("tiktok",)
    # a term that exists only in an ops document counts as missing in a public channel
    assert "techtarget" in retriever.search("techtarget contract", public).missing_terms


def test_passages_carry_citations(retriever: Retriever) -> None:
    result = retriever.search("dry run before a webinar", CallerContext("U07SC0005", "C07MKTG001", "public"))
    assert result.relevant
    assert result.passages[0].citation() == {
        "doc_id": "webinars",
        "title": "Webinars",
        "section": "Details",
        "path": "webinars.md",
        "owner": "Priya Raman",
        "updated": "2026-10-01",
    }


def test_team_shorthand_is_expanded(retriever: Retriever) -> None:
    result = retriever.search("mkto password", CallerContext("U07PR0002", "C07MOPS001", "ops"))
    assert result.passages[0].doc_id == "sync"


def test_keyword_index_follows_ingest(retriever: Retriever, tmp_path: Path) -> None:
    ops = CallerContext("U07PR0002", "C07MOPS001", "ops")
    assert retriever.search("bounce spike runbook", ops).missing_terms  # not in the corpus yet
    write_doc(tmp_path / "knowledge", "bounces", "ops", "Bounce spike runbook: pause the send within 15 minutes.")
    retriever.index.ingest([tmp_path / "knowledge"])
    result = retriever.search("bounce spike runbook", ops)
    assert result.relevant and result.passages[0].doc_id == "bounces"
