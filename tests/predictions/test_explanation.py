"""What one explanation tells a user: the score and tier, the baseline and average, odds ratios, warnings for
inputs the model never saw, and how well calibrated the score's band was on the holdout."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import yaml

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.explain import explain
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import REPO, encode, encode_one, fetch, raw_row, sigmoid

LEAD = 4411
TIERS = yaml.safe_load((REPO / "tools" / "models" / "lead_score.yaml").read_text(encoding="utf-8"))["tiers"]


def expected_tier(score: float) -> str:
    """The card's tier for a score (the card scores are rounded): the highest tier whose minimum is reached."""
    reached = [(t["min"], name) for name, t in TIERS.items() if round(score) >= t["min"]]
    return max(reached)[1]


@pytest.fixture(scope="module")
def population(engine: MetricsEngine, lead_model: TrainedModel) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every scored lead with the estimator's own probability x 100."""
    rows = fetch(engine.cursor(), lead_model)
    return rows, 100 * lead_model.estimator.predict_proba(encode(lead_model, rows))[:, 1]


@pytest.fixture(scope="module")
def spread(population: tuple[dict[str, np.ndarray], np.ndarray]) -> list[int]:
    """Lead 4411 plus leads in every tier and every calibration band, and the highest and lowest scored."""
    rows, scores = population
    picks = {LEAD, int(rows["lead_id"][np.argmax(scores)]), int(rows["lead_id"][np.argmin(scores)])}
    for lo, hi in [(0, 20), (20, 40), (40, 60), (60, 70), (70, 80), (80, 100)]:
        inside = np.flatnonzero((scores >= lo) & (scores < hi))
        picks |= {int(rows["lead_id"][i]) for i in inside[:: max(1, len(inside) // 3)][:3]}
    return sorted(picks)


def test_the_spread_covers_every_tier(spread: list[int], population: Any) -> None:
    rows, scores = population
    tiers = {expected_tier(scores[np.searchsorted(rows["lead_id"], lead)]) for lead in spread}
    assert tiers == set(TIERS)


def test_score_is_the_estimators_probability_and_the_tier_is_the_cards(
    predictions: Predictions, lead_model: TrainedModel, engine: MetricsEngine, spread: list[int]
) -> None:
    for lead in spread:
        e = predictions.explain("lead_score", lead)
        raw = raw_row(fetch(engine.cursor(), lead_model, "lead_id = ?", [lead]), 0)
        proba = lead_model.estimator.predict_proba(encode_one(lead_model, raw).reshape(1, -1))[0, 1]
        assert 0 <= e.score <= 100
        assert e.score == pytest.approx(100 * proba, abs=1e-9)
        assert e.tier == expected_tier(e.score), (lead, e.score)
        assert (e.model, e.version, e.entity_id) == ("lead_score", "2026.11", lead)
        assert [f.value for f in e.factors] == [raw[f.name] for f in lead_model.card.features]


def test_baseline_and_average_are_stated(
    predictions: Predictions, lead_model: TrainedModel, lead_training: tuple[np.ndarray, np.ndarray]
) -> None:
    matrix, label = lead_training
    e = predictions.explain("lead_score", LEAD)
    baseline = lead_model.estimator.decision_function(matrix.mean(axis=0).reshape(1, -1))[0]
    assert e.baseline_score == pytest.approx(100 * sigmoid(baseline), abs=1e-9)
    assert e.average_score == pytest.approx(100 * lead_model.estimator.predict_proba(matrix)[:, 1].mean(), abs=1e-6)
    assert e.average_score == pytest.approx(100 * label.mean(), abs=1.0)  # an average lead scores the base rate


def test_each_odds_ratio_is_the_exponential_of_its_contribution(predictions: Predictions, spread: list[int]) -> None:
    for lead in spread:
        for f in predictions.explain("lead_score", lead).factors:
            assert f.odds_ratio == pytest.approx(math.exp(f.contribution), rel=1e-12)
            assert (f.odds_ratio > 1) == (f.contribution > 0)


def test_top_factors_are_ordered_by_strength(predictions: Predictions, spread: list[int]) -> None:
    for lead in spread:
        e = predictions.explain("lead_score", lead)
        data = e.to_dict()
        up = [f["contribution"] for f in data["top_positive"]]
        down = [f["contribution"] for f in data["top_negative"]]
        assert all(c > 0 for c in up) and up == sorted(up, reverse=True)
        assert all(c < 0 for c in down) and down == sorted(down)
        strongest = max(e.factors, key=lambda f: abs(f.contribution))
        assert strongest.feature in {f["feature"] for f in data["top_positive"] + data["top_negative"]}
        json.dumps(data)  # the tool returns it as data


def test_the_calibration_row_is_the_band_holding_the_score(
    predictions: Predictions, lead_model: TrainedModel, spread: list[int]
) -> None:
    table = lead_model.spec.metrics["calibration"]
    for lead in spread:
        e = predictions.explain("lead_score", lead)
        lo, hi = (int(v) for v in e.calibration["band"].split("-"))
        assert lo <= e.score < hi or (hi == 100 and e.score == 100)
        assert e.calibration in table and e.calibration["rows"] > 0


def test_caveats_say_association_not_cause(predictions: Predictions) -> None:
    caveats = " ".join(predictions.explain("lead_score", LEAD).caveats)
    assert "not causes" in caveats and "Correlated" in caveats
    assert "Outside what the model saw" not in caveats


@pytest.fixture
def raw_4411(predictions: Predictions) -> dict[str, Any]:
    return predictions.entity("lead_score", LEAD)


def _flagged(model: TrainedModel, raw: dict[str, Any]) -> tuple[set[str], list[str]]:
    e = explain(model, LEAD, raw)
    return {f.feature for f in e.factors if f.outside_training_range}, e.caveats


@pytest.mark.parametrize(
    ("change", "business_name"),
    [
        ({"industry": "Aerospace"}, "Industry"),
        ({"company_size_band": "10000+"}, "Company size"),
        ({"intent_score": 150}, "6sense intent score"),
        ({"web_visits_30d": 15}, "Website visits (30 days)"),  # the training maximum is 14
        ({"seniority_level": -1}, "Job seniority"),
    ],
)
def test_values_the_model_never_saw_are_flagged(
    lead_model: TrainedModel, raw_4411: dict[str, Any], change: dict[str, Any], business_name: str
) -> None:
    (feature,) = change
    assert lead_model.spec.ranges.get("web_visits_30d") == [0.0, 14.0]
    flagged, caveats = _flagged(lead_model, {**raw_4411, **change})
    assert flagged == {feature}
    assert business_name in caveats[-1] and "Outside what the model saw" in caveats[-1]


def test_values_at_the_edges_of_the_training_range_are_not_flagged(
    lead_model: TrainedModel, raw_4411: dict[str, Any]
) -> None:
    for feature, (lo, hi) in lead_model.spec.ranges.items():
        for edge in (lo, hi):
            flagged, _ = _flagged(lead_model, {**raw_4411, feature: edge})
            assert flagged == set(), (feature, edge)
    assert _flagged(lead_model, raw_4411)[0] == set()
