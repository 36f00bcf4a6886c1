"""Anomaly checks: a metric's series per group, each point against a trailing baseline (robust z-score).

z = 0.6745 x (value - median) / MAD over the previous `window` points of the same series (Iglewicz and Hoaglin's
modified z-score); points with |z| >= threshold and a relative change of at least `min_change` are flagged. A flat
baseline (MAD = 0) falls back to the mean absolute deviation, so a single spike in a steady series is still found.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from mopsbot.errors import UserFacingError
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.periods import Period
from mopsbot.metrics.query import Filter, MetricQuery

DEFAULT_WINDOW = {"day": 28, "week": 8, "month": 6}
# How far before the checked period the baseline series starts, in days per baseline point; day series of email
# sends are sparse (a send every few days), so they reach further back.
LOOKBACK = {"day": 4, "week": 7, "month": 31}
MIN_VOLUME = 30  # sop-paid-media-cpl-guardrails: cells under 30 leads in a month are not judged monthly


@dataclass(frozen=True)
class Anomaly:
    metric: str
    group: dict[str, Any]
    bucket: str
    value: float
    baseline: float
    z: float
    change: float  # relative to the baseline median
    direction: str  # above | below

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def robust_z(value: float, history: list[float]) -> tuple[float, float]:
    """(modified z-score, baseline median) of a value against its history."""
    median = statistics.median(history)
    mad = statistics.median(abs(h - median) for h in history)
    if mad == 0:
        mad = statistics.fmean(abs(h - median) for h in history) or 0.0
    if mad == 0:
        return (0.0 if value == median else float("inf") * (1 if value > median else -1)), median
    return 0.6745 * (value - median) / mad, median


def detect(
    engine: MetricsEngine,
    metric: str,
    by: list[str],
    grain: str,
    period: Period,
    *,
    window: int | None = None,
    threshold: float = 3.5,
    min_change: float = 0.25,
    min_volume: float = MIN_VOLUME,
    direction: str = "bad",
    filters: list[Filter] | None = None,
) -> tuple[list[Anomaly], dict[str, Any]]:
    """Anomalies of `metric` per group in `period` (the baseline window reaches back before it).

    `direction` "bad" keeps only moves the wrong way for metrics whose good direction the catalog knows; "both"
    keeps all. Ratio points whose denominator is under `min_volume` (e.g. fewer than 30 leads) are too small to
    judge and skipped. Returns the anomalies, strongest first, and the series' query (SQL, freshness, ...).
    """
    window = window or DEFAULT_WINDOW.get(grain, 6)
    if grain not in DEFAULT_WINDOW:
        raise UserFacingError("anomaly checks run on a day, week or month grain")
    catalog = engine.catalog
    name = catalog.metric_name(metric)
    spec = catalog.metrics[name]
    volume = next(
        (
            n
            for n, m in catalog.metrics.items()
            if spec.type == "ratio" and m.type == "simple" and m.measure == spec.denominator
        ),
        None,
    )
    back = timedelta(days=LOOKBACK[grain] * (window + 2))
    q = MetricQuery(
        metrics=[name, volume] if volume else [name],
        dimensions=by,
        grain=grain,
        start=period.start - back,
        end=period.end,
        filters=filters or [],
        limit=1000,
    )
    result = engine.query(q)
    bad = {"up": "below", "down": "above"}.get(spec.good_direction or "") if direction == "bad" else None
    series: dict[tuple, list[tuple[date, float]]] = {}
    for row in result.rows:
        if volume and (row.get(volume) or 0) < min_volume:
            continue
        if row.get(name) is not None:
            key = tuple(row[d] for d in result.dimensions)
            series.setdefault(key, []).append((row["bucket"], float(row[name])))
    found = []
    for key, points in series.items():
        points.sort()
        for i, (bucket, value) in enumerate(points):
            if bucket < period.start or i < max(3, window // 2):
                continue
            history = [v for _, v in points[max(0, i - window) : i]]
            z, median = robust_z(value, history)
            change = (value - median) / abs(median) if median else float("inf")
            if abs(z) >= threshold and abs(change) >= min_change and bad in (None, "above" if z > 0 else "below"):
                found.append(
                    Anomaly(
                        metric=name,
                        group=dict(zip(result.dimensions, key, strict=True)),
                        bucket=bucket.isoformat(),
                        value=value,
                        baseline=median,
                        z=round(z, 2) if z not in (float("inf"), float("-inf")) else 99.0 * (1 if z > 0 else -1),
                        change=round(change, 4) if change != float("inf") else 99.0,
                        direction="above" if value > median else "below",
                    )
                )
    found.sort(key=lambda a: -abs(a.z))
    return found, result.to_dict()
