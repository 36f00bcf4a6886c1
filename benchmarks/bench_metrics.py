"""Metrics engine benchmark: five typical questions, mopsbot end to end against hand-written duckdb SQL.

    .venv/bin/python benchmarks/bench_metrics.py [--scale 25] [--warehouse PATH] [--repeat 15]

mopsbot = parse (fill_metric_query + MetricQuery) -> compile (engine.query minus its SQL runs: resolve, SQL
building, result assembly) -> execute (the engine's SQL runs, fetch included) -> format (to_dict, the planner's
answer text, the Slack table). The hand-written SQL runs on the same read-only connection, interleaved; both are
checked to give the same numbers first. Chart and terminal (rich) table are timed apart. Goal: p50 ratio <= 1.3x.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import time
from datetime import date
from pathlib import Path

import duckdb
from rich.console import Console

from mopsbot.agent.backend import ToolOutcome
from mopsbot.agent.local.metrics import compose_metrics, fill_metric_query
from mopsbot.demo.generator import generate
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.present import render_chart, rich_table, slack_table
from mopsbot.metrics.query import MetricQuery

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.3
MIN_TOUCHPOINTS = 10_000_000
TODAY = date(2026, 11, 16)

CPL = """
WITH spend AS (
    SELECT c.channel, sum(a.spend) FILTER (a.date >= DATE '2026-07-01') AS now,
           sum(a.spend) FILTER (a.date < DATE '2026-07-01') AS before
    FROM fct_ad_daily a JOIN dim_campaign c USING (campaign_id)
    WHERE a.date >= DATE '2026-04-01' AND a.date < DATE '2026-10-01' GROUP BY 1
), leads AS (
    SELECT c.channel, count(*) FILTER (l.created_at >= DATE '2026-07-01') AS now,
           count(*) FILTER (l.created_at < DATE '2026-07-01') AS before
    FROM dim_lead l JOIN dim_campaign c ON c.campaign_id = l.source_campaign_id
    WHERE l.created_at >= DATE '2026-04-01' AND l.created_at < DATE '2026-10-01' GROUP BY 1
), cpl AS (
    SELECT channel, s.now / nullif(l.now, 0) AS cpl,  -- no spend rows (email campaigns): empty, not $0
           s.before / nullif(l.before, 0) AS cpl_previous
    FROM spend s FULL JOIN leads l USING (channel) WHERE s.now IS NOT NULL OR l.now > 0
)
SELECT *, (cpl - cpl_previous) / nullif(abs(cpl_previous), 0) AS cpl_change FROM cpl
ORDER BY cpl DESC NULLS LAST, channel"""

W_SHAPED = """
WITH opp AS (
    SELECT o.opportunity_id, o.lead_id, o.amount, o.created_at, l.created_at AS lead_created_at
    FROM fct_opportunity o JOIN dim_lead l USING (lead_id)
    WHERE o.created_at >= DATE '2026-07-01' AND o.created_at < DATE '2026-10-01'
), touch AS (
    SELECT p.opportunity_id, p.amount, t.channel, t.touched_at = p.lead_created_at AS at_creation,
           row_number() OVER (PARTITION BY p.opportunity_id ORDER BY t.touched_at, t.touchpoint_id) AS rn,
           count(*) OVER (PARTITION BY p.opportunity_id) AS n
    FROM opp p JOIN fct_touchpoint t ON t.lead_id = p.lead_id
     AND t.touched_at BETWEEN p.created_at - INTERVAL 90 DAY AND p.created_at
    WHERE t.touch_type IN ('ad_click', 'webinar_registration', 'webinar_attend', 'event_visit', 'content_download',
                           'email_click', 'web_visit', 'demo_request')
), role AS (  -- lc: the lead-creation touch, else the first touch takes its 30%
    SELECT *, coalesce(min(rn) FILTER (at_creation) OVER (PARTITION BY opportunity_id), 1) AS lc FROM touch
), credit AS (
    SELECT channel, amount, rn IN (1, lc, n) AS is_key, n, 1 + (lc <> 1)::INT + (n NOT IN (1, lc))::INT AS keys,
           0.3 * ((rn = 1)::INT + (rn = lc)::INT + (rn = n)::INT) AS key_credit FROM role
)
SELECT channel, sum(amount * (key_credit + CASE WHEN n > keys THEN (NOT is_key)::INT * 0.1 / (n - keys)
                                                ELSE is_key::INT * 0.1 / keys END)) AS pipeline
FROM credit GROUP BY 1
UNION ALL
SELECT 'No marketing touch', sum(amount) FROM opp ANTI JOIN touch USING (opportunity_id) GROUP BY 1
ORDER BY 2 DESC NULLS LAST, 1"""

LEADS = """
SELECT date_trunc('month', created_at)::DATE AS month, region, count(*) AS leads FROM dim_lead
WHERE created_at >= DATE '2026-01-01' AND created_at < DATE '2027-01-01'
GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"""

BOUNCES = """
SELECT send_date, sum(hard_bounces) / sum(sends) AS hard_bounce_rate FROM fct_email_send
WHERE send_date >= DATE '2026-09-01' AND send_date <= DATE '2026-11-16' GROUP BY 1 ORDER BY 1"""

TOP_SPEND = """
SELECT c.campaign_name, sum(a.spend) AS spend FROM fct_ad_daily a JOIN dim_campaign c USING (campaign_id)
WHERE a.date >= DATE '2026-10-01' AND a.date < DATE '2026-11-01' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"""

# (question, the MetricQuery arguments it must parse to, hand-written SQL, number of key columns)
QUESTIONS = [
    ("CPL by channel last quarter vs the quarter before",
     {"metrics": ["cpl"], "dimensions": ["channel"], "period": "last quarter", "compare_to": "previous_period"},
     CPL, 1),
    ("pipeline by channel, W-shaped, last quarter",
     {"metrics": ["attributed_pipeline"], "dimensions": ["channel"], "period": "last quarter",
      "attribution": "w_shaped"}, W_SHAPED, 1),
    ("monthly leads by region in 2026",
     {"metrics": ["leads"], "dimensions": ["region"], "grain": "month", "period": "2026"}, LEADS, 2),
    ("what's the hard bounce rate by day since September?",
     {"metrics": ["hard_bounce_rate"], "grain": "day", "period": "since September"}, BOUNCES, 1),
    ("top 5 campaigns by spend last month",
     {"metrics": ["spend"], "dimensions": ["campaign"], "period": "last month", "order_by": "-spend", "limit": 5},
     TOP_SPEND, 1),
]  # fmt: skip
TABLES = ("fct_touchpoint", "dim_lead", "fct_opportunity", "fct_ad_daily", "fct_email_send", "dim_campaign")


def warehouse(args: argparse.Namespace) -> Path:
    """The --warehouse file, or the cached generated one (regenerated when missing or too small)."""
    if args.warehouse:
        return args.warehouse
    path = REPO / "var" / "bench" / f"warehouse-scale{args.scale:g}.duckdb"
    if path.exists():
        with duckdb.connect(str(path), read_only=True) as con:
            touches = con.execute("SELECT count(*) FROM fct_touchpoint").fetchone()[0]
        if touches >= MIN_TOUCHPOINTS or args.scale < 25:
            return path
    print(f"generating {path} at scale {args.scale:g} (a few minutes) ...", flush=True)
    return generate(path, scale=args.scale).path


class Mopsbot:
    """One question through the pipeline, with the time spent in each stage."""

    def __init__(self, engine: MetricsEngine) -> None:
        self.engine = engine
        self.sql_s = 0.0
        run = engine._run  # the engine's SQL execution, wrapped to split compile from execute

        def timed_run(compiled):
            start = time.perf_counter()
            rows = run(compiled)
            self.sql_s += time.perf_counter() - start
            return rows

        engine._run = timed_run  # type: ignore[method-assign]

    def ask(self, question: str) -> tuple[dict[str, float], dict, list[tuple]]:
        t0 = time.perf_counter()
        args = fill_metric_query(self.engine.catalog, question, None)
        if isinstance(args, str):
            raise SystemExit(f"{question!r} did not parse: {args}")
        query = MetricQuery.model_validate(args)
        t1 = time.perf_counter()
        self.sql_s = 0.0
        result = self.engine.query(query)
        t2 = time.perf_counter()
        data = result.to_dict()
        compose_metrics(question, ToolOutcome("query_metrics", True, "", data), None)  # type: ignore[arg-type]
        slack_table(data)
        t3 = time.perf_counter()
        compile_s = t2 - t1 - self.sql_s
        stages = {"parse": t1 - t0, "compile": compile_s, "execute": self.sql_s, "format": t3 - t2, "total": t3 - t0}
        return stages, data, [tuple(r[c] for c in result.columns) for r in result.rows]


def hand(engine: MetricsEngine, sql: str) -> tuple[float, list[tuple]]:
    start = time.perf_counter()
    with engine.cursor() as cur:
        rows = cur.execute(sql).fetchall()
    return time.perf_counter() - start, rows


def check_same(question: str, ours: list[tuple], theirs: list[tuple], n_keys: int) -> None:
    """Same keys and the same numbers (relative tolerance 1e-9); raises AssertionError."""

    def keyed(rows):
        return {r[:n_keys]: [None if v is None else float(v) for v in r[n_keys:]] for r in rows}

    a, b = keyed(ours), keyed(theirs)
    assert a.keys() == b.keys(), f"{question}: groups differ: {sorted(a.keys() ^ b.keys(), key=str)}"
    for key, values in a.items():
        for x, y in zip(values, b[key], strict=True):
            same = x == y or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9))
            assert same, f"{question}: {key} {x} != {y}"


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=25.0, help="demo scale when generating (25: ~10M touches)")
    parser.add_argument("--warehouse", type=Path, help="use this duckdb file instead of the cached demo one")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per question (p50 reported)")
    parser.add_argument("--sql", action="store_true", help="print the engine's SQL of each question")
    args = parser.parse_args()
    path = warehouse(args)
    engine = MetricsEngine(REPO / "tools" / "metrics.yaml", path, today=TODAY)
    bot = Mopsbot(engine)
    cur = engine.cursor()
    counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]
    threads = cur.execute("SELECT current_setting('threads')").fetchone()[0]  # type: ignore[index]
    sizes = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"warehouse {path} ({path.stat().st_size / 1e6:.0f} MB): {sizes}")
    print(f"{os.cpu_count()} cores, duckdb {duckdb.__version__} ({threads} threads), today {TODAY}, {args.repeat} runs")

    for n, (question, expected, sql, n_keys) in enumerate(QUESTIONS, 1):  # parse and result checks, warm-up
        parsed = fill_metric_query(engine.catalog, question, None)
        print(f"({n}) {question!r} -> {parsed}")
        assert parsed == expected, f"{question!r} parsed to {parsed}, expected {expected}"
        _, data, ours = bot.ask(question)
        check_same(question, ours, hand(engine, sql)[1], n_keys)
        render_chart(data)
        if args.sql:
            print(data["sql"], data["params"], sep="\n")
    print("all five give the hand-written SQL's numbers (rel. tol. 1e-9)")

    times: dict[str, dict[str, list[float]]] = {q: {} for q, *_ in QUESTIONS}
    for i in range(args.repeat):
        for question, _, sql, _ in QUESTIONS:
            t = times[question]
            if i % 2:  # alternate which side goes first
                t.setdefault("hand", []).append(hand(engine, sql)[0])
            stages, data, _ = bot.ask(question)
            if not i % 2:
                t.setdefault("hand", []).append(hand(engine, sql)[0])
            for stage, s in stages.items():
                t.setdefault(stage, []).append(s)
    for question, *_ in QUESTIONS:  # apart: 70 ms of matplotlib before a query slows its start (idle threads)
        data = bot.ask(question)[1]
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            render_chart(data)
            t1 = time.perf_counter()
            Console(file=io.StringIO(), width=140).print(rich_table(data))
            times[question].setdefault("chart", []).append(t1 - t0)
            times[question].setdefault("rich", []).append(time.perf_counter() - t1)

    stages = ("parse", "compile", "execute", "format", "total", "hand")
    print(f"\np50 ms over {args.repeat} runs   " + "".join(f"{s:>9}" for s in stages) + "    ratio      chart     rich")
    over = []
    for n, (question, *_) in enumerate(QUESTIONS, 1):
        t = times[question]
        ratio = ms(t["total"]) / ms(t["hand"])
        mark = "pass" if ratio <= GOAL else "OVER"
        over += [n] if ratio > GOAL else []
        cells = "".join(f"{ms(t[s]):9.1f}" for s in stages)
        print(f"({n}) {question[:28]:<28}{cells}  {ratio:5.2f}x {mark} {ms(t['chart']):8.1f} {ms(t['rich']):8.1f}")
    total_ratio = sum(ms(times[q]["total"]) for q in times) / sum(ms(times[q]["hand"]) for q in times)
    print(f"sum of p50s: mopsbot / hand SQL = {total_ratio:.2f}x (goal <= {GOAL}x per question)")
    size = "" if counts["fct_touchpoint"] >= MIN_TOUCHPOINTS else f" (below {MIN_TOUCHPOINTS:,} touchpoints!)"
    verdict = "PASS: every question within" if not over else f"OVER on question(s) {over}: above"
    print(f"verdict: {verdict} {GOAL}x of hand-written SQL{size}")


if __name__ == "__main__":
    main()
