"""The local planner on prediction questions: routing, the lead from the thread, answers that say what they know."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mopsbot.agent.factory import build_agent
from mopsbot.agent.runner import Agent
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from tests.conftest import copy_trained_models

REPO = Path(__file__).resolve().parents[2]
MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")


@pytest.fixture
def agent(knowledge_index_dir: Path, warehouse: Path, trained_data_dir: Path, tmp_path: Path, knowledge) -> Agent:
    data_dir = tmp_path / "var"
    copy_trained_models(trained_data_dir, data_dir)
    settings = load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO, data_dir=data_dir,
                             warehouse_path=warehouse, today=date(2026, 11, 16))  # fmt: skip
    return build_agent(settings, backend="local", knowledge=knowledge)


@pytest.mark.parametrize(
    ("question", "tool"),
    [
        ("why is lead 4411 scored 82?", "explain_prediction"),
        ("explain the lead score of lead 120", "explain_prediction"),
        ("what if lead 89 requested a demo?", "what_if"),
        ("how good is the lead score model?", "model_card"),
        ("is the lead score calibrated?", "model_card"),
        ("which of last month's MQLs score highest?", "score_leads"),
        ("top 5 scoring MQLs in EMEA last month", "score_leads"),
        ("who owns the lead score model?", "search_knowledge"),
        ("how do I request a change to the lead scoring model?", "search_knowledge"),
    ],
)
def test_prediction_questions_route_to_their_tool(agent: Agent, question: str, tool: str) -> None:
    record = agent.run_turn(question, MARKETER)
    assert [c.name for c in record.tool_calls] == [tool]


def test_the_answer_corrects_a_wrong_score_and_keeps_the_shape(agent: Agent) -> None:
    record = agent.run_turn("why is lead 4411 scored 82?", MARKETER)
    lines = record.answer.splitlines()
    assert lines[0].startswith("Lead 4411 scores 10 (tier C), not 82 in lead_score 2026.11")
    assert any(line.startswith("• ↑ ") for line in lines) and any(line.startswith("• ↓ ") for line in lines)
    assert any(line.startswith("Caveat: ") for line in lines)
    assert lines[-1].startswith("Model card: `mopsbot models card lead_score`")
    assert "model-card-lead-score" in {c["doc_id"] for c in record.citations}


def test_what_if_in_the_thread_uses_the_lead_just_explained(agent: Agent) -> None:
    before = agent.run_turn("why is lead 466 scored 65?", MARKETER, "t-what-if")
    record = agent.run_turn("what if they attended the webinar?", MARKETER, "t-what-if")
    call = record.tool_calls[0]
    assert call.name == "what_if" and call.arguments["entity_id"] == 466
    assert call.arguments["changes"] == {"webinar_attended": True}
    assert "instead of 65" in record.answer and "Lead 466 scores 65" in before.answer


def test_what_if_without_a_lead_asks_which(agent: Agent) -> None:
    record = agent.run_turn("what if they attended the webinar?", MARKETER)
    assert not record.tool_calls and "Which lead?" in record.answer


def test_missing_models_are_a_reason_with_the_command(make_agent) -> None:
    record = make_agent("local").run_turn("why is lead 4411 scored 82?", MARKETER)
    assert "mopsbot models train lead_score" in record.answer or "no warehouse" in record.answer
