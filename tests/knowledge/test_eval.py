"""The retrieval eval on the demo knowledge/ with the default embedder: the issue's quality gates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mopsbot.config import load_settings
from mopsbot.knowledge.evaluate import GATES, load_cases, run_eval, summarize
from mopsbot.knowledge.service import open_knowledge

REPO = Path(__file__).resolve().parents[2]
CASES = load_cases(REPO / "evals" / "retrieval" / "questions.yaml")


def test_eval_set_is_large_varied_and_labelled_with_real_sections() -> None:
    assert len(CASES) >= 60
    kinds = {c.kind for c in CASES}
    assert {"paraphrase", "stack", "ops_only_from_public", "no_answer"} <= kinds
    docs = {p.stem: p.read_text() for p in (REPO / "knowledge").rglob("*.md")}
    for case in CASES:
        for expected in case.expected:
            assert expected.doc in docs, case.id
            headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", docs[expected.doc], flags=re.M)
            assert expected.section in headings, (case.id, expected.section)
        assert all(f in docs for f in case.forbidden), case.id


@pytest.fixture(scope="module")
def results(knowledge_index_dir: Path) -> dict:
    settings = load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO)
    return run_eval(open_knowledge(settings).retriever, CASES)


def test_quality_gates(results: dict) -> None:
    summary = results["summary"]
    assert summary["leaks"] == 0, [r for r in results["cases"] if r["leaked"]]
    assert summary["recall_at_5"] >= GATES["recall_at_5"]
    assert summary["mrr"] >= GATES["mrr"]
    assert summary["no_answer_accuracy"] >= GATES["no_answer_accuracy"]
    assert summary["passed"]


def test_ops_only_answers_never_reach_a_public_channel(results: dict) -> None:
    public_ops_only = [r for r in results["cases"] if r["kind"] == "ops_only_from_public"]
    assert public_ops_only
    assert all(not r["leaked"] for r in public_ops_only)


def test_scorer_arithmetic() -> None:
    rows = [
        {
            "kind": "paraphrase",
            "expected": ["a"],
            "rank": 1,
            "section_hit": True,
            "relevant": True,
            "leaked": [],
            "ms": 1,
        },
        {
            "kind": "paraphrase",
            "expected": ["b"],
            "rank": 4,
            "section_hit": False,
            "relevant": True,
            "leaked": [],
            "ms": 2,
        },
        {
            "kind": "stack",
            "expected": ["c"],
            "rank": None,
            "section_hit": False,
            "relevant": False,
            "leaked": [],
            "ms": 3,
        },
        {
            "kind": "no_answer",
            "expected": [],
            "rank": None,
            "section_hit": False,
            "relevant": False,
            "leaked": [],
            "ms": 4,
        },
        {
            "kind": "ops_only_from_public",
            "expected": [],
            "rank": None,
            "section_hit": False,
            "relevant": True,
            "leaked": ["x"],
            "ms": 5,
        },
    ]
    s = summarize(rows)
    assert s["recall_at_5"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["mrr"] == pytest.approx((1 + 0.25 + 0) / 3, abs=1e-4)
    assert s["section_recall_at_5"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["no_answer_accuracy"] == 1.0
    assert s["leaks"] == 1 and not s["passed"]
