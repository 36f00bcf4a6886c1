"""What-if: change some inputs of a lead and see the new score and which contributions moved."""

from __future__ import annotations

import pytest

from mopsbot.errors import UserFacingError
from mopsbot.predictions.explain import explain
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions

LEAD = 4411  # did not attend a webinar, no demo request, intent 86


def _contributions(e) -> dict[str, float]:
    return {f.feature: f.contribution for f in e.factors}


@pytest.mark.parametrize("value", [True, "yes", "true", "1"])
def test_attending_a_webinar_raises_the_score_and_moves_only_that_factor(
    predictions: Predictions, lead_model: TrainedModel, value: object
) -> None:
    raw = predictions.entity("lead_score", LEAD)
    assert raw["webinar_attended"] is False
    result = predictions.what_if("lead_score", LEAD, {"webinar_attended": value})
    assert result.changes == {"webinar_attended": True}
    assert result.after.score > result.before.score
    before, after = _contributions(result.before), _contributions(result.after)
    assert after["webinar_attended"] > 0 > before["webinar_attended"]
    assert {k: v for k, v in after.items() if k != "webinar_attended"} == {
        k: v for k, v in before.items() if k != "webinar_attended"
    }
    assert [m["feature"] for m in result.moved()] == ["webinar_attended"]
    assert result.moved()[0]["from"] is False and result.moved()[0]["to"] is True
    direct = explain(lead_model, LEAD, {**raw, "webinar_attended": True})
    assert result.after.score == direct.score
    assert result.before.score == predictions.explain("lead_score", LEAD).score


def test_several_changes_move_exactly_those_factors(predictions: Predictions, lead_model: TrainedModel) -> None:
    changes = {"demo_request": "yes", "intent_score": "40", "company_size_band": "1001-5000"}
    result = predictions.what_if("lead_score", LEAD, changes)
    assert result.changes == {"demo_request": True, "intent_score": 40.0, "company_size_band": "1001-5000"}
    assert {m["feature"] for m in result.moved()} == set(changes)
    raw = predictions.entity("lead_score", LEAD)
    assert result.after.score == explain(lead_model, LEAD, {**raw, **result.changes}).score
    moves = [abs(m["contribution_after"] - m["contribution_before"]) for m in result.moved()]
    assert moves == sorted(moves, reverse=True)
    assert sum(f.contribution for f in result.after.factors) == pytest.approx(
        result.after.output - result.after.baseline_output, abs=1e-9
    )


def test_changing_nothing_that_matters_leaves_the_score(predictions: Predictions) -> None:
    result = predictions.what_if("lead_score", LEAD, {"webinar_attended": False})
    assert result.after.score == result.before.score and result.moved() == []


def test_an_unknown_input_is_refused_listing_the_inputs(predictions: Predictions, lead_model: TrainedModel) -> None:
    with pytest.raises(UserFacingError) as info:
        predictions.what_if("lead_score", LEAD, {"budget": 100})
    message = str(info.value)
    assert "'budget' is not an input of model lead_score" in message
    assert all(f.name in message for f in lead_model.card.features)


def test_an_unknown_category_is_refused_listing_the_known_values(predictions: Predictions) -> None:
    with pytest.raises(UserFacingError) as info:
        predictions.what_if("lead_score", LEAD, {"industry": "Aerospace"})
    assert "'Aerospace' is not a known value" in str(info.value)
    assert "Healthcare" in str(info.value) and "Software" in str(info.value)


def test_a_close_spelling_of_a_category_is_understood(predictions: Predictions) -> None:
    result = predictions.what_if("lead_score", LEAD, {"industry": "healthcare"})
    assert result.changes == {"industry": "Healthcare"}


def test_a_number_that_is_not_a_number_is_refused(predictions: Predictions) -> None:
    with pytest.raises(UserFacingError, match="'lots' is not a number"):
        predictions.what_if("lead_score", LEAD, {"intent_score": "lots"})


@pytest.mark.parametrize("value", ["maybe", "ture"])
def test_a_yes_no_value_that_is_neither_is_refused(predictions: Predictions, value: str) -> None:
    with pytest.raises(UserFacingError):
        predictions.what_if("lead_score", LEAD, {"webinar_attended": value})


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_number_is_refused(predictions: Predictions, value: str) -> None:
    with pytest.raises(UserFacingError):
        predictions.what_if("lead_score", LEAD, {"intent_score": value})


def test_an_unknown_company_size_band_is_not_guessed(predictions: Predictions) -> None:
    with pytest.raises(UserFacingError, match="not a known value"):
        predictions.what_if("lead_score", LEAD, {"company_size_band": "1-5000"})
