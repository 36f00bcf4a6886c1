"""The demo warehouse: deterministic, shaped like the docs say, and carrying the injected incidents."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from mopsbot.demo import company as co
from mopsbot.demo.generator import generate, label_log_odds

TABLES = ("dim_campaign", "fct_ad_daily", "fct_email_send", "dim_lead", "fct_touchpoint", "fct_opportunity")


def _fingerprints(path: Path) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*), sum(hash(t)) FROM {t} t").fetchone() for t in TABLES}  # type: ignore[misc]
    finally:
        con.close()


def test_same_seed_gives_identical_data_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.duckdb" for n in "abc")
    generate(a, seed=3, scale=0.2)
    generate(b, seed=3, scale=0.2)
    generate(c, seed=4, scale=0.2)
    assert _fingerprints(a) == _fingerprints(b)
    fa, fc = _fingerprints(a), _fingerprints(c)
    assert fa["dim_campaign"] == fc["dim_campaign"]  # the campaign calendar is the plan, not chance
    assert fa["dim_lead"] != fc["dim_lead"]


def test_scale_multiplies_volumes(tmp_path: Path, warehouse: Path) -> None:
    generate(tmp_path / "half.duckdb", scale=0.5)
    half = _fingerprints(tmp_path / "half.duckdb")["fct_touchpoint"][0]
    full = _fingerprints(warehouse)["fct_touchpoint"][0]
    assert 0.45 < half / full < 0.55


def test_bad_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path / "x.duckdb", scale=0)


@pytest.fixture(scope="module")
def con(warehouse: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse), read_only=True)


def q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_default_scale_volumes_and_period(con: duckdb.DuckDBPyConnection) -> None:
    ((leads, first, last),) = q(con, "SELECT count(*), min(created_at)::DATE, max(created_at)::DATE FROM dim_lead")
    assert 50_000 < leads < 80_000
    assert (str(first), str(last)) == (str(co.START), str(co.END))
    ((touches,),) = q(con, "SELECT count(*) FROM fct_touchpoint")
    assert 300_000 < touches < 600_000
    assert q(con, "SELECT count(*) FROM dim_lead WHERE lead_id = 4411") == [(1,)]


def test_keys_join(con: duckdb.DuckDBPyConnection) -> None:
    orphans = """
        SELECT (SELECT count(*) FROM fct_touchpoint t LEFT JOIN dim_lead l USING (lead_id) WHERE l.lead_id IS NULL)
             + (SELECT count(*) FROM fct_touchpoint t WHERE campaign_id IS NOT NULL
                  AND campaign_id NOT IN (SELECT campaign_id FROM dim_campaign))
             + (SELECT count(*) FROM fct_ad_daily WHERE campaign_id NOT IN (SELECT campaign_id FROM dim_campaign))
             + (SELECT count(*) FROM fct_opportunity o LEFT JOIN dim_lead l USING (lead_id) WHERE l.lead_id IS NULL)
    """
    assert q(con, orphans) == [(0,)]
    # non-campaign channels carry no campaign; campaign channels always do
    assert q(
        con,
        """SELECT count(*) FROM fct_touchpoint WHERE (campaign_id IS NULL) <>
                     (channel IN ('organic_search', 'direct', 'referral'))""",
    ) == [(0,)]


def test_lifecycle_order_and_horizon(con: duckdb.DuckDBPyConnection) -> None:
    bad = """SELECT count(*) FROM dim_lead WHERE mql_at < created_at OR sql_at < mql_at OR opportunity_at < sql_at
             OR opportunity_at > created_at + INTERVAL 90 DAY OR (sql_at IS NOT NULL AND mql_at IS NULL)"""
    assert q(con, bad) == [(0,)]
    # MQL rule of the lifecycle SOP: MQL score >= 65 or a demo request
    assert q(con, "SELECT count(*) FROM dim_lead WHERE mql_at IS NOT NULL AND mql_score < 65 AND NOT demo_request") == [
        (0,)
    ]
    assert q(
        con,
        "SELECT count(*) FROM fct_opportunity o JOIN dim_lead l USING (lead_id) WHERE o.created_at <> l.opportunity_at",
    ) == [(0,)]


def test_ratios_are_realistic(con: duckdb.DuckDBPyConnection) -> None:
    ((mql_rate, opp_rate),) = q(
        con, "SELECT avg((mql_at IS NOT NULL)::INT), avg((opportunity_at IS NOT NULL)::INT) FROM dim_lead"
    )
    assert 0.2 < mql_rate < 0.5
    assert 0.04 < opp_rate < 0.15
    ((win_rate,),) = q(con, "SELECT avg(is_won::INT) FROM fct_opportunity WHERE closed_at IS NOT NULL")
    assert 0.2 < win_rate < 0.45
    ((ctr_search, ctr_social),) = q(
        con,
        """SELECT sum(clicks) FILTER (platform = 'google_ads') /
        sum(impressions) FILTER (platform = 'google_ads'), sum(clicks) FILTER (platform = 'linkedin_ads') /
        sum(impressions) FILTER (platform = 'linkedin_ads') FROM fct_ad_daily""",
    )
    assert ctr_search > 3 * ctr_social  # search clicks far more than social, as in real ad data


def test_seasonality_december_is_quieter_than_october(con: duckdb.DuckDBPyConnection) -> None:
    ((oct_, dec),) = q(
        con,
        "SELECT count(*) FILTER (month(created_at) = 10 AND year(created_at) = 2025), "
        "count(*) FILTER (month(created_at) = 12 AND year(created_at) = 2025) FROM dim_lead",
    )
    assert dec < 0.75 * oct_


def test_injected_cpl_spike(con: duckdb.DuckDBPyConnection) -> None:
    cpl = dict(
        q(
            con,
            """
        WITH s AS (SELECT date_trunc('month', a.date) m, sum(spend) spend FROM fct_ad_daily a
                   JOIN dim_campaign c USING (campaign_id) WHERE c.channel = 'paid_social' AND c.region = 'EMEA'
                   GROUP BY 1),
             l AS (SELECT date_trunc('month', created_at) m, count(*) leads FROM dim_lead d
                   JOIN dim_campaign c ON c.campaign_id = d.source_campaign_id
                   WHERE c.channel = 'paid_social' AND c.region = 'EMEA' GROUP BY 1)
        SELECT strftime(m, '%Y-%m'), spend / leads FROM s JOIN l USING (m)""",
        )
    )
    october = float(cpl.pop("2026-10"))
    baseline = np.median([float(v) for v in cpl.values()])
    assert october > 170 > max(float(v) for v in cpl.values())
    assert october > 1.5 * baseline


def test_injected_bounce_spike(con: duckdb.DuckDBPyConnection) -> None:
    rows = q(
        con,
        """SELECT c.campaign_name, s.send_date, s.hard_bounces / s.sends FROM fct_email_send s
                     JOIN dim_campaign c USING (campaign_id) ORDER BY 3 DESC LIMIT 2""",
    )
    (name, day, rate), (_, _, runner_up) = rows
    assert (name, str(day)) == (co.BOUNCE_SPIKE["campaign"], str(co.BOUNCE_SPIKE["date"]))
    assert rate > 0.05 > 0.02 > runner_up


def test_injected_duplicate_leads_differ_only_in_case(con: duckdb.DuckDBPyConnection) -> None:
    rows = q(
        con,
        """SELECT lower(email), count(*), count(DISTINCT email), max(created_at)::DATE FROM dim_lead
                     GROUP BY 1 HAVING count(*) > 1""",
    )
    assert len(rows) == co.DUPLICATE_IMPORT["leads_per_scale"]
    assert all(
        n == 2 and distinct == 2 and str(day) == str(co.DUPLICATE_IMPORT["date"]) for _, n, distinct, day in rows
    )


def test_label_follows_the_documented_generating_process(con: duckdb.DuckDBPyConnection) -> None:
    """A logistic fit on the generated leads recovers the documented coefficients' signs and rough sizes."""
    cols = [
        "seniority_level",
        "web_visits_30d",
        "email_clicks_90d",
        "webinar_attended",
        "demo_request",
        "intent_score",
        "is_personal_email",
    ]
    data = con.execute(f"""SELECT {", ".join(cols)}, opportunity_at IS NOT NULL FROM dim_lead
                           WHERE created_at < DATE '2026-07-31'
                           AND lower(email) NOT IN (SELECT lower(email) FROM dim_lead GROUP BY 1 HAVING count(*) > 1)
                        """).fetchnumpy()
    x = np.column_stack(
        [
            data["seniority_level"],
            np.log1p(data["web_visits_30d"]),
            data["email_clicks_90d"],
            data["webinar_attended"],
            data["demo_request"],
            data["intent_score"] - 50.0,
            data["is_personal_email"],
        ]
    ).astype(float)
    y = data[next(k for k in data if k not in cols)].astype(float)
    w = _logistic_fit(x, y)
    expected = [
        co.LABEL_COEF[k]
        for k in (
            "seniority_level",
            "log1p_web_visits_30d",
            "email_clicks_90d",
            "webinar_attended",
            "demo_request",
            "intent_centered",
            "is_personal_email",
        )
    ]
    assert np.all(np.sign(w[1:]) == np.sign(expected))
    assert np.allclose(w[1:], expected, rtol=0.35, atol=0.02)


def _logistic_fit(x: np.ndarray, y: np.ndarray, iters: int = 25) -> np.ndarray:
    """Plain Newton-Raphson logistic regression with an intercept (no extra dependency for one test)."""
    xb = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (y - p)
        hess = (xb * (p * (1 - p))[:, None]).T @ xb
        w += np.linalg.solve(hess, grad)
    return w


def test_label_log_odds_matches_coefficients() -> None:
    leads = {
        "seniority": np.array([4]),
        "size": np.array([3]),
        "web_visits": np.array([0]),
        "email_clicks": np.array([0]),
        "webinar": np.array([True]),
        "demo": np.array([True]),
        "intent": np.array([50]),
        "channel": np.array([co.CHANNELS.index("direct")]),
        "personal": np.array([False]),
    }
    expected = co.LABEL_INTERCEPT + 4 * 0.45 + 0.7 + 0.9 + 1.8 + 0.5
    assert label_log_odds(leads)[0] == pytest.approx(expected)
