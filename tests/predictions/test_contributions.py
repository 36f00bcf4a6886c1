"""Explanations are exact: factor contributions add up to the model's output, the output is the estimator's own,
and they equal brute-force Shapley values over the feature groups computed from the estimator alone."""

from __future__ import annotations

import numpy as np
import pytest

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import encode, encode_one, fetch, raw_row, shapley

LEAD = 4411
EVERY = 97  # every 97th lead, plus 4411: ~650 leads across the whole id range


@pytest.fixture(scope="module")
def sample(engine: MetricsEngine, lead_model: TrainedModel) -> dict[str, np.ndarray]:
    return fetch(engine.cursor(), lead_model, "lead_id % ? = 0 OR lead_id = ?", [EVERY, LEAD])


def test_the_sample_is_large_and_holds_lead_4411(sample: dict[str, np.ndarray]) -> None:
    assert len(sample["lead_id"]) >= 500
    assert LEAD in sample["lead_id"]


def test_contributions_add_up_to_the_output_and_points_to_the_score(
    predictions: Predictions, lead_model: TrainedModel, sample: dict[str, np.ndarray]
) -> None:
    decision = lead_model.estimator.decision_function
    background = np.asarray(lead_model.spec.baseline)
    baseline_output = float(decision(background.reshape(1, -1))[0])
    for i, lead in enumerate(sample["lead_id"]):
        e = predictions.explain("lead_score", int(lead))
        assert [f.feature for f in e.factors] == [f.name for f in lead_model.card.features]
        assert sum(f.contribution for f in e.factors) == pytest.approx(e.output - e.baseline_output, abs=1e-9)
        assert sum(f.points for f in e.factors) == pytest.approx(e.score - e.baseline_score, abs=1e-9)
        own = float(decision(encode_one(lead_model, raw_row(sample, i)).reshape(1, -1))[0])
        assert e.output == pytest.approx(own, abs=1e-9), lead
        assert e.baseline_output == pytest.approx(baseline_output, abs=1e-12)


def test_the_baseline_is_the_training_mean_of_each_column(
    lead_model: TrainedModel, lead_training: tuple[np.ndarray, np.ndarray]
) -> None:
    matrix, _ = lead_training
    assert lead_model.spec.baseline == pytest.approx(matrix.mean(axis=0).tolist(), abs=1e-9)


def _check_against_brute_force(predictions: Predictions, model: TrainedModel, rows: dict[str, np.ndarray]) -> int:
    """Compare each entity's contributions with exact Shapley values; returns how many entities were checked."""
    columns = model.spec.encoding.columns()
    assert len({f for f, _ in columns}) == len(model.card.features)
    background = np.asarray(model.spec.baseline)
    x = encode(model, rows)
    key = model.card.entity_key
    for i, entity in enumerate(rows[key]):
        reference = shapley(model.estimator.decision_function, columns, x[i], background)
        got = {f.feature: f.contribution for f in predictions.explain(model.card.name, int(entity)).factors}
        assert set(got) == set(reference)
        for feature, phi in reference.items():
            assert got[feature] == pytest.approx(phi, abs=1e-6), (entity, feature)
    return len(rows[key])


def test_lead_score_contributions_are_the_exact_shapley_values(
    predictions: Predictions, lead_model: TrainedModel, sample: dict[str, np.ndarray]
) -> None:
    picked = np.flatnonzero(sample["lead_id"] == LEAD).tolist() + list(range(0, len(sample["lead_id"]), 22))[:29]
    rows = {k: v[picked] for k, v in sample.items()}
    assert len(lead_model.card.features) == 10  # 2^10 coalitions per lead
    assert _check_against_brute_force(predictions, lead_model, rows) == 30


def test_sql_acceptance_contributions_are_the_exact_shapley_values(
    predictions: Predictions, engine: MetricsEngine
) -> None:
    model = predictions.model("sql_acceptance")
    mqls = fetch(engine.cursor(), model)
    assert mqls["lead_id"].size > 1000
    picked = np.linspace(0, mqls["lead_id"].size - 1, 6).astype(int)
    rows = {k: v[picked] for k, v in mqls.items()}
    assert _check_against_brute_force(predictions, model, rows) == 6


def test_a_lead_outside_the_population_has_no_sql_acceptance_score(
    predictions: Predictions, engine: MetricsEngine
) -> None:
    from mopsbot.predictions.service import EntityNotFound

    never_mql = engine.cursor().execute("SELECT min(lead_id) FROM dim_lead WHERE mql_at IS NULL").fetchone()[0]
    with pytest.raises(EntityNotFound, match=f"no lead {never_mql} "):
        predictions.explain("sql_acceptance", never_mql)
