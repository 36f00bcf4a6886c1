"""Deterministic demo warehouse generator: the same seed and scale always give the same rows.

Leads arise from campaigns' expected daily volumes (Poisson), spend from the same expectation times the true
cost per lead, and whether a lead becomes an opportunity from the documented logistic process in
demo/company.py. The injected incidents of docs/demo-company.md are applied on top.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np

from mopsbot.demo import company as co
from mopsbot.demo.campaigns import Campaign, expected_campaign_leads, plan_campaigns
from mopsbot.demo.tables import write_tables

DAY_S = 86400
Progress = Callable[[str], None]
STEPS = ("campaigns", "leads", "lifecycle", "touchpoints", "opportunities", "email sends", "writing warehouse")


@dataclass(frozen=True)
class SeedResult:
    path: Path
    rows: dict[str, int]
    seed: int
    scale: float


def _days() -> np.ndarray:
    return np.arange(np.datetime64(co.START), np.datetime64(co.END) + 1)


def _epoch(d: date) -> int:
    return int((np.datetime64(d, "s") - np.datetime64(0, "s")).astype(np.int64))


def _pick(rng: np.random.Generator, options: tuple | list, probs: tuple | list, n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(options), size=n, p=p / p.sum())


def generate(path: Path, seed: int = 7, scale: float = 1.0, progress: Progress | None = None) -> SeedResult:
    """Write the demo warehouse to `path` (a duckdb file, replaced atomically). Raises ValueError on bad scale."""
    if not scale > 0:
        raise ValueError("scale must be greater than 0")
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    days = _days()

    step("campaigns")
    plan = plan_campaigns(days)
    expected = expected_campaign_leads(plan, days) * scale
    ad = _ad_daily(plan, expected, days, rng)
    _set_budgets(plan, expected, scale)

    step("leads")
    leads = _leads(plan, expected, days, scale, rng)
    step("lifecycle")
    _lifecycle(leads, rng)
    step("touchpoints")
    touches = _touchpoints(plan, leads, rng)
    step("opportunities")
    opps = _opportunities(leads, rng)
    step("email sends")
    sends = _email_sends(plan, scale, rng)

    step("writing warehouse")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".duckdb", dir=path.parent)
    os.close(fd)
    Path(tmp).unlink()
    con = duckdb.connect(tmp)
    try:
        rows = write_tables(
            con,
            plan,
            ad,
            leads,
            touches,
            opps,
            sends,
            meta={"seed": seed, "scale": scale, "start_date": co.START, "end_date": co.END},
        )
    finally:
        con.close()
    Path(tmp).replace(path)
    return SeedResult(path, rows, seed, scale)


def _ad_daily(
    plan: list[Campaign], expected: np.ndarray, days: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Daily spend (and ad delivery on ad platforms) for every campaign that costs money."""
    ids, day_idx, spend = [], [], []
    spike_days = (days >= np.datetime64(co.CPL_SPIKE["from"])) & (days <= np.datetime64(co.CPL_SPIKE["until"]))
    for c in plan:
        if c.channel not in co.TRUE_CPL:
            continue
        d = np.nonzero(expected[c.campaign_id - 1] > 0)[0]
        s = expected[c.campaign_id - 1, d] * co.TRUE_CPL[c.channel][c.region] * rng.lognormal(0, 0.15, len(d))
        if c.name == co.CPL_SPIKE["campaign"]:
            s = np.where(spike_days[d], s * co.CPL_SPIKE["spend_factor"], s)
        ids.append(np.full(len(d), c.campaign_id))
        day_idx.append(d)
        spend.append(np.round(s, 2))
    cid, di, sp = np.concatenate(ids), np.concatenate(day_idx), np.concatenate(spend)
    platform = np.array([plan[i - 1].platform for i in cid], dtype=object)
    impressions = np.full(len(cid), -1, dtype=np.int64)  # -1 = not an ad platform (written as NULL)
    clicks = np.full(len(cid), -1, dtype=np.int64)
    for name, (cpm, ctr) in co.PLATFORM_CPM_CTR.items():
        sel = platform == name
        spike = np.array([plan[i - 1].name == co.CPL_SPIKE["campaign"] for i in cid[sel]]) & spike_days[di[sel]]
        # audience expansion buys cheap, broad impressions that rarely click
        eff_cpm = np.where(spike, cpm * 0.55, cpm) * rng.lognormal(0, 0.1, sel.sum())
        imp = np.round(sp[sel] / eff_cpm * 1000).astype(np.int64)
        impressions[sel] = imp
        clicks[sel] = rng.binomial(imp, np.where(spike, ctr * 0.35, ctr))
    return {
        "campaign_id": cid,
        "date": days[di].astype("datetime64[s]"),
        "platform": platform,
        "spend": sp,
        "impressions": impressions,
        "clicks": clicks,
    }


def _set_budgets(plan: list[Campaign], expected: np.ndarray, scale: float) -> None:
    for c in plan:
        if c.channel in co.TRUE_CPL:
            planned = expected[c.campaign_id - 1].sum() * co.TRUE_CPL[c.channel][c.region] * 1.05
            c.budget_usd = float(max(500, round(planned / 500) * 500))


def _leads(
    plan: list[Campaign], expected: np.ndarray, days: np.ndarray, scale: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    counts = rng.poisson(expected)
    camp_idx, day_idx = np.nonzero(counts)
    reps = counts[camp_idx, day_idx]
    campaign_id = np.repeat(camp_idx + 1, reps)
    day = np.repeat(day_idx, reps)
    chan_of = np.array([co.CHANNELS.index(c.channel) for c in plan])
    region_of = np.array([co.REGIONS.index(c.region) for c in plan])
    channel = chan_of[campaign_id - 1]
    region = region_of[campaign_id - 1]

    # leads with no campaign: organic search, direct, referral
    from mopsbot.demo.campaigns import base_daily_leads

    base = base_daily_leads(days) * scale
    extra_c, extra_r, extra_d = [], [], []
    for ch in ("organic_search", "direct", "referral"):
        for r, share in enumerate(co.REGION_SHARE):
            n = rng.poisson(base * co.SOURCE_SHARE[ch] * share)
            d = np.repeat(np.arange(len(days)), n)
            extra_c.append(np.full(len(d), co.CHANNELS.index(ch)))
            extra_r.append(np.full(len(d), r))
            extra_d.append(d)
    campaign_id = np.concatenate([campaign_id, np.zeros(sum(map(len, extra_d)), dtype=np.int64)])
    channel = np.concatenate([channel, *extra_c])
    region = np.concatenate([region, *extra_r])
    day = np.concatenate([day, *extra_d])

    n = len(day)
    created = _epoch(co.START) + day.astype(np.int64) * DAY_S + rng.integers(6 * 3600, 22 * 3600, n)
    order = np.argsort(created, kind="stable")
    leads = {
        "campaign_id": campaign_id[order],
        "channel": channel[order],
        "region": region[order],
        "created_s": created[order],
    }
    _firmographics(leads, rng)
    return _inject_duplicates(plan, leads, scale, rng)


def _inject_duplicates(
    plan: list[Campaign], leads: dict[str, np.ndarray], scale: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """INC-2026-006: an ON24 import re-created existing leads whose email differs only in letter case."""
    spec = co.DUPLICATE_IMPORT
    at = _epoch(spec["date"])
    pool = np.nonzero((leads["created_s"] < at) & ~leads["personal"])[0]
    n = min(len(pool), round(spec["leads_per_scale"] * scale))
    orig = np.sort(rng.choice(pool, size=n, replace=False))
    webinar = next(
        c
        for c in plan
        if c.program_type == "webinar"
        and c.region == "NA"
        and c.start_date.year == spec["date"].year
        and c.start_date.month == spec["date"].month
    )
    dup = {k: v[orig].copy() for k, v in leads.items()}
    dup["email"] = np.array([e.title() for e in dup["email"]], dtype=object)
    dup["created_s"] = at + 10 * 3600 + rng.integers(0, 3600, n)
    dup["campaign_id"] = np.full(n, webinar.campaign_id)
    dup["channel"] = np.full(n, co.CHANNELS.index("webinar"))
    dup["webinar"] = np.ones(n, dtype=bool)
    dup["duplicate_of"] = orig + 1
    merged = {k: np.concatenate([leads[k], dup[k]]) for k in leads}
    order = np.argsort(merged["created_s"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def _firmographics(leads: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    n = len(leads["created_s"])
    region, channel = leads["region"], leads["channel"]
    country = np.empty(n, dtype=object)
    for r, name in enumerate(co.REGIONS):
        sel = region == r
        codes, probs = zip(*co.COUNTRIES[name], strict=True)
        country[sel] = np.asarray(codes, dtype=object)[_pick(rng, codes, probs, sel.sum())]
    leads["country"] = country
    size = _pick(rng, co.COMPANY_SIZE_BANDS, co.COMPANY_SIZE_SHARE, n)
    lo, hi = np.array(co.COMPANY_SIZE_RANGE).T
    leads["size"] = size
    leads["employees"] = np.round(np.exp(rng.uniform(np.log(lo[size]), np.log(hi[size])))).astype(np.int64)
    leads["industry"] = _pick(rng, co.INDUSTRIES, (5, 3, 2, 1.5, 1.5, 1, 1, 1), n)
    leads["seniority"] = _pick(rng, co.SENIORITY, co.SENIORITY_SHARE, n)
    leads["company_no"] = rng.integers(0, 4000, n)
    name_of = np.array(co.CHANNELS)
    ch = name_of[channel]
    personal_p = np.select([ch == "organic_search", ch == "content_syndication"], [0.12, 0.04], 0.07)
    leads["personal"] = rng.random(n) < personal_p
    visits_mean = np.select([ch == "organic_search", ch == "direct"], [4.0, 5.0], 2.0)
    leads["web_visits"] = rng.poisson(visits_mean)
    leads["email_clicks"] = rng.poisson(1.2, n)
    leads["intent"] = np.round(rng.beta(2.2, 2.7, n) * 100).astype(np.int64)
    leads["webinar"] = rng.random(n) < np.where(ch == "webinar", 0.6, 0.10)
    demo_p = np.select([ch == "direct", ch == "paid_search", ch == "organic_search"], [0.15, 0.10, 0.08], 0.04)
    leads["demo"] = rng.random(n) < demo_p
    leads["duplicate_of"] = np.zeros(n, dtype=np.int64)
    first = np.asarray(co.FIRST_NAMES, dtype=object)[rng.integers(0, len(co.FIRST_NAMES), n)]
    last = np.asarray(co.LAST_NAMES, dtype=object)[rng.integers(0, len(co.LAST_NAMES), n)]
    domains = np.array([co.company_name(i).lower().replace(" ", "") + ".com" for i in range(4000)], dtype=object)
    personal_domains = np.array(["gmail.com", "outlook.com", "yahoo.com"], dtype=object)
    domain = np.where(leads["personal"], personal_domains[rng.integers(0, 3, n)], domains[leads["company_no"]])
    leads["first_name"], leads["last_name"] = first, last
    leads["email"] = np.array(
        [f"{f.lower()}.{la.lower()}{i}@{d}" for i, (f, la, d) in enumerate(zip(first, last, domain, strict=True))],
        dtype=object,
    )


def label_log_odds(leads: dict[str, np.ndarray]) -> np.ndarray:
    """The documented generating process for 'opportunity within 90 days' (see docs/demo-company.md)."""
    k = co.LABEL_COEF
    chan_effect = np.array([co.LABEL_CHANNEL_EFFECT[c] for c in co.CHANNELS])
    return (
        co.LABEL_INTERCEPT
        + k["seniority_level"] * leads["seniority"]
        + np.asarray(co.LABEL_SIZE_EFFECT)[leads["size"]]
        + k["log1p_web_visits_30d"] * np.log1p(leads["web_visits"])
        + k["email_clicks_90d"] * leads["email_clicks"]
        + k["webinar_attended"] * leads["webinar"]
        + k["demo_request"] * leads["demo"]
        + k["intent_centered"] * (leads["intent"] - 50)
        + chan_effect[leads["channel"]]
        + k["is_personal_email"] * leads["personal"]
    )


def _lifecycle(leads: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """MQL score, MQL/SQL/opportunity timestamps (seconds since epoch, -1 = never), current stage."""
    n = len(leads["created_s"])
    z = label_log_odds(leads)
    converts = rng.random(n) < 1 / (1 + np.exp(-z))
    converts &= leads["duplicate_of"] == 0
    score = (
        18
        + 7 * leads["seniority"]
        + 4 * leads["size"]
        + 7 * np.sqrt(leads["web_visits"])
        + 5 * leads["email_clicks"]
        + 15 * leads["webinar"]
        + 0.15 * leads["intent"]
        + 10 * converts
        + rng.normal(0, 8, n)
    )
    leads["mql_score"] = np.clip(np.round(score), 0, 100).astype(np.int64)
    is_mql = (leads["mql_score"] >= co.MQL_THRESHOLD) | leads["demo"]
    created = leads["created_s"]
    day = DAY_S
    opp = np.where(converts, created + (rng.uniform(5, co.HORIZON_DAYS - 2, n) * day).astype(np.int64), -1)
    mql_delay = np.where(leads["demo"], rng.exponential(3 * 3600, n), rng.exponential(7 * day, n))
    mql = np.where(is_mql, created + mql_delay.astype(np.int64), -1)
    mql = np.where(is_mql & converts, created + ((opp - created) * rng.uniform(0.05, 0.4, n)).astype(np.int64), mql)
    sql_other = is_mql & ~converts & (rng.random(n) < 0.30)
    sql = np.where(sql_other, mql + rng.exponential(3 * day, n).astype(np.int64), -1)
    sql = np.where(is_mql & converts, mql + ((opp - mql) * rng.uniform(0.3, 0.8, n)).astype(np.int64), sql)
    end = _epoch(co.END) + DAY_S - 1
    for name, ts in (("mql_s", mql), ("sql_s", sql), ("opp_s", opp)):
        leads[name] = np.where(ts > end, -1, ts)
    recent = leads["mql_s"] > end - 30 * day
    stage = np.full(n, "lead", dtype=object)
    stage[(leads["mql_s"] >= 0) & ~recent] = "recycled"
    stage[(leads["mql_s"] >= 0) & recent] = "mql"
    stage[leads["sql_s"] >= 0] = "sql"
    stage[leads["opp_s"] >= 0] = "opportunity"
    leads["stage"] = stage


def _touchpoints(plan: list[Campaign], leads: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """First touch = the lead's source; later touches spread over the following months."""
    from mopsbot.demo.touches import later_touches

    first = {
        "lead_idx": np.arange(len(leads["created_s"])),
        "channel": leads["channel"],
        "campaign_id": leads["campaign_id"],
        "ts": leads["created_s"],
        "type": np.array([co.TOUCH_TYPE[c] for c in co.CHANNELS], dtype=object)[leads["channel"]],
    }
    return later_touches(plan, leads, first, rng, end_s=_epoch(co.END) + DAY_S - 1)


def _opportunities(leads: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    idx = np.nonzero(leads["opp_s"] >= 0)[0]
    n = len(idx)
    size = leads["size"][idx]
    amount = np.round(np.asarray(co.OPPORTUNITY_MEDIAN_USD)[size] * rng.lognormal(0, 0.5, n), -2)
    created = leads["opp_s"][idx]
    close = created + (rng.uniform(20, 150, n) * DAY_S).astype(np.int64)
    end = _epoch(co.END) + DAY_S - 1
    closed = close <= end
    won = closed & (rng.random(n) < 0.27 + 0.10 * leads["demo"][idx])
    age_days = (end - created) / DAY_S
    open_stage = np.select(
        [age_days < 20, age_days < 45, age_days < 75], ["discovery", "evaluation", "proposal"], "negotiation"
    ).astype(object)
    stage = np.where(closed, np.where(won, "closed_won", "closed_lost"), open_stage)
    leads["stage"][idx[won]] = "customer"
    return {
        "lead_idx": idx,
        "created_s": created,
        "closed_s": np.where(closed, close, -1),
        "amount": amount,
        "stage": stage,
        "won": won,
    }


def _email_sends(plan: list[Campaign], scale: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from mopsbot.demo.touches import email_sends

    return email_sends(plan, scale, rng)


def add_days(d: date, n: int) -> date:
    return d + timedelta(days=n)
