"""Campaign tools: draft a config checked against the team's policy, and submit it for approval."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, ValidationError

from mopsbot.campaigns.config import CampaignConfig, ProgramType, Region
from mopsbot.campaigns.lint import lint
from mopsbot.campaigns.service import get_draft, save_draft, to_yaml, with_defaults
from mopsbot.errors import UserFacingError
from mopsbot.tools.base import ToolContext, ToolResult, WriteProposal, person_ids
from mopsbot.tools.registry import tool


class DraftCampaignArgs(BaseModel):
    program_type: ProgramType
    topic: str = Field(min_length=2, max_length=60)
    region: Region
    start_date: date
    end_date: date | None = None
    budget: float = Field(ge=0)
    audience: str = ""
    owner: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    kpis: list[dict] = Field(default_factory=list, description='e.g. [{"metric": "mqls", "target": 120}]')
    extra: dict = Field(default_factory=dict, description="Program fields such as speakers, send_list, venue.")


@tool(
    "read",
    exemplars=(
        "draft a Q1 webinar on AI ops for EMEA with an 8k budget",
        "create a campaign config for a paid social campaign in NA",
        "set up a new email campaign for APAC next quarter",
        "draft a trade show event in LATAM, budget 30k",
        "I need a campaign config for a content syndication program",
        "draft a campaign",
        "new nurture program for NA",
    ),
)
def draft_campaign_config(ctx: ToolContext, args: DraftCampaignArgs) -> ToolResult:
    """Use to draft a campaign config from a brief: fills policy defaults, names it, and lints it against policy.

    Saves a draft (nothing is launched); returns the config, its YAML and every policy finding with a fix.
    """
    policy = ctx.deps.campaign_policy
    fields = {**args.model_dump(exclude={"extra"}, mode="json"), **args.extra}
    complete, filled = with_defaults(fields, policy, ctx.deps.caller.user_id)
    try:
        config = CampaignConfig.model_validate(complete)
    except ValidationError as err:
        raise UserFacingError(f"the brief is not a valid campaign: {err.errors()[0]['msg']}") from None
    findings = lint(config, policy, ctx.deps.today)
    draft_id = save_draft(ctx.deps.store, config, findings, ctx.deps.caller.user_id)
    errors = sum(f.severity == "error" for f in findings)
    tier = policy.approval_tier(config.budget)
    risk = policy.risk(config.budget)
    groups = ctx.deps.approval_policy.approver_groups("campaign_config", risk) if ctx.deps.approval_policy else ()
    return ToolResult(
        summary=f"Drafted {config.name} ({errors} errors, {len(findings) - errors} warnings); draft {draft_id}",
        data={
            "draft_id": draft_id,
            "name": config.name,
            "config": config.model_dump(mode="json"),
            "yaml": to_yaml(config),
            "filled_defaults": filled,
            "findings": [f.as_dict() for f in findings],
            "approval": {"tier": tier["label"], "risk": risk, "groups": list(groups)},
        },
    )


class SubmitCampaignArgs(BaseModel):
    draft_id: str = Field(min_length=8, description="The id draft_campaign_config returned.")


@tool(
    "write",
    action_kind="campaign_config",
    exemplars=("submit it", "submit the draft for approval", "send this campaign config for approval"),
)
def submit_campaign_config(ctx: ToolContext, args: SubmitCampaignArgs) -> WriteProposal:
    """Use to submit a drafted campaign config for approval; it is written only after an approver confirms."""
    draft = get_draft(ctx.deps.store, args.draft_id)
    if draft is None:
        raise UserFacingError(f"no campaign draft {args.draft_id}")
    if draft.status != "draft":
        raise UserFacingError(
            f"{draft.name} was already submitted (action {draft.action_id}, {draft.status}); "
            "draft it again to propose a changed version"
        )
    config = CampaignConfig.model_validate(draft.config)
    findings = lint(config, ctx.deps.campaign_policy, ctx.deps.today)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        listed = "; ".join(f"{f.field}: {f.message}" for f in errors)
        raise UserFacingError(
            f"{config.name} has {len(errors)} policy error(s) to fix before it can be submitted: {listed}"
        )
    budget = config.budget
    # everyone who shaped it: whoever drafted it and the person it is for (its owner) join the submitter
    shapers = {draft.requester_id, *person_ids(ctx, config.owner)}
    return WriteProposal(
        action_kind="campaign_config",
        payload={"draft_id": draft.id, "config": config.model_dump(mode="json")},
        summary=f"Create campaign {config.name} ({config.currency} {budget:,.0f})",
        risk=ctx.deps.campaign_policy.risk(budget),  # type: ignore[arg-type]
        preview=to_yaml(config),
        requesters=tuple(sorted(shapers)),
    )
