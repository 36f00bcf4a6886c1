"""`mopsbot models`: list, card, explain and what-if from the terminal over the session's trained models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mopsbot.cli import app
from mopsbot.predictions.service import Predictions
from tests.conftest import record_models

runner = CliRunner()


@pytest.fixture(autouse=True)
def trained(monkeypatch: pytest.MonkeyPatch, warehouse: Path, data_dir: Path, predictions: Predictions) -> None:
    monkeypatch.setenv("MOPSBOT_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("MOPSBOT_DATA_DIR", str(data_dir))
    if not (data_dir / "mopsbot.db").exists():
        record_models(data_dir)  # the session's models, as training through the CLI would have recorded them


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, ["models", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_shows_both_models_trained() -> None:
    rows = {r["name"]: r for r in _json(["list"])}
    assert set(rows) == {"lead_score", "sql_acceptance"}
    assert rows["lead_score"]["title"] == "Predictive Lead Score"
    assert all(r["state"].startswith("trained ") and r["kind"] == "classifier" for r in rows.values())
    assert rows["lead_score"]["quality"] > 0.7


def test_list_says_how_to_train_when_nothing_is_trained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOPSBOT_DATA_DIR", str(tmp_path))
    rows = _json(["list"])
    assert all("mopsbot models train" in r["state"] and r["quality"] is None for r in rows)


def test_card_shows_measured_quality_and_calibration() -> None:
    d = _json(["card", "lead_score"])
    assert d["name"] == "lead_score" and d["version"] == "2026.11"
    assert d["metrics"]["auc"] > 0.7 and d["metrics"]["brier"] < 0.1
    assert [r["band"] for r in d["metrics"]["calibration"]] == ["0-20", "20-40", "40-60", "60-80", "80-100"]
    assert {f["name"] for f in d["features"]} >= {"demo_request", "intent_score", "is_personal_email"}
    assert set(d["tiers"]) == {"A", "B", "C"}
    assert 0 < d["average_score"] < 100


def test_card_by_title() -> None:
    assert _json(["card", "Predictive Lead Score"])["name"] == "lead_score"


def test_card_in_the_terminal_names_the_quality() -> None:
    result = runner.invoke(app, ["models", "card", "lead_score"])
    assert result.exit_code == 0, result.output
    assert "Predictive Lead Score" in result.output and "auc" in result.output


def test_explain_4411(predictions: Predictions) -> None:
    d = _json(["explain", "4411"])
    e = predictions.explain("lead_score", 4411)
    assert d["entity_id"] == 4411 and d["model"] == "lead_score"
    assert d["score"] == pytest.approx(e.score) and d["tier"] == e.tier
    assert sum(f["contribution"] for f in d["factors"]) == pytest.approx(d["output"] - d["baseline_output"])
    assert d["top_positive"] and d["top_negative"] and d["caveats"]
    assert d["calibration"]["band"] == "0-20"


def test_explain_in_the_terminal_uses_business_names() -> None:
    result = runner.invoke(app, ["models", "explain", "4411"])
    assert result.exit_code == 0, result.output
    assert "6sense intent score" in result.output


def test_what_if_webinar_attended() -> None:
    d = _json(["what-if", "4411", "webinar_attended=yes"])
    assert d["changes"] == {"webinar_attended": True}
    assert d["score_after"] > d["score_before"]
    assert [m["feature"] for m in d["moved"]] == ["webinar_attended"]


def test_explain_another_model() -> None:
    mql = _json(["score", "--model", "sql_acceptance", "--limit", "1"])["rows"][0]["lead_id"]
    d = _json(["explain", str(mql), "--model", "sql_acceptance"])
    assert d["model"] == "sql_acceptance" and d["tier"] in {"likely", "possible", "unlikely"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "99999999"], "no lead 99999999"),
        (["explain", "0"], "invalid arguments"),
        (["explain", "abc"], "Invalid value for 'entity_id'"),
        (["explain", "4411", "--model", "churn_risk"], "unknown model 'churn_risk'"),
        (["what-if", "4411", "budget=9"], "'budget' is not an input of model lead_score"),
        (["what-if", "4411", "webinar_attended"], "write feature=value"),
        (["what-if", "99999999", "webinar_attended=yes"], "no lead 99999999"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["models", *args, "--json"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
