"""Touch-based credit for pipeline and revenue: one row per opportunity and credited touch, credits summing to 1.

Models (sop-attribution-methodology): first_touch, last_touch, linear, u_shaped (40/20/40), w_shaped (30% first
touch, 30% lead-creation touch, 30% opportunity-creation touch, 10% over the rest), time_decay (half-life in days
before the opportunity was created), and any_touch (every touch counts fully; for influenced pipeline). Touches
count in the lookback window before the opportunity's creation, up to and including it. Opportunities with no
counted touch get one row with the no-touch label and credit 1. Attribution divides credit; it does not prove cause.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlglot import exp

from mopsbot.metrics.catalog import AttributionConfig

CAVEAT = "Attribution divides credit among touches; it does not prove that a channel caused the pipeline."

_CREDIT = {
    "first_touch": "(rn = 1)::DOUBLE",
    "last_touch": "(rn = n)::DOUBLE",
    "linear": "1.0 / n",
    "any_touch": "1.0",
    "u_shaped": """CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5
        WHEN rn = 1 OR rn = n THEN 0.4 ELSE 0.2 / (n - 2) END""",
    # lc: the lead-creation touch if it is in the window, else the first touch takes its 30%
    "w_shaped": """0.3 * (rn = 1)::INT + 0.3 * (rn = lc)::INT + 0.3 * (rn = n)::INT
        + CASE WHEN n - keys > 0 THEN (NOT (rn = 1 OR rn = lc OR rn = n))::INT * 0.1 / (n - keys)
               ELSE (rn = 1 OR rn = lc OR rn = n)::INT * 0.1 / keys END""",
    "time_decay": "decay / sum(decay) OVER (PARTITION BY opportunity_id)",
}
MODELS = tuple(_CREDIT)


def credits_sql(config: AttributionConfig, model: str, time_column: str, start: date, end: date) -> tuple[str, list]:
    """SQL (and its parameters) of the credits of opportunities whose `time_column` is in [start, end]."""
    if model not in _CREDIT:
        raise ValueError(f"unknown attribution model {model!r}")
    if time_column not in ("created_at", "closed_at"):
        raise ValueError(f"attribution is dated by created_at or closed_at, not {time_column!r}")
    types = ", ".join(exp.Literal.string(t).sql() for t in config.counted_touch_types)
    no_touch = exp.Literal.string(config.no_touch_label).sql()
    lookback = int(config.lookback_days)
    half_life = float(config.time_decay_half_life_days)
    sql = f"""
    WITH opp AS (
        SELECT o.opportunity_id, o.lead_id, o.amount, o.region, o.created_at, o.closed_at, o.is_won,
               l.created_at AS lead_created_at
        FROM fct_opportunity o JOIN dim_lead l ON l.lead_id = o.lead_id
        WHERE o.{time_column} >= ? AND o.{time_column} < ?
    ), touches AS (
        SELECT p.opportunity_id, p.amount, p.region, p.created_at, p.closed_at, p.is_won, t.channel, t.campaign_id,
               row_number() OVER (PARTITION BY p.opportunity_id ORDER BY t.touched_at, t.touchpoint_id) AS rn,
               count(*) OVER (PARTITION BY p.opportunity_id) AS n,
               t.touched_at = p.lead_created_at AS at_creation,
               pow(0.5, (epoch(p.created_at) - epoch(t.touched_at)) / 86400.0 / {half_life}) AS decay
        FROM opp p JOIN fct_touchpoint t ON t.lead_id = p.lead_id
        WHERE t.touched_at >= p.created_at - INTERVAL {lookback} DAY AND t.touched_at <= p.created_at
          AND t.touch_type IN ({types})
    ), roles AS (
        SELECT *, coalesce(min(CASE WHEN at_creation THEN rn END) OVER (PARTITION BY opportunity_id), 1) AS lc
        FROM touches
    ), keyed AS (
        SELECT *, 1 + (lc <> 1)::INT + (n <> 1 AND n <> lc)::INT AS keys FROM roles
    )
    SELECT opportunity_id, amount, {_CREDIT[model]} AS credit, channel, campaign_id, region, created_at,
           closed_at, is_won, TRUE AS touched
    FROM keyed
    UNION ALL
    SELECT opportunity_id, amount, 1.0, {no_touch}, NULL, region, created_at, closed_at, is_won, FALSE
    FROM opp WHERE opportunity_id NOT IN (SELECT opportunity_id FROM touches)
    """
    return sql, [start, end + timedelta(days=1)]
