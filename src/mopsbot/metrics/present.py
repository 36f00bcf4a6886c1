"""Showing metric results: numbers by unit, tables for the terminal and Slack, charts as PNG (matplotlib, Agg)."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from rich.table import Table

SLACK_SECTION_LIMIT = 3000  # characters in one Slack section block


def format_value(value: Any, unit: str) -> str:
    """A number as a marketer reads it: $1,234 / $12.34, 4.23%, 1,234, 27.95x, 4.6 days. Empty for None."""
    if value is None:
        return "n/a"
    v = float(value)
    if unit == "usd":
        return f"-${abs(v):,.0f}" if v <= -100 else (f"${v:,.0f}" if v >= 100 else f"${v:,.2f}")
    if unit == "usd_per_day":
        return f"${v:,.0f}/day"
    if unit == "pct":
        pct = 100 * v
        return f"{pct:,.3f}%" if 0 < abs(pct) < 0.1 else f"{pct:,.2f}%"
    if unit == "ratio":
        return f"{v:,.2f}x"
    if unit == "days":
        return f"{v:,.1f} days"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def format_change(change: float | None) -> str:
    if change is None:
        return "n/a"
    return f"{change * 100:+.1f}%"


def format_bucket(value: Any, grain: str | None) -> str:
    if not isinstance(value, date):
        return str(value)
    if grain == "month":
        return value.strftime("%Y-%m")
    if grain == "quarter":
        return f"{value.year}-Q{(value.month - 1) // 3 + 1}"
    if grain == "year":
        return str(value.year)
    return value.isoformat()


def row_label(row: dict[str, Any], result: dict[str, Any]) -> str:
    """The row's time bucket and dimension values, e.g. "2026-10 · paid_social · EMEA"."""
    parts = []
    if result.get("grain"):
        parts.append(format_bucket(row["bucket"], result["grain"]))
    parts += ["(none)" if row.get(d) is None else str(row[d]) for d in result["dimensions"]]
    return " · ".join(parts) or "total"


def table_cells(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a result (a MetricResult.to_dict() or the rows of one)."""
    header = (["period"] if result.get("grain") else []) + list(result["dimensions"])
    compare = bool(result.get("comparison"))
    for m in result["metrics"]:
        header.append(result["labels"].get(m, m))
        if compare:
            header += [f"{result['labels'].get(m, m)} before", "change"]
    body = []
    for row in result["rows"]:
        cells = [format_bucket(row["bucket"], result["grain"])] if result.get("grain") else []
        cells += ["(none)" if row.get(d) is None else str(row[d]) for d in result["dimensions"]]
        for m in result["metrics"]:
            unit = result["units"][m]
            cells.append(format_value(row.get(m), unit))
            if compare:
                cells += [format_value(row.get(f"{m}_previous"), unit), format_change(row.get(f"{m}_change"))]
        body.append(cells)
    return header, body


def rich_table(result: dict[str, Any]) -> Table:
    header, body = table_cells(result)
    n_keys = (1 if result.get("grain") else 0) + len(result["dimensions"])
    table = Table(show_edge=False, title=_title(result))
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < n_keys else "right")
    for cells in body:
        table.add_row(*cells)
    return table


def slack_table(result: dict[str, Any], max_rows: int = 25) -> str:
    """A monospace table in a code block that fits one Slack section (3,000 characters)."""
    header, body = table_cells(result)
    n_keys = (1 if result.get("grain") else 0) + len(result["dimensions"])
    shown = body[:max_rows]
    while True:
        widths = [max(len(r[i]) for r in [header, *shown]) for i in range(len(header))]

        def line(cells: list[str], widths: list[int] = widths) -> str:
            return "  ".join(
                c.ljust(w) if i < n_keys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        more = len(body) - len(shown)
        tail = [f"… {more} more rows"] if more else []
        text = "```\n" + "\n".join([line(header), *(line(r) for r in shown), *tail]) + "\n```"
        if len(text) <= SLACK_SECTION_LIMIT or len(shown) <= 1:
            return text[:SLACK_SECTION_LIMIT]
        shown = shown[: max(1, len(shown) // 2)]


def _title(result: dict[str, Any]) -> str:
    names = ", ".join(result["labels"].get(m, m) for m in result["metrics"])
    by = f" by {', '.join(result['dimensions'])}" if result["dimensions"] else ""
    grain = f" per {result['grain']}" if result.get("grain") else ""
    return f"{names}{by}{grain}, {result['period']['label']}"


def render_chart(result: dict[str, Any], max_series: int = 8) -> bytes:
    """A PNG: a line per series for trends (time grain), horizontal bars for breakdowns. Needs rows."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    metric = result["metrics"][0]
    unit = result["units"][metric]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    try:
        if result.get("grain"):
            series: dict[str, list[tuple[Any, float]]] = {}
            for row in result["rows"]:
                name = " · ".join(str(row.get(d)) for d in result["dimensions"]) or result["labels"][metric]
                if row.get(metric) is not None:
                    series.setdefault(name, []).append((row["bucket"], float(row[metric])))
            ranked = sorted(series.items(), key=lambda kv: -sum(v for _, v in kv[1]))[:max_series]
            for name, points in ranked:
                points.sort()
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
            if len(ranked) > 1:
                ax.legend(fontsize=7, loc="best")
            fig.autofmt_xdate()
        else:
            rows = [r for r in result["rows"] if r.get(metric) is not None][:20]
            labels = [row_label(r, result) for r in rows][::-1]
            ax.barh(labels, [float(r[metric]) for r in rows][::-1], color="#3b6ea5")
            ax.tick_params(axis="y", labelsize=8)
        value_axis = ax.yaxis if result.get("grain") else ax.xaxis
        value_axis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
        ax.set_title(_title(result), fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
