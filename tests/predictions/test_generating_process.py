"""On the synthetic demo data the true drivers are known (the model card's generating process); the fitted lead
score and the drivers its explanations report must agree with them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import CHANNEL_EFFECT, SIZE_EFFECT, TRUE_COEFFICIENTS, fetch


@pytest.fixture(scope="module")
def explained(predictions: Predictions, engine: MetricsEngine, lead_model: TrainedModel) -> list[dict[str, Any]]:
    """feature -> (raw value, contribution) for every 53rd lead (~1,200 leads)."""
    ids = fetch(engine.cursor(), lead_model, "lead_id % 53 = 0")["lead_id"]
    out = []
    for lead in ids:
        e = predictions.explain("lead_score", int(lead))
        out.append({f.feature: (f.value, f.contribution) for f in e.factors})
    return out


def _contributions(explained: list[dict[str, Any]], feature: str, value: Any) -> list[float]:
    return [row[feature][1] for row in explained if row[feature][0] == value]


@pytest.mark.parametrize(
    ("feature", "raises_when_true"),
    [("demo_request", True), ("webinar_attended", True), ("is_personal_email", False)],
)
def test_yes_no_drivers_push_the_way_the_generator_does(
    explained: list[dict[str, Any]], feature: str, raises_when_true: bool
) -> None:
    yes, no = _contributions(explained, feature, True), _contributions(explained, feature, False)
    assert len(yes) >= 20 and len(no) >= 20
    up, down = (yes, no) if raises_when_true else (no, yes)
    assert all(c > 0 for c in up)
    assert all(c < 0 for c in down)


def test_higher_intent_always_contributes_more(explained: list[dict[str, Any]], lead_model: TrainedModel) -> None:
    pairs = sorted(row["intent_score"] for row in explained)
    values = np.array([v for v, _ in pairs], dtype=float)
    contribution = np.array([c for _, c in pairs])
    assert values.min() < 30 and values.max() > 80
    assert np.all(np.diff(contribution)[np.diff(values) > 0] > 0)
    assert np.all(np.diff(contribution)[np.diff(values) == 0] == 0)
    mean_intent = lead_model.spec.baseline[lead_model.spec.encoding.numeric.index("intent_score")]
    assert np.all(np.sign(contribution) == np.sign(values - mean_intent))


def test_senior_people_score_up_and_individual_contributors_down(explained: list[dict[str, Any]]) -> None:
    c_level, individual = (
        _contributions(explained, "seniority_level", 4),
        _contributions(explained, "seniority_level", 0),
    )
    assert c_level and individual
    assert all(c > 0 for c in c_level) and all(c < 0 for c in individual)


def test_small_companies_score_down_and_large_ones_up(explained: list[dict[str, Any]]) -> None:
    small = _contributions(explained, "company_size_band", "1-50")
    large = _contributions(explained, "company_size_band", "1001-5000")
    assert len(small) >= 20 and len(large) >= 20
    assert all(c < 0 for c in small) and all(c > 0 for c in large)


def test_content_syndication_is_the_weakest_channel_in_explanations(explained: list[dict[str, Any]]) -> None:
    by_channel = {ch: _contributions(explained, "source_channel", ch) for ch in CHANNEL_EFFECT}
    assert all(by_channel.values())
    assert all(c < 0 for c in by_channel["content_syndication"])
    weakest = min(by_channel, key=lambda ch: by_channel[ch][0])
    assert weakest == "content_syndication"


def _weights(model: TrainedModel) -> dict[tuple[str, str | None], float]:
    coef, _ = model.weights
    return dict(zip(model.spec.encoding.columns(), coef.tolist(), strict=True))


def test_fitted_coefficients_have_the_documented_signs(lead_model: TrainedModel) -> None:
    w = _weights(lead_model)
    signs = {name: np.sign(w[(name, None)]) for name in TRUE_COEFFICIENTS}
    assert signs == {name: np.sign(v) for name, v in TRUE_COEFFICIENTS.items()}
    assert lead_model.card.feature("web_visits_30d").transform == "log1p"  # the generator uses ln(1 + visits)


@pytest.mark.parametrize("feature", list(TRUE_COEFFICIENTS))
def test_fitted_coefficients_are_close_to_the_documented_log_odds(lead_model: TrainedModel, feature: str) -> None:
    truth = TRUE_COEFFICIENTS[feature]
    assert _weights(lead_model)[(feature, None)] == pytest.approx(truth, rel=0.25)


@pytest.mark.parametrize(
    ("feature", "effects", "reference"),
    [("company_size_band", SIZE_EFFECT, "51-200"), ("source_channel", CHANNEL_EFFECT, "email")],
)
def test_category_effects_are_close_to_the_documented_ones(
    lead_model: TrainedModel, feature: str, effects: dict[str, float], reference: str
) -> None:
    """One-hot weights are only defined up to a constant, so compare each level against the reference level."""
    w = _weights(lead_model)
    assert set(lead_model.spec.encoding.categories[feature]) == set(effects)
    for level, effect in effects.items():
        fitted = w[(feature, level)] - w[(feature, reference)]
        assert fitted == pytest.approx(effect, abs=0.25), level
    lowest = min(effects, key=lambda level: w[(feature, level)])
    assert lowest == min(effects, key=effects.get)


def test_industry_carries_no_real_signal(lead_model: TrainedModel) -> None:
    """Industry is not in the generating process: its levels' weights stay within noise of each other."""
    w = [v for (feature, _), v in _weights(lead_model).items() if feature == "industry"]
    assert len(w) == 8
    assert max(w) - min(w) < 0.4


def test_the_model_measures_well_on_the_holdout(lead_model: TrainedModel) -> None:
    m = lead_model.spec.metrics
    assert m["auc"] > 0.7 and m["brier"] < 0.1
    assert m["holdout_rows"] + m["training_rows"] == lead_model.spec.training_rows
