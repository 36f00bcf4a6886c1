"""Prediction tools: why a lead scored what it did, what would change it, how good the model is, who scores highest."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mopsbot.metrics.periods import parse_period
from mopsbot.tools.base import ToolContext, ToolResult
from mopsbot.tools.registry import tool


def _card_citation(ctx: ToolContext, model: str) -> list[dict[str, str]]:
    card = ctx.deps.predictions.card(model)
    if not card.card_doc:
        return []
    return [
        {
            "doc_id": card.card_doc,
            "title": f"Model card: {card.title}",
            "section": card.title,
            "path": f"tools/models/{card.name}.yaml",
        }
    ]


class ExplainArgs(BaseModel):
    model: str = Field("lead_score", max_length=80, description="Model name, e.g. lead_score.")
    entity_id: int = Field(ge=1, description="The id of the lead (or other entity) whose score to explain.")


@tool(
    "read",
    exemplars=("why is lead 4411 scored 82?", "explain the lead score of lead 120", "why did lead 9 get a C?"),
)
def explain_prediction(ctx: ToolContext, args: ExplainArgs) -> ToolResult:
    """Use to explain one prediction (why a lead has its score): exact factor contributions, baseline, caveats.

    Returns the score and tier, the baseline, the top positive and negative factors (business name, the entity's
    value, contribution in probability points and as an odds ratio), the model version and calibration of the band.
    """
    explanation = ctx.deps.predictions.explain(args.model, args.entity_id)
    data = explanation.to_dict()
    up, _ = explanation.top(1)
    lead = f"; biggest push up: {up[0].business_name}" if up else ""
    tier = f" (tier {explanation.tier})" if explanation.tier else ""
    return ToolResult(
        summary=f"{args.model} {explanation.version}: {args.entity_id} scores {explanation.score:.0f}{tier}{lead}",
        data=data,
        citations=_card_citation(ctx, args.model),
    )


class WhatIfArgs(BaseModel):
    model: str = Field("lead_score", max_length=80)
    entity_id: int = Field(ge=1)
    changes: dict[str, Any] = Field(
        min_length=1, max_length=10, description="Feature -> new value, e.g. {'webinar_attended': true}."
    )


@tool("read", exemplars=("what if they attended the webinar?", "what if lead 4411 requested a demo?"))
def what_if(ctx: ToolContext, args: WhatIfArgs) -> ToolResult:
    """Use for "what if" questions: the score with some inputs changed, and which contributions moved."""
    result = ctx.deps.predictions.what_if(args.model, args.entity_id, args.changes)
    before, after = result.before, result.after
    data = {
        "model": args.model,
        "entity_id": args.entity_id,
        "changes": result.changes,
        "score_before": before.score,
        "score_after": after.score,
        "tier_before": before.tier,
        "tier_after": after.tier,
        "moved": result.moved(),
        "version": after.version,
        "caveats": after.caveats,
    }
    return ToolResult(
        summary=f"{args.entity_id}: {before.score:.0f} -> {after.score:.0f} with {result.changes}",
        data=data,
        citations=_card_citation(ctx, args.model),
    )


class ModelCardArgs(BaseModel):
    model: str = Field("lead_score", max_length=80)


@tool(
    "read",
    exemplars=(
        "how good is the lead score model?",
        "show me the lead score model card",
        "is the lead score calibrated?",
    ),
)
def model_card(ctx: ToolContext, args: ModelCardArgs) -> ToolResult:
    """Use to say what a model predicts and how good it is: purpose, target, features, AUC, Brier, calibration."""
    model = ctx.deps.predictions.model(args.model)
    card, spec = model.card, model.spec
    data = {
        "name": card.name,
        "title": card.title,
        "version": spec.version,
        "purpose": card.purpose.strip(),
        "target": card.target,
        "entity": card.entity,
        "training_window": card.training_window,
        "trained_at": spec.trained_at,
        "training_rows": spec.training_rows,
        "metrics": spec.metrics,
        "average_score": 100 * spec.average_prediction if spec.kind == "classifier" else spec.average_prediction,
        "features": [f.model_dump() for f in card.features],
        "owner": card.owner,
        "tiers": {k: t.model_dump() for k, t in card.tiers.items()},
    }
    m = spec.metrics
    quality = f"AUC {m['auc']}, Brier {m['brier']}" if "auc" in m else f"R2 {m.get('r2')}"
    return ToolResult(
        summary=f"{card.title} {spec.version}: {quality}", data=data, citations=_card_citation(ctx, args.model)
    )


class ScoreLeadsArgs(BaseModel):
    model: str = Field("lead_score", max_length=80)
    period: str | None = Field(None, max_length=80, description="e.g. 'this week', 'last 7 days', 'October 2026'.")
    date_column: Literal["created_at", "mql_at", "sql_at"] = Field(
        "mql_at", description="Which date the period applies to: mql_at for MQLs, created_at for new leads."
    )
    region: list[Literal["NA", "EMEA", "APAC", "LATAM"]] = Field(default_factory=list)
    source_channel: list[str] = Field(default_factory=list, max_length=9)
    min_score: float | None = Field(None, ge=0, le=100)
    limit: int = Field(10, ge=1, le=100)


@tool("read", exemplars=("which of this week's MQLs score highest?", "top scoring leads from EMEA this month"))
def score_leads(ctx: ToolContext, args: ScoreLeadsArgs) -> ToolResult:
    """Use to rank leads by model score (e.g. "which of this week's MQLs score highest?"), with filters."""
    between = None
    if args.period:
        period = parse_period(args.period, ctx.deps.today)
        between = (args.date_column, period.start, period.end)
    where: dict[str, list[Any]] = {}
    if args.region:
        where["region"] = list(args.region)
    if args.source_channel:
        where["source_channel"] = list(args.source_channel)
    result = ctx.deps.predictions.score(args.model, where, between, args.limit, args.min_score)
    if between:
        result["period"] = {
            "column": args.date_column,
            "start": between[1].isoformat(),
            "end": between[2].isoformat(),
            "label": period.label,
        }
    top = result["rows"][0] if result["rows"] else None
    best = f"; highest {top.get('lead_id', '')} at {top['score']:.0f}" if top else ""
    return ToolResult(
        summary=f"{result['scored']} scored{best}", data=result, citations=_card_citation(ctx, args.model)
    )
