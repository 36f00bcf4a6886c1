"""Metric tools: registered like any tool, results carry their provenance, CPL rows are judged against policy."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mopsbot.caller import CallerContext
from mopsbot.campaigns.policy import CampaignPolicy
from mopsbot.errors import UserFacingError
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.query import MetricQuery
from mopsbot.tools.base import ToolContext, ToolDeps
from mopsbot.tools.builtin import builtin_registry
from mopsbot.tools.metrics import cpl_thresholds, detect_anomalies, query_metrics

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 16)


@pytest.fixture(scope="module")
def ctx(warehouse: Path) -> ToolContext:
    engine = MetricsEngine(REPO / "tools" / "metrics.yaml", warehouse)
    policy = CampaignPolicy.load(REPO / "tools")
    return ToolContext(ToolDeps(CallerContext("U07SC0005"), metrics=engine, campaign_policy=policy, today=TODAY))


def test_metric_tools_are_registered_with_a_description_and_a_schema() -> None:
    registry = builtin_registry()
    for name in ("query_metrics", "list_metrics", "describe_metric", "detect_anomalies"):
        tool = registry.get(name)
        assert tool is not None and tool.kind == "read" and tool.description.startswith("Use ")
    params = registry.get("query_metrics").schema()["function"]["parameters"]
    assert {"metrics", "dimensions", "period", "filters", "compare_to", "attribution"} <= set(params["properties"])


def test_query_result_carries_sql_row_count_freshness_and_definitions(ctx: ToolContext) -> None:
    result = query_metrics.fn(ctx, MetricQuery(metrics=["cost per lead"], dimensions=["region"], period="Q3 2026"))
    assert result.data["sql"].startswith("WITH") and result.data["row_count"] == 4
    assert result.data["freshness"] == {"dim_lead": "2026-10-31", "fct_ad_daily": "2026-10-31"}
    assert result.data["definitions"]["cpl"].startswith("CPL:")
    assert result.summary.startswith("CPL by region, Q3 2026: 4 rows; data through 2026-10-31")
    assert result.citations[0]["doc_id"] == "metrics-glossary"


def test_cpl_of_a_channel_and_region_month_is_judged_against_its_threshold(ctx: ToolContext) -> None:
    filters = [{"dimension": "channel", "values": ["paid_social"]}, {"dimension": "region", "values": ["EMEA"]}]
    result = query_metrics.fn(ctx, MetricQuery(metrics=["cpl"], filters=filters, grain="month", period="2026"))
    judged = {t["month"]: t for t in result.data["thresholds"]}
    assert judged["2026-10"]["breached"] is True and judged["2026-10"]["threshold"] == 170
    assert not any(t["breached"] for m, t in judged.items() if m != "2026-10")


def test_a_cell_with_too_few_leads_is_not_judged() -> None:
    policy = CampaignPolicy.load(REPO / "tools")
    data = {"grain": None, "filters": [], "period": {"start": "2026-10-01", "end": "2026-10-31"},
            "rows": [{"channel": "events", "region": "LATAM", "cpl": 900.0, "campaign_leads": 12}]}  # fmt: skip
    (verdict,) = cpl_thresholds(policy, data)
    assert verdict["breached"] is None and verdict["threshold"] == 290


def test_a_quarter_is_not_judged_against_monthly_thresholds(ctx: ToolContext) -> None:
    result = query_metrics.fn(ctx, MetricQuery(metrics=["cpl"], dimensions=["channel", "region"], period="Q3 2026"))
    assert "thresholds" not in result.data and "campaign_leads" not in result.data["metrics"]


def test_unknown_names_raise_a_user_facing_error_with_close_names(ctx: ToolContext) -> None:
    with pytest.raises(UserFacingError, match=r"closest: .*cpl"):
        query_metrics.fn(ctx, MetricQuery(metrics=["cpx"]))


def test_detect_anomalies_reports_the_series_query(ctx: ToolContext) -> None:
    from mopsbot.tools.metrics import DetectAnomaliesArgs

    result = detect_anomalies.fn(ctx, DetectAnomaliesArgs(metric="bounce rate", grain="day", period="2026"))
    assert result.data["anomalies"][0]["bucket"] == "2026-09-16" and "SELECT" in result.data["sql"]
    assert "in Hard bounce rate per day" in result.summary and "strongest: 2026-09-16 " in result.summary
