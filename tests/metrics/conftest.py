"""The metrics engine over the seeded demo warehouse, a read-only connection for hand-written SQL, the attribution
SOP's W-shaped rules written independently of the engine, and a tiny warehouse holding the SOP's worked example
(plus edge cases of its rules) for exact-number checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mopsbot.metrics.engine import MetricsEngine, connect_read_only

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "tools" / "metrics.yaml"
TODAY = date(2026, 11, 16)


@pytest.fixture(scope="session")
def engine(warehouse: Path) -> Iterator[MetricsEngine]:
    e = MetricsEngine(CATALOG, warehouse, today=TODAY)
    yield e
    e.close()


@pytest.fixture(scope="session")
def con(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only, with the engine's settings: duckdb refuses a second connection to a file with other settings."""
    c = connect_read_only(warehouse)
    yield c
    c.close()


# --- the attribution SOP's rules, written from sop-attribution-methodology independently of the engine ----------

# sop-attribution-methodology, "Which touches count"
COUNTED = ("ad_click", "webinar_registration", "webinar_attend", "event_visit", "content_download", "email_click",
           "web_visit", "demo_request")  # fmt: skip
NO_TOUCH = "No marketing touch"


def w_shaped(touches: list[tuple[datetime, int, str]], lead_created_at: datetime) -> list[tuple[str, float]]:
    """The SOP's W-shaped rules over one opportunity's counted touches in the window: (channel, share)."""
    touches = sorted(touches)
    n = len(touches)
    share = [0.0] * n
    creation = next((i for i, t in enumerate(touches) if t[0] == lead_created_at), 0)  # rule 2: else the first
    for role in (0, creation, n - 1):  # rules 1-3 and 5: a touch holding several roles sums their weights
        share[role] += 0.3
    keys = {0, creation, n - 1}
    rest = [i for i in range(n) if i not in keys] or sorted(keys)  # rule 4; rule 5 without other touches
    for i in rest:
        share[i] += 0.1 / len(rest)
    return [(t[2], w) for t, w in zip(touches, share, strict=True)]


_CREDITS: dict[tuple[int, str, date, date], list[tuple[Any, str, str, float]]] = {}


def w_shaped_credits(
    con: duckdb.DuckDBPyConnection, dated_by: str, s: date, e: date, won: bool = False
) -> list[tuple[Any, str, str, float]]:
    """(day, channel, region, amount credited) for the opportunities whose `dated_by` is in the period."""
    key = (id(con), dated_by + (" won" if won else ""), s, e)
    if key not in _CREDITS:
        rows = con.execute(
            f"""SELECT o.opportunity_id, o.amount, o.region, o.{dated_by}, l.created_at, t.touched_at,
                       t.touchpoint_id, t.channel
                FROM fct_opportunity o JOIN dim_lead l ON l.lead_id = o.lead_id
                LEFT JOIN fct_touchpoint t ON t.lead_id = o.lead_id AND t.touch_type IN {COUNTED}
                     AND t.touched_at >= o.created_at - INTERVAL 90 DAY AND t.touched_at <= o.created_at
                WHERE o.{dated_by} >= $start AND o.{dated_by} < $stop AND (o.is_won OR NOT $won)""",
            {"start": s, "stop": e + timedelta(days=1), "won": won},
        ).fetchall()
        opps: dict[int, dict[str, Any]] = {}
        for opp, amount, region, day, created, touched, tid, channel in rows:
            o = opps.setdefault(opp, {"amount": float(amount), "region": region, "day": day, "lead": created, "t": []})
            if touched is not None:
                o["t"].append((touched, tid, channel))
        out = []
        for o in opps.values():
            shares = w_shaped(o["t"], o["lead"]) if o["t"] else [(NO_TOUCH, 1.0)]
            out += [(o["day"], ch, o["region"], o["amount"] * w) for ch, w in shares]
        _CREDITS[key] = out
    return _CREDITS[key]


# --- a tiny warehouse: the SOP's worked example and edge cases of its rules (all in EMEA) ------------------------


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# campaign_id, campaign_name, channel
CAMPAIGNS = [(1, "LinkedIn ABM", "paid_social"), (2, "Webinar: Q2 launch", "webinar"), (3, "Nurture", "email"),
             (4, "Search brand", "paid_search"), (5, "Summit booth", "events")]  # fmt: skip
# lead_id, source_channel, source_campaign_id, created_at, opportunity_at
LEADS = [
    (1, "paid_social", 1, "2026-03-15 09:00", "2026-05-20 12:00"),  # the SOP example
    (2, "organic_search", None, "2026-01-05 08:00", "2026-06-20 12:00"),  # created before the lookback window
    (3, "events", 5, "2026-07-01 10:00", "2026-07-10 12:00"),  # one touch; won
    (4, "organic_search", None, "2025-12-01 08:00", "2026-08-03 12:00"),  # no counted touch in the window
    (5, "organic_search", None, "2026-01-10 00:00", "2026-04-10 00:00"),  # opportunity exactly 90 days later
    (6, "organic_search", None, "2026-01-20 00:00", "2026-04-20 00:00:01"),  # 90 days and a second later
]
# touchpoint_id, lead_id, campaign_id, channel, touch_type, touched_at
TOUCHES = [
    (1, 1, 1, "paid_social", "ad_click", "2026-03-02 10:00"),
    (2, 1, 2, "webinar", "webinar_registration", "2026-03-15 09:00"),  # created the lead
    (3, 1, 3, "email", "email_click", "2026-04-10 16:00"),
    (4, 1, None, "organic_search", "demo_request", "2026-05-12 14:00"),
    (5, 2, None, "organic_search", "web_visit", "2026-01-05 08:00"),  # created the lead, outside the window
    (6, 2, 4, "paid_search", "ad_click", "2026-04-01 10:00"),
    (7, 2, 3, "email", "email_click", "2026-05-10 10:00"),
    (8, 2, 2, "webinar", "webinar_attend", "2026-06-01 10:00"),
    (9, 2, 3, "email", "email_open", "2026-06-02 10:00"),  # not a counted touch type
    (10, 2, None, "organic_search", "demo_request", "2026-06-15 10:00"),
    (11, 2, 5, "events", "event_visit", "2026-06-25 10:00"),  # after the opportunity was created
    (12, 3, 5, "events", "event_visit", "2026-07-01 10:00"),
    (13, 4, None, "organic_search", "web_visit", "2025-12-01 08:00"),
]
# opportunity_id, lead_id, amount, stage, closed_at
OPPORTUNITIES = [(1, 1, 36_000, "discovery", None), (2, 2, 50_000, "proposal", None),
                 (3, 3, 20_000, "closed_won", "2026-09-15 12:00"), (4, 4, 10_000, "evaluation", None)]  # fmt: skip


@pytest.fixture(scope="session")
def sop_warehouse(tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection) -> Path:
    """A warehouse with the demo schema and only the rows above (all in EMEA)."""
    path = tmp_path_factory.mktemp("sop") / "sop.duckdb"
    schema: dict[str, list[str]] = {}
    columns = "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY ordinal_position"
    for table, column, kind in con.execute(columns).fetchall():
        schema.setdefault(table, []).append(f'"{column}" {kind}')
    w = duckdb.connect(str(path))
    for table, cols in schema.items():
        w.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
    w.executemany(
        "INSERT INTO dim_campaign (campaign_id, campaign_name, channel, region, start_date) "
        "VALUES (?, ?, ?, 'EMEA', DATE '2025-06-01')",
        CAMPAIGNS,
    )
    w.executemany(
        "INSERT INTO dim_lead (lead_id, email, region, source_channel, source_campaign_id, created_at, opportunity_at) "
        "VALUES (?, 'lead' || ? || '@example.com', 'EMEA', ?, ?, ?, ?)",
        [(i, i, ch, c, ts(a), ts(b)) for i, ch, c, a, b in LEADS],
    )
    w.executemany(
        "INSERT INTO fct_touchpoint VALUES (?, ?, ?, ?, ?, ?, 'EMEA')",
        [(*row[:5], ts(row[5])) for row in TOUCHES],
    )
    leads = {lead[0]: lead for lead in LEADS}
    w.executemany(
        "INSERT INTO fct_opportunity (opportunity_id, lead_id, region, source_channel, created_at, closed_at, stage, "
        "amount, is_won) VALUES (?, ?, 'EMEA', ?, ?, ?, ?, ?, ?)",
        [
            (o, lead, leads[lead][1], ts(leads[lead][4]), closed and ts(closed), stage, amount, stage == "closed_won")
            for o, lead, amount, stage, closed in OPPORTUNITIES
        ],
    )
    w.close()
    return path


@pytest.fixture(scope="session")
def sop_engine(sop_warehouse: Path) -> Iterator[MetricsEngine]:
    e = MetricsEngine(CATALOG, sop_warehouse, today=TODAY)
    yield e
    e.close()


@pytest.fixture(scope="session")
def sop_con(sop_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect_read_only(sop_warehouse)
    yield c
    c.close()
