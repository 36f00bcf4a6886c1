"""The built-in tool families, registered through the same path a third-party tool would use."""

from __future__ import annotations

from mopsbot.tools.campaigns import draft_campaign_config, submit_campaign_config
from mopsbot.tools.changes import add_change_plans, file_change_request, get_change_request, list_change_requests
from mopsbot.tools.knowledge import search_knowledge
from mopsbot.tools.metrics import describe_metric, detect_anomalies, list_metrics, query_metrics
from mopsbot.tools.predictions import explain_prediction, model_card, score_leads, what_if
from mopsbot.tools.registry import ToolRegistry


def builtin_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        search_knowledge,
        query_metrics,
        list_metrics,
        describe_metric,
        detect_anomalies,
        explain_prediction,
        what_if,
        model_card,
        score_leads,
        draft_campaign_config,
        submit_campaign_config,
        file_change_request,
        add_change_plans,
        list_change_requests,
        get_change_request,
    )
    return registry
