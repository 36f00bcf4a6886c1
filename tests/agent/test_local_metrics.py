"""The local planner on metric questions: slot filling, routing next to knowledge questions, follow-ups, answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from mopsbot.agent.factory import build_agent, open_metrics
from mopsbot.agent.guardrails import unsupported_numbers
from mopsbot.agent.local.metrics import fill_metric_query, find_metrics, is_metric_question
from mopsbot.agent.runner import Agent
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.metrics.catalog import Catalog, load_catalog
from mopsbot.metrics.query import MetricQuery

REPO = Path(__file__).resolve().parents[2]
MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
TODAY = date(2026, 11, 16)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "tools" / "metrics.yaml")


@pytest.fixture
def agent(knowledge_index_dir: Path, warehouse: Path, tmp_path: Path, knowledge) -> Agent:
    settings = load_settings(
        env_file=None,
        chroma_path=knowledge_index_dir,
        workspace=REPO,
        data_dir=tmp_path / "var",
        warehouse_path=warehouse,
        today=TODAY,
    )
    return build_agent(settings, backend="local", knowledge=knowledge)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cost per lead", ["cpl"]),
        ("CPL and cost per opportunity", ["cpl", "cost_per_opportunity"]),
        ("MQL to SQL rate", ["mql_to_sql_rate"]),
        ("how many MQLs", ["mqls"]),
        ("hard bounce rate and spam complaint rate", ["hard_bounce_rate", "spam_complaint_rate"]),
        ("click-to-open rate", ["click_to_open_rate"]),
        ("the lead-to-MQL rate", ["lead_to_mql_rate"]),
        ("what is a webinar", []),
    ],
)
def test_metric_names_are_found_by_name_label_and_synonym(catalog: Catalog, text: str, expected: list[str]) -> None:
    assert find_metrics(catalog, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CPL by channel last quarter vs the quarter before",
            {"metrics": ["cpl"], "dimensions": ["channel"], "period": "last quarter", "compare_to": "previous_period"},
        ),
        (
            "monthly leads by region in 2026",
            {"metrics": ["leads"], "dimensions": ["region"], "grain": "month", "period": "2026"},
        ),
        ("pipeline by channel, W-shaped", {"metrics": ["attributed_pipeline"], "attribution": "w_shaped"}),
        ("top 5 campaigns by spend last month", {"dimensions": ["campaign"], "order_by": "-spend", "limit": 5}),
        ("spend by region in Q3 2026 vs last year", {"period": "Q3 2026", "compare_to": "same_period_last_year"}),
        ("cost per opportunity by region last year", {"dimensions": ["region"], "period": "last year"}),
        ("CPL for paid social excluding EMEA since March", {"period": "since March"}),
    ],
)
def test_questions_fill_a_valid_metric_query(catalog: Catalog, text: str, expected: dict) -> None:
    args = fill_metric_query(catalog, text, None)
    assert isinstance(args, dict), args
    MetricQuery.model_validate(args)
    assert {k: args.get(k) for k in expected} == expected


def test_filters_name_values_and_exclusions(catalog: Catalog) -> None:
    args = fill_metric_query(catalog, "CPL for paid social excluding EMEA since March", None)
    assert isinstance(args, dict)
    assert {"dimension": "channel", "op": "in", "values": ["paid_social"]} in args["filters"]
    assert {"dimension": "region", "op": "not_in", "values": ["EMEA"]} in args["filters"]


def test_follow_up_keeps_the_query_and_swaps_one_filter(catalog: Catalog) -> None:
    first = fill_metric_query(catalog, "CPL for paid search in NA last month", None)
    assert isinstance(first, dict)
    second = fill_metric_query(catalog, "and for EMEA?", {"tool": "query_metrics", "args": first})
    assert isinstance(second, dict)
    assert second["metrics"] == ["cpl"] and second["period"] == "last month"
    regions = [f for f in second["filters"] if f["dimension"] == "region"]
    assert regions == [{"dimension": "region", "op": "in", "values": ["EMEA"]}]


@pytest.mark.parametrize(
    "question",
    [
        "how high can our paid social CPL in EMEA go before it counts as a breach?",
        "what hard bounce rate makes us pause a send?",
        "when two duplicate leads get merged, which record survives?",
        "should I report sourced or influenced pipeline, and what's the difference?",
        "where do I check the LinkedIn change history when CPL spikes?",
    ],
)
def test_policy_questions_that_name_a_metric_stay_with_the_documents(catalog: Catalog, question: str) -> None:
    assert not is_metric_question(catalog, question)


def test_the_answer_states_the_engine_numbers_and_only_those(agent: Agent, warehouse: Path) -> None:
    question = "CPL by channel last quarter vs the quarter before"
    record = agent.run_turn(question, MARKETER)
    assert [c.name for c in record.tool_calls] == ["query_metrics"]
    engine = open_metrics(load_settings(env_file=None, workspace=REPO, warehouse_path=warehouse))
    query = MetricQuery(metrics=["cpl"], dimensions=["channel"], period="Q3 2026", compare_to="previous_period")
    result = engine.query(query, TODAY)
    for row in result.rows:
        if row["cpl"] is not None:
            shown = f"${row['cpl']:,.0f}" if row["cpl"] >= 100 else f"${row['cpl']:,.2f}"
            assert f"{row['channel']}: {shown}" in record.answer
    assert "Q3 2026" in record.answer and "Q2 2026" in record.answer and "Data through 2026-10-31" in record.answer
    # every figure in the answer (values, previous values, changes, dates) comes from the result
    assert unsupported_numbers(record.answer, [question, result.to_dict()]) == []


def test_threshold_question_cites_the_sop_and_judges_the_month(agent: Agent) -> None:
    record = agent.run_turn(
        "what's the CPL threshold for paid social in EMEA and did we breach it last month?", MARKETER
    )
    assert [c.name for c in record.tool_calls] == ["search_knowledge", "query_metrics"]
    assert "sop-paid-media-cpl-guardrails" in {c["doc_id"] for c in record.citations}
    assert "Threshold paid_social EMEA 2026-10: $170 — breached." in record.answer


def test_an_impossible_breakdown_gets_a_reason_not_a_number(agent: Agent) -> None:
    record = agent.run_turn("show spend by industry last quarter", MARKETER)
    assert record.tool_calls[0].name == "query_metrics" and not record.tool_calls[0].ok
    assert "cannot be broken down or filtered by industry" in record.answer


def test_follow_up_in_a_thread_reuses_the_previous_metric_query(agent: Agent) -> None:
    agent.run_turn("what was the CPL for paid search in NA last month?", MARKETER, "t-follow")
    record = agent.run_turn("and for EMEA?", MARKETER, "t-follow")
    call = record.tool_calls[0]
    assert call.name == "query_metrics" and call.arguments["metrics"] == ["cpl"]
    assert {"dimension": "region", "op": "in", "values": ["EMEA"]} in call.arguments["filters"]


def test_anomaly_question_finds_the_bounce_spike(agent: Agent) -> None:
    record = agent.run_turn("any anomalies in the hard bounce rate?", MARKETER)
    assert record.tool_calls[0].name == "detect_anomalies"
    assert "2026-09-16" in record.answer


def test_a_missing_warehouse_is_a_clear_reason(make_agent: Callable[..., Agent]) -> None:
    record = make_agent("local").run_turn("how many leads did we get last month?", MARKETER)
    assert "no warehouse at" in record.answer and "mopsbot demo seed" in record.answer
