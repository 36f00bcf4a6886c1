"""What a change request says (structured fields the planner or the LLM fill) and the plans it needs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PLANS = ("implementation_plan", "backout_plan", "test_plan")


class ChangeRequestDraft(BaseModel):
    """A change request as asked for. The policy (tools/changes.yaml) computes its category, risk and approvers;
    `category` and `fields` given here are hints that can only make the route stricter."""

    change_type: Literal["standard", "normal", "emergency"] = "normal"
    title: str = Field(min_length=5, max_length=200)
    description: str = Field(min_length=5, max_length=4000)
    affected_systems: list[str] = Field(default_factory=list, description="Systems it touches (tools/changes.yaml).")
    fields: list[str] = Field(default_factory=list, description="Fields or objects it touches (tools/changes.yaml).")
    category: str | None = Field(
        None,
        description="consent, scoring, routing, sync, data_deletion, integration_access, reporting, taxonomy, content",
    )
    records: int | None = Field(None, ge=0, description="How many records it changes, if known.")
    implementation_plan: str = Field("", max_length=4000)
    backout_plan: str = Field("", max_length=4000)
    test_plan: str = Field("", max_length=4000)
    on_behalf_of: str | None = Field(
        None, max_length=64, description="The user this change is filed for, if not the caller."
    )


def plans_needed(change_type: str, risk: str) -> tuple[str, ...]:
    """Plans a change must carry before approval: all three for normal or high-risk changes and for medium or high
    emergencies; otherwise a backout note (sop-change-management-policy "Required plans")."""
    if change_type == "normal" or risk == "high" or (change_type == "emergency" and risk in ("medium", "high")):
        return PLANS
    return ("backout_plan",)


def missing_plans(payload: dict, change_type: str, risk: str) -> list[str]:
    return [p for p in plans_needed(change_type, risk) if not str(payload.get(p) or "").strip()]
