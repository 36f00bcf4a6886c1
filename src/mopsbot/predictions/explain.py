"""Exact explanations of one prediction of a linear model.

Contribution of feature g = sum over its model columns j of w_j x (x_j - baseline_j), baseline = the training
mean of each column (one-hot groups summed back to their feature). The contributions add up exactly to
output(x) - output(baseline), in log-odds for a classifier (raw units for a regressor); for a linear model these are
also the exact Shapley values with the baseline as background. Probability points split p(x) - p(baseline) in
proportion to the log-odds contributions, so they add up too; each factor's odds ratio is exp(contribution).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mopsbot.predictions.model import TrainedModel

CAVEATS = (
    "These are associations in past data, not causes: changing a factor does not guarantee the score moves in "
    "real life.",
    "Correlated factors share credit (for example seniority and company size), so one may look smaller or larger "
    "than its real weight.",
)


@dataclass
class Factor:
    feature: str
    business_name: str
    value: Any  # the entity's raw value
    contribution: float  # log-odds (classifier) or raw units (regressor)
    points: float  # probability points x 100 (classifier) or raw units (regressor)
    odds_ratio: float | None
    outside_training_range: bool = False


@dataclass
class Explanation:
    model: str
    version: str
    entity_id: Any
    kind: str
    score: float  # probability x 100 (classifier) or the prediction
    tier: str | None
    output: float  # log-odds or raw prediction
    baseline_output: float
    baseline_score: float  # the score at the baseline point
    average_score: float  # mean score over the training rows
    factors: list[Factor]
    calibration: dict[str, Any] | None
    caveats: list[str] = field(default_factory=list)

    def top(self, n: int = 4) -> tuple[list[Factor], list[Factor]]:
        up = sorted((f for f in self.factors if f.contribution > 0), key=lambda f: -f.contribution)[:n]
        down = sorted((f for f in self.factors if f.contribution < 0), key=lambda f: f.contribution)[:n]
        return up, down

    def to_dict(self) -> dict[str, Any]:
        up, down = self.top()
        data = asdict(self)
        data["top_positive"] = [asdict(f) for f in up]
        data["top_negative"] = [asdict(f) for f in down]
        return data


def contributions(model: TrainedModel, x: np.ndarray) -> dict[str, float]:
    """Per-feature contributions for one encoded row (exact; they sum to output - baseline output)."""
    coef, _ = model.weights
    delta = coef * (x - np.asarray(model.spec.baseline))
    return {feature: float(delta[cols].sum()) for feature, cols in model.spec.encoding.groups().items()}


def explain(model: TrainedModel, entity_id: Any, raw: dict[str, Any]) -> Explanation:
    """Explain the model's prediction for one entity given its raw feature values."""
    spec, card = model.spec, model.card
    x = spec.encoding.encode({k: np.asarray([v], dtype=object) for k, v in raw.items()})[0]
    base = np.asarray(spec.baseline)
    output, baseline_output = (float(v) for v in model.raw_output(np.vstack([x, base])))
    contrib = contributions(model, x)
    classifier = spec.kind == "classifier"
    p = _sigmoid(output) if classifier else output
    p_base = _sigmoid(baseline_output) if classifier else baseline_output
    total = sum(contrib.values())
    factors = []
    for f in card.features:
        c = contrib[f.name]
        share = (c / total) * (p - p_base) if classifier and total else (c if not classifier else 0.0)
        lo_hi = spec.ranges.get(f.name)
        outside = False
        if f.type == "categorical":
            outside = str(raw[f.name]) not in spec.encoding.categories.get(f.name, [])
        elif lo_hi and raw[f.name] is not None:
            outside = not (lo_hi[0] <= float(raw[f.name]) <= lo_hi[1])
        factors.append(
            Factor(
                feature=f.name,
                business_name=f.business_name,
                value=_plain(raw[f.name]),
                contribution=c,
                points=100 * share if classifier else share,
                odds_ratio=math.exp(c) if classifier else None,
                outside_training_range=outside,
            )
        )
    score = 100 * p if classifier else p
    caveats = list(CAVEATS)
    outside = [f.business_name for f in factors if f.outside_training_range]
    if outside:
        caveats.append(f"Outside what the model saw in training: {', '.join(outside)}; treat the score with care.")
    return Explanation(
        model=card.name,
        version=spec.version,
        entity_id=entity_id,
        kind=spec.kind,
        score=score,
        tier=card.tier(round(score)) if classifier else None,
        output=output,
        baseline_output=baseline_output,
        baseline_score=100 * p_base if classifier else p_base,
        average_score=100 * spec.average_prediction if classifier else spec.average_prediction,
        factors=factors,
        calibration=band_of(spec.metrics.get("calibration"), p) if classifier else None,
        caveats=caveats,
    )


def band_of(table: list[dict[str, Any]] | None, p: float) -> dict[str, Any] | None:
    """The calibration row of the score band a probability falls in."""
    for row in table or []:
        lo, hi = (int(v) / 100 for v in row["band"].split("-"))
        if lo <= p < hi or (hi == 1 and p == 1):
            return row
    return None


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
