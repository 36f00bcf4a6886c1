"""Showing results: numbers by unit, Slack tables within Slack's limits, PNG charts."""

from __future__ import annotations

from datetime import date

import pytest

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.present import SLACK_SECTION_LIMIT, format_change, format_value, render_chart, slack_table
from mopsbot.metrics.query import MetricQuery

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (1234567.891, "usd", "$1,234,568"),
        (77.704, "usd", "$77.70"),
        (0.04234, "pct", "4.23%"),
        (0.00042, "pct", "0.042%"),
        (27.9517, "ratio", "27.95x"),
        (4.6265, "days", "4.6 days"),
        (479179.4, "usd_per_day", "$479,179/day"),
        (2701, "count", "2,701"),
        (None, "usd", "n/a"),
    ],
)
def test_numbers_are_formatted_by_unit(value: float | None, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_changes_are_signed_percentages() -> None:
    assert (format_change(0.0389), format_change(-0.2381), format_change(None)) == ("+3.9%", "-23.8%", "n/a")


def test_slack_table_fits_one_section_and_says_what_it_left_out(engine: MetricsEngine) -> None:
    result = engine.query(MetricQuery(metrics=["spend", "leads", "cpl"], dimensions=["campaign"], period="2025",
                                      limit=400), date(2026, 11, 16)).to_dict()  # fmt: skip
    text = slack_table(result, max_rows=400)
    assert len(text) <= SLACK_SECTION_LIMIT and text.startswith("```") and text.endswith("```")
    assert "more rows" in text
    assert result["rows"][0]["campaign"] in text


def test_charts_render_trends_and_breakdowns_as_png(engine: MetricsEngine) -> None:
    trend = engine.query(MetricQuery(metrics=["leads"], dimensions=["region"], grain="month", period="2026"))
    bars = engine.query(MetricQuery(metrics=["cpl"], dimensions=["channel"], period="Q3 2026"))
    for result in (trend, bars):
        png = render_chart(result.to_dict())
        assert png.startswith(PNG) and len(png) > 10_000
