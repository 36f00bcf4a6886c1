"""Independent references for the prediction tests: plain-SQL reads of dim_lead, an encoder written from the card,
brute-force Shapley values over feature groups, and the documented generating process of the demo label
(knowledge/reference/model-card-lead-score.md). None of it calls the engine's encoding or contribution code."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from mopsbot.predictions.model import TrainedModel

REPO = Path(__file__).resolve().parents[2]

# The demo generator's log-odds for "opportunity within 90 days" (model card, "How the demo data was generated").
TRUE_COEFFICIENTS = {
    "seniority_level": 0.45,
    "web_visits_30d": 0.35,  # on ln(1 + visits)
    "email_clicks_90d": 0.12,
    "intent_score": 0.025,
    "webinar_attended": 0.90,
    "demo_request": 1.80,
    "is_personal_email": -1.50,
}
SIZE_EFFECT = {"1-50": -0.6, "51-200": 0.0, "201-1000": 0.4, "1001-5000": 0.7, "5000+": 0.5}
CHANNEL_EFFECT = {
    "paid_search": 0.3,
    "paid_social": -0.2,
    "content_syndication": -0.7,
    "events": 0.4,
    "webinar": 0.2,
    "email": 0.0,
    "organic_search": 0.3,
    "direct": 0.5,
    "referral": 0.6,
}


def fetch(
    con: duckdb.DuckDBPyConnection, model: TrainedModel, where: str = "TRUE", params: list[Any] | None = None
) -> dict[str, np.ndarray]:
    """The card's features (and key) for the entities in its population matching `where`, by plain SQL."""
    card = model.card
    names = ", ".join(f.name for f in card.features)
    sql = (
        f"SELECT {card.entity_key}, {names} FROM {card.entity_table} "
        f"WHERE ({card.population or 'TRUE'}) AND ({where}) ORDER BY {card.entity_key}"
    )
    return {k: np.asarray(v) for k, v in con.execute(sql, params or []).fetchnumpy().items()}


def training_rows(con: duckdb.DuckDBPyConnection, model: TrainedModel) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The card's training rows and labels, read with the card's own label and training filter."""
    card = model.card
    sql = (
        f"SELECT {', '.join(f.name for f in card.features)}, ({card.label})::INT AS label FROM {card.entity_table} "
        f"WHERE ({card.population or 'TRUE'}) AND ({card.training_filter or 'TRUE'})"
    )
    data = {k: np.asarray(v) for k, v in con.execute(sql).fetchnumpy().items()}
    return data, data.pop("label").astype(float)


def raw_row(rows: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {k: v[i].item() if isinstance(v[i], np.generic) else v[i] for k, v in rows.items()}


def encode(model: TrainedModel, rows: dict[str, np.ndarray]) -> np.ndarray:
    """The estimator's input matrix, written from the card: log1p where the card says so, one 0/1 column per
    known category in the artifact's column layout."""
    cols = []
    for feature, category in model.spec.encoding.columns():
        values = np.asarray(rows[feature])
        if category is None:
            col = values.astype(float)
            if model.card.feature(feature).transform == "log1p":
                col = np.log1p(col)
        else:
            col = np.array([str(v) == category for v in values], dtype=float)
        cols.append(col)
    return np.column_stack(cols)


def encode_one(model: TrainedModel, raw: dict[str, Any]) -> np.ndarray:
    return encode(model, {k: np.asarray([v], dtype=object) for k, v in raw.items()})[0]


def shapley(
    value: Callable[[np.ndarray], np.ndarray],
    columns: list[tuple[str, str | None]],
    x: np.ndarray,
    background: np.ndarray,
) -> dict[str, float]:
    """Exact Shapley values of the feature groups, by enumerating every coalition: features in the coalition take
    x's columns, the others the background's; `value` maps rows to the model output."""
    features = list(dict.fromkeys(f for f, _ in columns))
    n = len(features)
    index = {f: [j for j, (g, _) in enumerate(columns) if g == f] for f in features}
    coalitions = list(itertools.product((False, True), repeat=n))
    rows = np.tile(background, (len(coalitions), 1))
    for r, members in enumerate(coalitions):
        for f, inside in zip(features, members, strict=True):
            if inside:
                rows[r, index[f]] = x[index[f]]
    v = dict(zip(coalitions, np.asarray(value(rows), dtype=float), strict=True))
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    phi = {}
    for i, f in enumerate(features):
        total = 0.0
        for members in coalitions:
            if members[i]:
                continue
            joined = (*members[:i], True, *members[i + 1 :])
            total += weight[sum(members)] * (v[joined] - v[members])
        phi[f] = total
    return phi


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))
