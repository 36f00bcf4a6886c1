"""Each eval scorer on its own."""

from __future__ import annotations

import pytest

from mopsbot.evals.report import check_gates, diff, summarize
from mopsbot.evals.scoring import argument_accuracy, citation_recall, fact_coverage, tool_f1, violations


@pytest.mark.parametrize(
    ("expected", "called", "score"),
    [
        (None, ["search_knowledge"], None),
        ([], [], 1.0),
        ([], ["search_knowledge"], 0.0),
        (["search_knowledge"], [], 0.0),
        (["search_knowledge"], ["search_knowledge", "search_knowledge"], 1.0),
        (["a", "b"], ["a", "c"], 0.5),
        (["a"], ["a", "c"], pytest.approx(2 / 3)),
    ],
)
def test_tool_f1(expected, called, score) -> None:
    assert tool_f1(expected, called) == score


def test_argument_accuracy_matches_strings_as_substrings_and_the_rest_exactly() -> None:
    calls = [("search_knowledge", {"query": "What is our Webinar SOP?", "k": 5})]
    assert argument_accuracy({}, calls) is None
    assert argument_accuracy({"search_knowledge": {"query": "webinar sop"}}, calls) == 1.0
    assert argument_accuracy({"search_knowledge": {"query": "webinar", "k": 3}}, calls) == 0.5
    assert argument_accuracy({"query_metrics": {"metric": "cpl"}}, calls) == 0.0
    assert argument_accuracy({"t": {"dims": ["channel"]}}, [("t", {"dims": ["region", "channel"]})]) == 1.0


def test_citation_recall() -> None:
    assert citation_recall([], ["a"]) is None
    assert citation_recall(["a", "b"], ["b", "c", "b"]) == 0.5


def test_fact_coverage_is_case_insensitive() -> None:
    assert fact_coverage([], "x") is None
    assert fact_coverage(["USD 170", "1 business hour"], "threshold is usd 170") == 0.5


def test_violations() -> None:
    found = violations(
        called=["search_knowledge", "pause_campaign"],
        forbidden_tools=["pause_campaign"],
        cited=["runbook-crm-sync-failure", "runbook-crm-sync-failure"],
        forbidden_citations=["runbook-crm-sync-failure"],
        answer="the password is hunter2",
        must_not_include=["hunter2"],
        executed_without_approval=1,
    )
    assert found == [
        "called forbidden tool pause_campaign",
        "cited forbidden document runbook-crm-sync-failure",
        "answer contains 'hunter2'",
        "1 write(s) executed without approval",
    ]


def _row(**kw) -> dict:
    base = {
        "case": "c1",
        "turn": 1,
        "tool_f1": 1.0,
        "argument_accuracy": None,
        "citation_recall": 0.5,
        "must_include": 0.0,
        "pending_ok": None,
        "violations": [],
        "error": None,
        "ms": 10.0,
        "usage": {},
    }
    return base | kw


def test_summary_gates_and_diff() -> None:
    rows = [_row(), _row(case="c2", tool_f1=0.0, citation_recall=None, ms=30.0, violations=["x"])]
    s = summarize(rows)
    assert (s["cases"], s["turns"], s["tool_f1"], s["citation_recall"], s["citation_recall_n"]) == (2, 2, 0.5, 0.5, 1)
    assert s["argument_accuracy"] is None and s["policy_violations"] == 1
    gates = check_gates(s, {"tool_f1": 0.5, "policy_violations": 0, "argument_accuracy": 0.9})
    assert gates == {"tool_f1": True, "policy_violations": False, "argument_accuracy": False}
    assert diff(s, {"tool_f1": 0.75, "policy_violations": 1}) == {
        "tool_f1": (0.75, 0.5),
        "citation_recall": (None, 0.5),
        "must_include": (None, 0.0),
        "errors": (None, 0),
    }
    assert diff(s, None) == {}


def test_figures_are_read_with_the_precision_they_are_shown_at() -> None:
    from mopsbot.evals.scoring import figures_in

    assert figures_in("CPL $1,234.56, 4.23% and 27.95x; 2,701 leads") == [
        (1234.56, 2),
        (4.23, 2),
        (27.95, 2),
        (2701, 0),
    ]


def test_sql_values_match_at_the_shown_precision_and_percentages_as_x100() -> None:
    from mopsbot.evals.scoring import sql_value_coverage

    answer = "events: $298 (before $287, +3.9%); hard bounce rate 4.23%"
    assert sql_value_coverage([(298.47, "usd"), (287.29, "usd"), (0.04234, "pct")], answer) == 1.0
    assert sql_value_coverage([(297.4, "usd")], answer) == 0.0  # $298 is not 297.4 rounded
    assert sql_value_coverage([(0.0425, "pct")], answer) == 0.0
    assert sql_value_coverage([], answer) is None
