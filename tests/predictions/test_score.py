"""Batch scoring: "which of this week's MQLs score highest?" ranks the right leads, with the same scores the
explanations give, and filters select exactly the leads plain SQL selects."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from mopsbot.errors import UserFacingError
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import encode, fetch

OCTOBER = ("mql_at", date(2026, 10, 1), date(2026, 10, 31))


def _count(engine: MetricsEngine, where: str, params: list) -> int:
    sql = f"SELECT count(*) FROM dim_lead WHERE created_at IS NOT NULL AND {where}"
    return engine.cursor().execute(sql, params).fetchone()[0]


def _ids(engine: MetricsEngine, where: str, params: list) -> set[int]:
    sql = f"SELECT lead_id FROM dim_lead WHERE created_at IS NOT NULL AND {where}"
    return {r[0] for r in engine.cursor().execute(sql, params).fetchall()}


def test_top_rows_are_the_highest_scores_in_order(
    predictions: Predictions, engine: MetricsEngine, lead_model: TrainedModel
) -> None:
    result = predictions.score("lead_score", limit=25)
    scores = [r["score"] for r in result["rows"]]
    assert len(scores) == 25 and scores == sorted(scores, reverse=True)
    assert result["scored"] == _count(engine, "TRUE", [])
    everyone = fetch(engine.cursor(), lead_model)
    reference = np.sort(100 * lead_model.estimator.predict_proba(encode(lead_model, everyone))[:, 1])[::-1]
    assert scores == pytest.approx(reference[:25].tolist(), abs=0.005)  # rounded to 2 decimals


def test_batch_scores_equal_the_explained_scores(predictions: Predictions) -> None:
    result = predictions.score("lead_score", between=OCTOBER, limit=15)
    for row in result["rows"]:
        e = predictions.explain("lead_score", row["lead_id"])
        assert row["score"] == round(e.score, 2)
        assert row["tier"] == e.tier
        assert {f.feature: f.value for f in e.factors} == {f.feature: row[f.feature] for f in e.factors}


def test_tier_counts_cover_every_scored_lead(predictions: Predictions) -> None:
    result = predictions.score("lead_score", limit=1)
    assert sum(result["tiers"].values()) == result["scored"]
    assert set(result["tiers"]) == {"A", "B", "C"}
    assert result["tiers"]["C"] > result["tiers"]["B"] > result["tiers"]["A"] > 0


def test_a_region_filter_keeps_exactly_that_region(predictions: Predictions, engine: MetricsEngine) -> None:
    result = predictions.score("lead_score", where={"region": ["EMEA"]}, limit=50)
    assert result["scored"] == _count(engine, "region = 'EMEA'", [])
    assert {r["lead_id"] for r in result["rows"]} <= _ids(engine, "region = 'EMEA'", [])
    both = predictions.score("lead_score", where={"region": ["EMEA", "APAC"]}, limit=1)
    assert both["scored"] == _count(engine, "region IN ('EMEA', 'APAC')", [])


def test_a_date_range_on_mql_at_includes_both_whole_end_days(predictions: Predictions, engine: MetricsEngine) -> None:
    result = predictions.score("lead_score", between=OCTOBER, limit=10_000)
    in_october = "CAST(mql_at AS DATE) BETWEEN ? AND ?"
    assert result["scored"] == _count(engine, in_october, list(OCTOBER[1:])) > 1000
    assert {r["lead_id"] for r in result["rows"]} == _ids(engine, in_october, list(OCTOBER[1:]))
    assert result["data_through"] == date(2026, 10, 31)
    last_day = predictions.score("lead_score", between=("mql_at", date(2026, 10, 31), date(2026, 10, 31)))
    assert last_day["scored"] == _count(engine, "CAST(mql_at AS DATE) = DATE '2026-10-31'", []) > 0


def test_region_and_dates_combine(predictions: Predictions, engine: MetricsEngine) -> None:
    result = predictions.score("lead_score", where={"region": ["LATAM"]}, between=OCTOBER, limit=500)
    where = "region = 'LATAM' AND CAST(mql_at AS DATE) BETWEEN ? AND ?"
    assert result["scored"] == len(result["rows"]) == _count(engine, where, list(OCTOBER[1:])) > 0
    assert {r["lead_id"] for r in result["rows"]} == _ids(engine, where, list(OCTOBER[1:]))


def test_min_score_and_limit(predictions: Predictions) -> None:
    result = predictions.score("lead_score", between=OCTOBER, min_score=40, limit=100)
    assert result["rows"] and all(r["score"] >= 40 for r in result["rows"])
    assert all(r["tier"] in ("A", "B") for r in result["rows"])
    assert len(predictions.score("lead_score", between=OCTOBER, limit=3)["rows"]) == 3


def test_no_matching_leads_is_an_empty_ranking(predictions: Predictions) -> None:
    result = predictions.score("lead_score", between=("mql_at", date(2027, 1, 1), date(2027, 1, 31)))
    assert result["scored"] == 0 and result["rows"] == []


def test_filtering_on_a_column_that_does_not_exist_is_refused(predictions: Predictions) -> None:
    with pytest.raises(UserFacingError, match="no column 'budget'"):
        predictions.score("lead_score", where={"budget": [1]})
    with pytest.raises(UserFacingError, match="no column 'closed_at'"):
        predictions.score("lead_score", between=("closed_at", date(2026, 1, 1), date(2026, 1, 2)))
