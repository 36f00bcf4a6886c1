"""`mopsbot metrics`: the governed metric catalog from the terminal (list, describe, query, anomalies)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mopsbot.cli.common import console, fail, load
from mopsbot.errors import UserFacingError

metrics_app = typer.Typer(help="Governed campaign metrics: list, describe, query, anomalies.", no_args_is_help=True)
COMPARE = {"previous": "previous_period", "previous_period": "previous_period", "yoy": "same_period_last_year",
           "same_period_last_year": "same_period_last_year"}  # fmt: skip


def _engine():
    from mopsbot.agent.factory import open_metrics

    return open_metrics(load())


def _out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def _parse_filter(text: str) -> dict[str, Any]:
    """dim=v1,v2 keeps those values; dim!=v1,v2 excludes them."""
    op = "not_in" if "!=" in text else "in"
    dim, _, values = text.partition("!=" if op == "not_in" else "=")
    if not dim or not values:
        raise typer.BadParameter(f"--filter {text!r}: write dimension=value[,value] or dimension!=value")
    return {"dimension": dim.strip(), "op": op, "values": [v.strip() for v in values.split(",") if v.strip()]}


@metrics_app.command("list")
def list_command(
    search: Annotated[str | None, typer.Option(help="Only metrics mentioning this word.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the catalogued metrics with their type, unit and definition."""
    engine = _engine()
    try:
        catalog = engine.catalog
    except UserFacingError as err:
        fail(str(err), code=2)
    rows = [
        {
            "name": n,
            "label": m.label,
            "type": m.type,
            "unit": catalog.metric_unit(n),
            "definition": engine.definition(n),
        }
        for n, m in catalog.metrics.items()
        if not m.hidden and (not search or search.lower() in f"{n} {m.label} {m.description} {m.synonyms}".lower())
    ]
    if json_out:
        _out(rows)
        return
    table = Table(show_edge=False)
    for col in ("name", "type", "unit", "definition"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["type"], r["unit"], r["definition"])
    console.print(table)


@metrics_app.command("describe")
def describe_command(
    metric: Annotated[str, typer.Argument(help="Metric name or synonym, e.g. cpl or 'cost per lead'.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show how one metric is computed: formula, measures, tables, date column, dimensions, caveats."""
    from mopsbot.caller import CallerContext
    from mopsbot.tools.base import ToolContext, ToolDeps
    from mopsbot.tools.metrics import DescribeMetricArgs, describe_metric

    engine = _engine()
    try:
        result = describe_metric.fn(
            ToolContext(ToolDeps(CallerContext("cli"), metrics=engine)), DescribeMetricArgs(metric=metric)
        )
    except UserFacingError as err:
        fail(str(err), code=2)
    d = result.data
    if json_out:
        _out(d)
        return
    console.print(f"[bold]{d['label']}[/bold] ({d['name']}, {d['type']}, {d['unit']})", highlight=False)
    console.print(d["definition"], highlight=False)
    for name, m in d["measures"].items():
        where = f" where {m['filter']}" if m["filter"] else ""
        console.print(f"  {name}: {m['agg']}({m['expr']}) from {m['table']}{where}, dated by {m['date_column']}",
                      highlight=False, markup=False)  # fmt: skip
    console.print(f"dimensions: {', '.join(d['dimensions'])}", highlight=False)
    if d["synonyms"]:
        console.print(f"also called: {', '.join(d['synonyms'])}", highlight=False)
    if d["caveat"]:
        console.print(f"caveat: {d['caveat']}", highlight=False)


@metrics_app.command("query")
def query_command(
    metrics: Annotated[list[str] | None, typer.Argument(help="Metric names or synonyms.")] = None,
    text: Annotated[
        str | None, typer.Option(help="A question in words instead: 'CPL by channel last quarter'.")
    ] = None,
    by: Annotated[list[str] | None, typer.Option(help="Break down by a dimension (repeatable).")] = None,
    grain: Annotated[str | None, typer.Option(help="day, week, month, quarter or year.")] = None,
    period: Annotated[
        str | None, typer.Option(help="'last quarter', 'QTD', 'Q3 2026', '2026-01-01..2026-03-31'.")
    ] = None,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="dim=v1,v2 or dim!=v (repeatable).")] = None,
    compare: Annotated[str | None, typer.Option(help="previous (period) or yoy (same period last year).")] = None,
    attribution: Annotated[
        str | None, typer.Option(help="first_touch, last_touch, linear, u_shaped, w_shaped, time_decay.")
    ] = None,
    order_by: Annotated[str | None, typer.Option(help="A metric or dimension; '-' prefix for descending.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Save a PNG chart of the result here.")] = None,
    show_sql: Annotated[bool, typer.Option("--sql", help="Print the SQL and its parameters.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result (rows, SQL, freshness...) as JSON.")
    ] = False,
) -> None:
    """Run a metric query through the semantic layer (the engine writes the SQL; values are bound parameters)."""
    from pydantic import ValidationError

    from mopsbot.metrics.present import render_chart, rich_table
    from mopsbot.metrics.query import MetricQuery

    settings = load()
    engine = _engine()
    try:
        if text:
            from mopsbot.agent.local.metrics import fill_metric_query

            args = fill_metric_query(engine.catalog, text, None, settings.today or date.today())
            if isinstance(args, str):
                fail(str(args), code=2)
        else:
            if not metrics:
                fail("name at least one metric (see `mopsbot metrics list`), or use --text", code=2)
            args = {"metrics": metrics, "dimensions": by or [], "grain": grain, "period": period,
                    "filters": [_parse_filter(f) for f in filter_ or []], "attribution": attribution,
                    "order_by": order_by, "limit": limit}  # fmt: skip
            if compare:
                if compare not in COMPARE:
                    fail("--compare must be previous or yoy", code=2)
                args["compare_to"] = COMPARE[compare]
        query = MetricQuery.model_validate(args)
        result = engine.query(query, settings.today or date.today())
    except ValidationError as err:
        fail(f"invalid query: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}", code=2)
    except UserFacingError as err:
        fail(str(err), code=2)
    data = result.to_dict()
    if chart:
        chart.write_bytes(render_chart(data))
    if json_out:
        _out(data)
        return
    console.print(rich_table(data))
    latest = min((d for d in data["freshness"].values() if d), default="unknown")
    console.print(f"{data['row_count']} rows{' (truncated)' if data['truncated'] else ''}; data through {latest}",
                  highlight=False)  # fmt: skip
    for note in data["notes"]:
        console.print(f"note: {note}", highlight=False)
    for definition in data["definitions"].values():
        console.print(f"definition: {definition}", highlight=False, markup=False)
    if chart:
        console.print(f"chart saved to {chart}", highlight=False)
    if show_sql:
        console.print(data["sql"], highlight=False, markup=False)
        console.print(f"parameters: {data['params']}", highlight=False, markup=False)


@metrics_app.command("anomalies")
def anomalies_command(
    metric: Annotated[str, typer.Argument(help="Metric name or synonym, e.g. cpl.")],
    by: Annotated[list[str] | None, typer.Option(help="Check each value of this dimension (repeatable).")] = None,
    grain: Annotated[str, typer.Option(help="day, week or month.")] = "month",
    period: Annotated[str, typer.Option(help="Where to look, e.g. 'this year'.")] = "last 90 days",
    window: Annotated[int | None, typer.Option(help="Trailing points in the baseline.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find values of a metric far from their trailing baseline (robust z-score), per group."""
    from pydantic import ValidationError

    from mopsbot.caller import CallerContext
    from mopsbot.tools.base import ToolContext, ToolDeps
    from mopsbot.tools.metrics import DetectAnomaliesArgs, detect_anomalies

    settings = load()
    engine = _engine()
    try:
        args = DetectAnomaliesArgs(metric=metric, by=by or [], grain=grain, period=period, window=window)  # type: ignore[arg-type]
        deps = ToolDeps(CallerContext("cli"), metrics=engine, today=settings.today or date.today())
        result = detect_anomalies.fn(ToolContext(deps), args)
    except ValidationError as err:
        fail(f"invalid arguments: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}", code=2)
    except UserFacingError as err:
        fail(str(err), code=2)
    if json_out:
        _out(result.data)
        return
    from mopsbot.agent.backend import ToolOutcome
    from mopsbot.agent.local.metrics import compose_anomalies

    console.print(compose_anomalies("", ToolOutcome("detect_anomalies", True, result.summary, result.data), None),  # type: ignore[arg-type]
                  highlight=False, markup=False)  # fmt: skip
