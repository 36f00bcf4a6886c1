"""Metric tools: governed numbers from the metric catalog (the engine writes the SQL), definitions, anomalies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mopsbot.metrics.anomalies import detect
from mopsbot.metrics.compiler import available_dimensions
from mopsbot.metrics.present import format_value
from mopsbot.metrics.query import Filter, MetricQuery
from mopsbot.tools.base import ToolContext, ToolResult
from mopsbot.tools.registry import tool

GLOSSARY = {
    "doc_id": "metrics-glossary",
    "title": "Metrics Glossary",
    "section": "Metrics Glossary",
    "path": "knowledge/reference/metrics-glossary.md",
}


@tool(
    "read",
    exemplars=(
        "CPL by channel last quarter vs the quarter before",
        "what was our cost per lead in EMEA last month?",
        "how many MQLs did we get this quarter?",
        "show spend by region for Q3 2026",
        "pipeline by channel, W-shaped",
        "monthly leads trend for 2026",
        "what's the hard bounce rate by campaign since September?",
        "ROAS for paid social last year",
        "how much pipeline did webinars source in Q3?",
        "MQL to SQL conversion rate by region YTD",
        "top 5 campaigns by spend last month",
        "did paid social EMEA breach its CPL threshold last month?",
    ),
)
def query_metrics(ctx: ToolContext, args: MetricQuery) -> ToolResult:
    """Use for numbers about campaigns and the funnel (spend, leads, CPL, MQLs, pipeline, ROAS, email rates...).

    Fill catalogued metric and dimension names, a period, filters and optionally a comparison or an attribution
    model; the engine writes and runs the SQL. The result carries the rows, the SQL, the row count, the data
    freshness and the definitions applied. Unknown names fail with the closest catalogued names.
    """
    policy = ctx.deps.campaign_policy
    judge = policy is not None and "cpl" in [_safe_name(ctx, m) for m in args.metrics] and _judgeable(ctx, args)
    if judge and "campaign_leads" not in args.metrics:  # the lead volume decides whether a cell can breach
        args = args.model_copy(update={"metrics": [*args.metrics, "campaign_leads"]})
    result = ctx.deps.metrics.query(args, ctx.deps.today)
    data = result.to_dict()
    if judge:
        data["thresholds"] = cpl_thresholds(policy, data)
    names = ", ".join(result.labels.values())
    by = f" by {', '.join(result.dimensions)}" if result.dimensions else ""
    vs = f" vs {result.comparison.label}" if result.comparison else ""
    if result.row_count == 1 and not result.dimensions and not result.grain:
        m = result.metrics[0]
        figure = f": {format_value(result.rows[0][m], result.units[m])}"
    else:
        figure = f": {result.row_count} rows{' (truncated)' if result.truncated else ''}"
    latest = min((d for d in result.freshness.values() if d), default="unknown")
    return ToolResult(
        summary=f"{names}{by}, {result.period.label}{vs}{figure}; data through {latest}",
        data=data,
        citations=[GLOSSARY],
    )


def _judgeable(ctx: ToolContext, args: MetricQuery) -> bool:
    """Whether CPL rows can be held against the monthly thresholds: channel and region known, per month."""
    fixed = {f.dimension for f in args.filters if f.op == "in" and len(f.values) == 1}
    if not {"channel", "region"} <= fixed | set(args.dimensions):
        return False
    if args.grain == "month":
        return True
    try:
        period = ctx.deps.metrics.period_of(args, ctx.deps.today)
    except Exception:
        return False
    return period.start.day == 1 and (period.end.month, period.end.year) == (period.start.month, period.start.year)


def _safe_name(ctx: ToolContext, name: str) -> str | None:
    try:
        return ctx.deps.metrics.catalog.metric_name(name)
    except Exception:
        return None


def cpl_thresholds(policy, data: dict) -> list[dict]:
    """Each row's CPL against the policy's monthly threshold for its channel and region (sop-paid-media-cpl-guardrails).

    Channel and region come from the row's breakdown or a single-valued filter. A cell with fewer campaign leads
    than the policy minimum cannot breach (breached None: reviewed per campaign at quarter end). Only calendar
    months are judged: rows of a longer period are left out.
    """
    fixed = {
        f["dimension"]: f["values"][0] for f in data.get("filters", []) if f["op"] == "in" and len(f["values"]) == 1
    }
    period = data["period"]
    one_month = period["start"][:7] == period["end"][:7] and period["start"].endswith("-01")
    if data.get("grain") != "month" and not one_month:
        return []
    out = []
    for row in data["rows"]:
        channel = row.get("channel", fixed.get("channel"))
        region = row.get("region", fixed.get("region"))
        threshold = policy.cpl_threshold(channel, region) if channel and region else None
        if threshold is None or row.get("cpl") is None:
            continue
        month = row["bucket"][:7] if data.get("grain") == "month" else period["start"][:7]
        enough = (row.get("campaign_leads") or 0) >= policy.min_leads_for_breach
        out.append({"channel": channel, "region": region, "month": month, "threshold": threshold,
                    "cpl": row["cpl"], "leads": row.get("campaign_leads"),
                    "breached": (row["cpl"] > threshold) if enough else None,
                    "label": f"{channel} {region} {month}", "sop": "sop-paid-media-cpl-guardrails"})  # fmt: skip
    return out


class ListMetricsArgs(BaseModel):
    search: str | None = Field(None, max_length=80, description="Optional word to filter by, e.g. email.")


@tool("read", exemplars=("which metrics can you report?", "list the metrics you know", "what email metrics are there?"))
def list_metrics(ctx: ToolContext, args: ListMetricsArgs) -> ToolResult:
    """Use to list the catalogued metrics (name, label, unit, definition) the bot can report."""
    catalog = ctx.deps.metrics.catalog
    rows = []
    for name, m in catalog.metrics.items():
        if m.hidden:
            continue
        text = " ".join([name, m.label, m.description, *m.synonyms]).lower()
        if args.search and args.search.lower() not in text:
            continue
        rows.append({"name": name, "label": m.label, "type": m.type, "unit": catalog.metric_unit(name),
                     "definition": ctx.deps.metrics.definition(name)})  # fmt: skip
    return ToolResult(summary=f"{len(rows)} metrics", data={"metrics": rows}, citations=[GLOSSARY])


class DescribeMetricArgs(BaseModel):
    metric: str = Field(min_length=1, max_length=80, description="A metric name or synonym, e.g. CPL.")


@tool(
    "read",
    exemplars=("how is CPL calculated in the metrics catalog?", "describe the ROAS metric", "define MQL to SQL rate"),
)
def describe_metric(ctx: ToolContext, args: DescribeMetricArgs) -> ToolResult:
    """Use to explain how one catalogued metric is computed: formula, tables, date column, dimensions, caveats."""
    engine = ctx.deps.metrics
    catalog = engine.catalog
    name = catalog.metric_name(args.metric)
    m = catalog.metrics[name]
    measures = {}
    for ms in catalog.metric_measures(name):
        spec = catalog.measures[ms]
        measures[ms] = {"table": spec.table, "agg": spec.agg, "expr": spec.expr, "filter": spec.filter,
                        "date_column": catalog.time_of(spec), "model": spec.model}  # fmt: skip
    data = {
        "name": name,
        "label": m.label,
        "type": m.type,
        "unit": catalog.metric_unit(name),
        "definition": engine.definition(name),
        "measures": measures,
        "dimensions": available_dimensions(catalog, name),
        "synonyms": m.synonyms,
        "caveat": m.caveat,
        "glossary": m.glossary,
    }
    return ToolResult(summary=engine.definition(name), data=data, citations=[GLOSSARY])


class DetectAnomaliesArgs(BaseModel):
    metric: str = Field(min_length=1, max_length=80, description="A metric name or synonym, e.g. cpl.")
    by: list[str] = Field(default_factory=list, max_length=2, description="Dimensions to check separately.")
    grain: Literal["day", "week", "month"] = "month"
    window: int | None = Field(None, ge=3, le=90, description="Trailing points in the baseline.")
    period: str = Field("last 90 days", max_length=80, description="Where to look for anomalies.")
    filters: list[Filter] = Field(default_factory=list, max_length=5)


@tool(
    "read",
    exemplars=(
        "any anomalies in CPL by channel and region?",
        "did anything spike in the bounce rate recently?",
        "detect anomalies in spend by campaign",
        "is anything unusual in our email metrics this quarter?",
    ),
)
def detect_anomalies(ctx: ToolContext, args: DetectAnomaliesArgs) -> ToolResult:
    """Use to find unusual values of a metric per group against its trailing baseline (robust z-score)."""
    engine = ctx.deps.metrics
    period = engine.period_of(MetricQuery(metrics=[args.metric], period=args.period), ctx.deps.today)
    found, series = detect(engine, args.metric, args.by, args.grain, period, window=args.window, filters=args.filters)
    name = series["metrics"][0]
    unit = series["units"][name]
    data = {
        "metric": name,
        "label": series["labels"][name],
        "unit": unit,
        "grain": args.grain,
        "by": series["dimensions"],
        "period": {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
            "checked_from": period.start.isoformat(),
            "baseline_from": series["period"]["start"],
        },
        "anomalies": [a.to_dict() for a in found[:20]],
        "sql": series["sql"],
        "freshness": series["freshness"],
        "definitions": series["definitions"],
    }
    top = found[0] if found else None
    where = (", ".join(f"{v}" for v in top.group.values()) + " ") if top and top.group else ""
    lead = f"; strongest: {where}{top.bucket} {format_value(top.value, unit)}" if top else ""
    return ToolResult(
        summary=f"{len(found)} {'anomaly' if len(found) == 1 else 'anomalies'} in {series['labels'][name]} per "
        f"{args.grain}, {period.label}{lead}",
        data=data,
        citations=[GLOSSARY],
    )
