"""The retrieval eval: recall@5, MRR, no-answer accuracy and visibility leaks over labelled questions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from mopsbot.caller import CallerContext
from mopsbot.knowledge.retrieval import Retriever

GATES = {"recall_at_5": 0.90, "mrr": 0.75, "no_answer_accuracy": 0.80, "leaks": 0}
# Who asks, for each context of the eval set: a marketer in #marketing, an ops manager in #mops, the Director of
# Marketing Operations in a DM (on the restricted list in tools/knowledge.yaml).
CALLERS = {
    "public": CallerContext("U07SC0005", "C07MKTG001", "public"),
    "ops": CallerContext("U07PR0002", "C07MOPS001", "ops"),
    "restricted": CallerContext("U07DW0001", "D07DW0001", "dm"),
}


class ExpectedSource(BaseModel):
    doc: str
    section: str = ""


class RetrievalCase(BaseModel):
    id: str
    kind: Literal["paraphrase", "stack", "ops_only_from_public", "ops_context", "no_answer", "exact_term"]
    context: Literal["public", "ops", "restricted"]
    question: str = Field(min_length=3)
    expected: list[ExpectedSource] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    answer_hint: str = ""


class EvalSetError(ValueError):
    """The eval file is missing or a case is invalid; the message names the case."""


def load_cases(path: Path) -> list[RetrievalCase]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as err:
        raise EvalSetError(f"{path}: {err}") from None
    cases = []
    for i, item in enumerate(raw):
        try:
            cases.append(RetrievalCase.model_validate(item))
        except ValidationError as err:
            raise EvalSetError(f"{path}: case {item.get('id', i) if isinstance(item, dict) else i}: {err}") from None
    return cases


def run_eval(retriever: Retriever, cases: list[RetrievalCase], k: int = 5) -> dict:
    """Score every case; returns {"summary": {...}, "cases": [...]}."""
    rows = []
    for case in cases:
        caller = CALLERS[case.context]
        start = time.perf_counter()
        result = retriever.search(case.question, caller, k=k)
        elapsed = (time.perf_counter() - start) * 1e3
        docs = [p.doc_id for p in result.passages]
        wanted = {e.doc for e in case.expected}
        rank = next((i for i, d in enumerate(docs, 1) if d in wanted), None)
        section_hit = any(
            p.doc_id == e.doc and e.section.lower() in p.section.lower() for p in result.passages for e in case.expected
        )
        leaked = sorted(
            {p.doc_id for p in result.passages if p.doc_id in case.forbidden or p.visibility not in result.visibilities}
        )
        rows.append(
            {
                "id": case.id,
                "kind": case.kind,
                "context": case.context,
                "question": case.question,
                "expected": sorted(wanted),
                "returned": docs,
                "rank": rank,
                "section_hit": section_hit,
                "relevant": result.relevant,
                "best_similarity": result.best_similarity,
                "best_bm25": result.best_bm25,
                "leaked": leaked,
                "ms": round(elapsed, 2),
            }
        )
    return {"summary": summarize(rows), "cases": rows}


def summarize(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["expected"]]
    no_answer = [r for r in rows if r["kind"] == "no_answer"]
    latencies = sorted(r["ms"] for r in rows)
    summary = {
        "cases": len(rows),
        "answerable": len(answerable),
        "recall_at_5": _mean([r["rank"] is not None for r in answerable]),
        "mrr": _mean([1 / r["rank"] if r["rank"] else 0.0 for r in answerable]),
        "section_recall_at_5": _mean([r["section_hit"] for r in answerable]),
        "no_answer_cases": len(no_answer),
        "no_answer_accuracy": _mean([not r["relevant"] for r in no_answer]),
        "leaks": sum(len(r["leaked"]) for r in rows),
        "latency_ms_p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "latency_ms_p95": latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
    }
    summary["gates"] = {
        name: (summary[name] <= limit if name == "leaks" else summary[name] >= limit) for name, limit in GATES.items()
    }
    summary["passed"] = all(summary["gates"].values())
    return summary


def _mean(values: list[float] | list[bool]) -> float:
    return round(sum(float(v) for v in values) / len(values), 4) if values else 0.0
