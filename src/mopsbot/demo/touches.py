"""Later marketing touches of each lead, and the email sends of email and nurture programs."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from mopsbot.demo import company as co
from mopsbot.demo.campaigns import Campaign

DAY_S = 86400


def _month_index(ts: np.ndarray) -> np.ndarray:
    months = ts.astype("datetime64[s]").astype("datetime64[M]")
    return (months - np.datetime64(co.START, "M")).astype(np.int64)


def _campaign_lookup(plan: list[Campaign], n_months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat index of active campaigns per (channel, region, month): (flat ids, start offsets, counts)."""
    keys: dict[tuple[int, int, int], list[int]] = {}
    for c in plan:
        ch, r = co.CHANNELS.index(c.channel), co.REGIONS.index(c.region)
        m0 = (c.start_date.year - co.START.year) * 12 + c.start_date.month - co.START.month
        m1 = (c.end_date.year - co.START.year) * 12 + c.end_date.month - co.START.month
        for m in range(max(m0, 0), min(m1, n_months - 1) + 1):
            keys.setdefault((ch, r, m), []).append(c.campaign_id)
    shape = (len(co.CHANNELS), len(co.REGIONS), n_months)
    start, count = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    flat: list[int] = []
    for (ch, r, m), ids in sorted(keys.items()):
        start[ch, r, m], count[ch, r, m] = len(flat), len(ids)
        flat.extend(ids)
    return np.asarray(flat, dtype=np.int64), start, count


def later_touches(
    plan: list[Campaign],
    leads: dict[str, np.ndarray],
    first: dict[str, np.ndarray],
    rng: np.random.Generator,
    end_s: int,
) -> dict[str, np.ndarray]:
    """Touches after the first: more for engaged and converting leads; webinar attendees get an attend touch."""
    n = len(leads["created_s"])
    converts = leads["opp_s"] >= 0
    k = rng.poisson(5.0 + 3.0 * converts + 0.5 * leads["email_clicks"])
    lead_idx = np.repeat(np.arange(n), k)
    created = leads["created_s"][lead_idx]
    gap = rng.exponential(30 * DAY_S, len(lead_idx)).astype(np.int64)
    opp = leads["opp_s"][lead_idx]
    # touches of converting leads cluster before the opportunity is created
    ts = np.where(
        opp >= 0, created + (rng.random(len(lead_idx)) * (opp - created + 15 * DAY_S)).astype(np.int64), created + gap
    )
    channel = rng.choice(
        len(co.CHANNELS),
        size=len(lead_idx),
        p=np.array([co.TOUCH_SHARE[c] for c in co.CHANNELS]) / sum(co.TOUCH_SHARE.values()),
    )
    ttype = np.array([co.TOUCH_TYPE[c] for c in co.CHANNELS], dtype=object)[channel]

    # webinar attendance and demo requests are touches too
    att = np.nonzero(leads["webinar"])[0]
    att_ts = leads["created_s"][att] + np.where(
        leads["channel"][att] == co.CHANNELS.index("webinar"),
        rng.integers(1, 14, len(att)) * DAY_S,
        rng.integers(3, 60, len(att)) * DAY_S,
    )
    demo = np.nonzero(leads["demo"])[0]
    demo_ts = np.where(leads["mql_s"][demo] >= 0, leads["mql_s"][demo], leads["created_s"][demo])
    lead_idx = np.concatenate([lead_idx, att, demo])
    ts = np.concatenate([ts, att_ts, demo_ts])
    channel = np.concatenate(
        [channel, np.full(len(att), co.CHANNELS.index("webinar")), np.full(len(demo), co.CHANNELS.index("direct"))]
    )
    ttype = np.concatenate(
        [ttype, np.full(len(att), "webinar_attend", dtype=object), np.full(len(demo), "demo_request", dtype=object)]
    )

    n_months = _month_index(np.array([end_s]))[0] + 1
    flat, start, count = _campaign_lookup(plan, int(n_months))
    keep = ts <= end_s
    lead_idx, ts, channel, ttype = lead_idx[keep], ts[keep], channel[keep], ttype[keep]
    month = _month_index(ts)
    region = leads["region"][lead_idx]
    cnt = count[channel, region, month]
    pick = start[channel, region, month] + (rng.random(len(ts)) * np.maximum(cnt, 1)).astype(np.int64)
    campaign_id = np.where(cnt > 0, flat[np.minimum(pick, len(flat) - 1)], 0)

    out = {
        k: np.concatenate([first[k], v])
        for k, v in (
            ("lead_idx", lead_idx),
            ("channel", channel),
            ("campaign_id", campaign_id),
            ("ts", ts),
            ("type", ttype),
        )
    }
    order = np.lexsort((out["lead_idx"], out["ts"]))
    return {k: v[order] for k, v in out.items()}


def _send_dates(c: Campaign) -> list[date]:
    end = min(c.end_date, co.END)
    out, d = [], c.start_date
    if c.program_type == "nurture":  # weekly, Tuesdays
        d += timedelta(days=(1 - d.weekday()) % 7)
        while d <= end:
            out.append(d)
            d += timedelta(days=7)
        return out
    day = 10 if c.topic == "Newsletter" else 16
    while d <= end:
        send = date(d.year, d.month, day)
        if c.topic == "Newsletter":  # newsletters go out on the first weekday on or after the 10th
            send += timedelta(days=max(0, 7 - send.weekday()) if send.weekday() >= 5 else 0)
        if c.start_date <= send <= end:
            out.append(send)
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def email_sends(plan: list[Campaign], scale: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per send with delivery and engagement counts drawn from realistic rates."""
    rows: list[tuple[int, date]] = [(c.campaign_id, d) for c in plan if c.channel == "email" for d in _send_dates(c)]
    cid = np.array([r[0] for r in rows], dtype=np.int64)
    day = np.array([np.datetime64(r[1]) for r in rows])
    camp = [plan[i - 1] for i in cid]
    months = (day.astype("datetime64[M]") - np.datetime64(co.START, "M")).astype(int)
    list_size = np.array([co.EMAIL_LIST_SIZE[c.region] for c in camp]) * (1.012**months) * scale
    share = np.array(
        [0.06 if c.program_type == "nurture" else 0.6 if c.topic == "Product-Update" else 1.0 for c in camp]
    )
    sends = np.round(list_size * share * rng.uniform(0.97, 1.03, len(cid))).astype(np.int64)
    hard_p = np.clip(rng.normal(0.005, 0.0012, len(cid)), 0.001, None)
    spam_p = np.full(len(cid), 0.00015)
    unsub_p = np.where(share < 0.1, 0.0035, 0.0018)
    spike = np.array([c.name == co.BOUNCE_SPIKE["campaign"] for c in camp]) & (
        day == np.datetime64(co.BOUNCE_SPIKE["date"])
    )
    hard_p = np.where(spike, co.BOUNCE_SPIKE["hard_bounce_rate"], hard_p)
    spam_p = np.where(spike, co.BOUNCE_SPIKE["spam_rate"], spam_p)
    unsub_p = np.where(spike, co.BOUNCE_SPIKE["unsubscribe_rate"], unsub_p)
    hard = rng.binomial(sends, hard_p)
    soft = rng.binomial(sends - hard, 0.009)
    delivered = sends - hard - soft
    opens = rng.binomial(delivered, np.where(share < 0.1, 0.31, 0.24))
    clicks = rng.binomial(opens, np.where(share < 0.1, 0.16, 0.13))
    return {
        "campaign_id": cid,
        "send_date": day.astype("datetime64[s]"),
        "sends": sends,
        "deliveries": delivered,
        "hard_bounces": hard,
        "soft_bounces": soft,
        "unique_opens": opens,
        "unique_clicks": clicks,
        "unsubscribes": rng.binomial(delivered, unsub_p),
        "spam_complaints": rng.binomial(delivered, spam_p),
    }
