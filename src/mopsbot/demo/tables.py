"""Write the generated arrays into the demo warehouse's star schema (duckdb)."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from mopsbot.demo import company as co
from mopsbot.demo.campaigns import Campaign

TITLES = {
    "individual_contributor": ("Site Reliability Engineer", "DevOps Engineer", "Systems Administrator"),
    "manager": ("IT Operations Manager", "SRE Manager", "Engineering Manager"),
    "director": ("Director of Engineering", "Director of IT Operations", "Director of Platform"),
    "vp": ("VP Infrastructure", "VP Engineering", "VP IT Operations"),
    "c_level": ("CTO", "CIO", "COO"),
}


def _labels(values: tuple[str, ...] | list[str]) -> str:
    """A duckdb list literal for mapping 0-based codes to labels: <list>[code + 1]."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _ts(col: str) -> str:
    return f"CASE WHEN {col} < 0 THEN NULL ELSE make_timestamp({col} * 1000000) END"


def write_tables(
    con: duckdb.DuckDBPyConnection,
    plan: list[Campaign],
    ad: dict[str, np.ndarray],
    leads: dict[str, np.ndarray],
    touches: dict[str, np.ndarray],
    opps: dict[str, np.ndarray],
    sends: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> dict[str, int]:
    """Create all tables; returns row counts by table."""
    _campaigns(con, plan)
    con.register("ad_src", ad)
    con.execute("""
        CREATE TABLE fct_ad_daily AS
        SELECT CAST(date AS DATE) AS date, campaign_id::INTEGER AS campaign_id, platform,
               CAST(spend AS DECIMAL(12, 2)) AS spend,
               NULLIF(impressions, -1) AS impressions, NULLIF(clicks, -1) AS clicks
        FROM ad_src ORDER BY date, campaign_id""")
    con.register("send_src", sends)
    con.execute("""
        CREATE TABLE fct_email_send AS
        SELECT row_number() OVER (ORDER BY send_date, campaign_id)::INTEGER AS send_id,
               campaign_id::INTEGER AS campaign_id, CAST(send_date AS DATE) AS send_date, sends, deliveries,
               hard_bounces, soft_bounces, unique_opens, unique_clicks, unsubscribes, spam_complaints
        FROM send_src ORDER BY send_id""")
    _leads(con, leads)
    con.register("touch_src", touches)
    con.execute(f"""
        CREATE TABLE fct_touchpoint AS
        SELECT row_number() OVER ()::BIGINT AS touchpoint_id, (t.lead_idx + 1)::INTEGER AS lead_id,
               NULLIF(t.campaign_id, 0)::INTEGER AS campaign_id,
               {_labels(co.CHANNELS)}[t.channel + 1] AS channel, t.type AS touch_type,
               {_ts("t.ts")} AS touched_at, l.region
        FROM touch_src t JOIN dim_lead l ON l.lead_id = t.lead_idx + 1""")
    con.register("opp_src", opps)
    con.execute(f"""
        CREATE TABLE fct_opportunity AS
        SELECT row_number() OVER (ORDER BY o.created_s, o.lead_idx)::INTEGER AS opportunity_id,
               (o.lead_idx + 1)::INTEGER AS lead_id, l.company_name AS account_name, l.region,
               l.source_channel, {_ts("o.created_s")} AS created_at, {_ts("o.closed_s")} AS closed_at,
               o.stage, CAST(o.amount AS DECIMAL(12, 2)) AS amount, o.won AS is_won
        FROM opp_src o JOIN dim_lead l ON l.lead_id = o.lead_idx + 1 ORDER BY opportunity_id""")
    con.execute("CREATE TABLE mops_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany("INSERT INTO mops_meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
    for name in ("ad_src", "send_src", "touch_src", "opp_src"):
        con.unregister(name)
    tables = ("dim_campaign", "fct_ad_daily", "fct_email_send", "dim_lead", "fct_touchpoint", "fct_opportunity")
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def _campaigns(con: duckdb.DuckDBPyConnection, plan: list[Campaign]) -> None:
    con.execute("""
        CREATE TABLE dim_campaign (
            campaign_id INTEGER PRIMARY KEY, campaign_name VARCHAR NOT NULL UNIQUE, program_type VARCHAR,
            channel VARCHAR, region VARCHAR, topic VARCHAR, platform VARCHAR, owner_name VARCHAR,
            owner_slack_id VARCHAR, start_date DATE, end_date DATE, event_date DATE, budget_usd DECIMAL(12, 2),
            audience_segment VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR,
            status VARCHAR)""")
    rows = []
    for c in plan:
        status = "completed" if c.end_date < co.END else "active"
        rows.append(
            (
                c.campaign_id,
                c.name,
                c.program_type,
                c.channel,
                c.region,
                c.topic,
                c.platform,
                c.owner_name,
                co.PEOPLE[c.owner_name],
                c.start_date,
                c.end_date,
                c.event_date,
                c.budget_usd,
                c.audience_segment,
                co.UTM_SOURCE[c.platform],
                co.UTM_MEDIUM[c.program_type],
                c.name.lower(),
                status,
            )
        )
    con.executemany(f"INSERT INTO dim_campaign VALUES ({', '.join('?' * 18)})", rows)


def _leads(con: duckdb.DuckDBPyConnection, leads: dict[str, np.ndarray]) -> None:
    n = len(leads["created_s"])
    titles = [TITLES[s] for s in co.SENIORITY]
    title = np.array([titles[s][i % 3] for i, s in enumerate(leads["seniority"])], dtype=object)
    companies = np.array([co.company_name(i) for i in range(4000)], dtype=object)
    src = {
        "email": leads["email"],
        "first_name": leads["first_name"],
        "last_name": leads["last_name"],
        "company_name": companies[leads["company_no"]],
        "employees": leads["employees"],
        "size": leads["size"],
        "industry": leads["industry"],
        "country": leads["country"],
        "region": leads["region"],
        "seniority": leads["seniority"],
        "title": title,
        "channel": leads["channel"],
        "campaign_id": leads["campaign_id"],
        "created_s": leads["created_s"],
        "mql_score": leads["mql_score"],
        "mql_s": leads["mql_s"],
        "sql_s": leads["sql_s"],
        "opp_s": leads["opp_s"],
        "stage": leads["stage"],
        "web_visits": leads["web_visits"],
        "email_clicks": leads["email_clicks"],
        "intent": leads["intent"],
        "webinar": leads["webinar"],
        "demo": leads["demo"],
        "personal": leads["personal"],
        "row": np.arange(n),
    }
    con.register("lead_src", src)
    con.execute(f"""
        CREATE TABLE dim_lead AS
        SELECT (row + 1)::INTEGER AS lead_id, email, first_name, last_name, company_name,
               employees::INTEGER AS employees, {_labels(co.COMPANY_SIZE_BANDS)}[size + 1] AS company_size_band,
               {_labels(co.INDUSTRIES)}[industry + 1] AS industry, country,
               {_labels(co.REGIONS)}[region + 1] AS region, {_labels(co.SENIORITY)}[seniority + 1] AS seniority,
               seniority::TINYINT AS seniority_level, title,
               {_labels(co.CHANNELS)}[channel + 1] AS source_channel,
               NULLIF(campaign_id, 0)::INTEGER AS source_campaign_id, {_ts("created_s")} AS created_at,
               mql_score::TINYINT AS mql_score, {_ts("mql_s")} AS mql_at, {_ts("sql_s")} AS sql_at,
               {_ts("opp_s")} AS opportunity_at, stage AS lifecycle_stage,
               web_visits::INTEGER AS web_visits_30d, email_clicks::INTEGER AS email_clicks_90d,
               intent::TINYINT AS intent_score, webinar AS webinar_attended, demo AS demo_request,
               personal AS is_personal_email
        FROM lead_src ORDER BY lead_id""")
    con.unregister("lead_src")
