"""The demo campaign plan and each campaign's expected daily leads and spend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from mopsbot.demo import company as co


@dataclass
class Campaign:
    campaign_id: int
    name: str
    program_type: str
    channel: str
    region: str
    topic: str
    platform: str
    owner_name: str
    start_date: date
    end_date: date
    event_date: date | None = None  # webinars and events happen on one day
    audience_segment: str = ""
    budget_usd: float = 0.0
    profile: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # relative daily weight


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def campaign_name(program_type: str, start: date, topic: str, region: str) -> str:
    """The naming convention of tools/campaign_policy.yaml: <year>-Q<q>_<CODE>_<Topic>_<REGION>."""
    code = co.PROGRAM_TYPES[program_type][0]
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}_{code}_{topic}_{region}"


def _weekday_on_or_after(d: date, weekday: int) -> date:
    return d + timedelta(days=(weekday - d.weekday()) % 7)


def plan_campaigns(days: np.ndarray) -> list[Campaign]:
    """All campaigns of the demo period, deterministic (no randomness: the plan is the company's calendar)."""
    first, last = co.START, co.END
    plan: list[Campaign] = []

    def add(
        ptype: str, region: str, topic: str, platform: str, start: date, end: date, event_date: date | None = None
    ) -> None:
        channel = co.PROGRAM_TYPES[ptype][1]
        owner = co.PROGRAM_OWNER.get(ptype, co.REGION_OWNER[region])
        segment = f"{region.lower()}-{'customers-prospects' if channel == 'email' else 'prospects'}"
        if channel == "email" and region == "EMEA":
            segment += "-consented"
        plan.append(
            Campaign(
                len(plan) + 1,
                campaign_name(ptype, start, topic, region),
                ptype,
                channel,
                region,
                topic,
                platform,
                owner,
                start,
                end,
                event_date,
                segment,
            )
        )

    q = quarter_start(first)
    qi = 0
    while q <= last:
        q_end = add_months(q, 3) - timedelta(days=1)
        for region in co.REGIONS:
            for ptype, items in co.QUARTERLY_PROGRAMS.items():
                for topic, platform in items:
                    if ptype == "event":
                        topic = co.EVENT_TOPICS[(qi + co.REGIONS.index(region)) % len(co.EVENT_TOPICS)]
                        ev = _weekday_on_or_after(add_months(q, 1) + timedelta(days=14), 2)  # mid-quarter Wed
                        add(ptype, region, topic, platform, q, q_end, ev)
                    else:
                        add(ptype, region, topic, platform, q, q_end)
        q, qi = add_months(q, 3), qi + 1

    m, mi = date(first.year, first.month, 1), 0
    while m <= last:
        m_end = add_months(m, 1) - timedelta(days=1)
        for region in co.REGIONS:
            per_month = 2 if region == "NA" else 1
            for k in range(per_month):
                topic = co.WEBINAR_TOPICS[(mi * 2 + k + co.REGIONS.index(region)) % len(co.WEBINAR_TOPICS)]
                ev = _weekday_on_or_after(m + timedelta(days=12 + 7 * k), 3)  # a Thursday
                add("webinar", region, topic, "on24", m, m_end, ev)
        m, mi = add_months(m, 1), mi + 1

    for year in range(first.year, last.year + 1):
        for region in co.REGIONS:
            add("nurture", region, "Onboarding-Nurture", "marketo", date(year, 1, 1), date(year, 12, 31))

    for c in plan:
        c.profile = _profile(c, days)
    return plan


def _profile(c: Campaign, days: np.ndarray) -> np.ndarray:
    """Relative daily weight of lead creation across the demo days (0 outside the campaign)."""
    active = (days >= np.datetime64(c.start_date)) & (days <= np.datetime64(c.end_date))
    if c.event_date is None:
        return active.astype(float)
    offset = (days - np.datetime64(c.event_date)).astype(int)
    if c.program_type == "webinar":  # registrations build over the two weeks before the live date
        w = np.where((offset >= -14) & (offset <= 0), 1.0 + (offset + 14) / 7.0, 0.0)
    else:  # events: scans at the booth on the day and the day after, some pre-registration
        w = np.select([offset == 0, offset == 1, (offset >= -21) & (offset < 0)], [10.0, 4.0, 0.3], 0.0)
    return w * active


def base_daily_leads(days: np.ndarray) -> np.ndarray:
    """Company-wide expected new leads per day at scale 1: seasonality, growth and weekday shape."""
    months = days.astype("datetime64[M]")
    month_idx = (months - np.datetime64(co.START, "M")).astype(int)
    month_of_year = months.astype(int) % 12
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday -> 0 = Monday
    shape = np.where(weekday < 5, 1.0, 0.35)
    days_in_month = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(int)
    weekday_norm = np.zeros(len(days))
    for m in np.unique(month_idx):  # normalize the weekday shape so each month keeps its monthly total
        sel = month_idx == m
        weekday_norm[sel] = shape[sel] / shape[sel].mean()
    season = np.asarray(co.SEASONALITY)[month_of_year] * (1 + co.GROWTH_PER_MONTH) ** month_idx
    return co.LEADS_PER_MONTH * season / days_in_month * weekday_norm


def expected_campaign_leads(plan: list[Campaign], days: np.ndarray) -> np.ndarray:
    """Expected leads per (campaign, day) at scale 1: each (channel, region, month) total split by profile."""
    base = base_daily_leads(days)
    months = days.astype("datetime64[M]")
    out = np.zeros((len(plan), len(days)))
    for channel in co.CAMPAIGN_CHANNELS:
        for r, region in enumerate(co.REGIONS):
            target = base * co.SOURCE_SHARE[channel] * co.REGION_SHARE[r]
            members = [c for c in plan if c.channel == channel and c.region == region]
            if channel == "email":  # nurture is not a lead source; newsletters and updates are
                members = [c for c in members if c.program_type == "email"]
            prof = np.array([c.profile for c in members])
            for m in np.unique(months):
                sel = months == m
                total = prof[:, sel].sum()
                if total > 0:
                    share = prof[:, sel] / total
                    for i, c in enumerate(members):
                        out[c.campaign_id - 1, sel] = share[i] * target[sel].sum()
    return out
