"""Change-request tools: file one (for approval), add its plans, and look them up."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from mopsbot.approvals import EnvelopeMismatch
from mopsbot.changes.model import PLANS, ChangeRequestDraft, missing_plans
from mopsbot.changes.policy import ChangePolicy
from mopsbot.changes.service import get_change, list_changes
from mopsbot.changes.states import STATES
from mopsbot.errors import UserFacingError
from mopsbot.tools.base import ToolContext, ToolResult, WriteProposal, person_ids
from mopsbot.tools.registry import tool


def _policy(ctx: ToolContext) -> ChangePolicy:
    policy = ctx.deps.change_policy
    if policy is None:  # no taxonomy: every change takes the strictest route
        return ChangePolicy({"consent": {"risk": "high", "action_kind": "consent_change"}}, {}, {}, {})
    return policy


@tool(
    "write",
    action_kind="change_request",
    exemplars=(
        "file a change request to add a consent checkbox to the demo form",
        "open a change request for the lead routing rules",
        "raise an emergency change to pause the LinkedIn campaign",
        "request a change to the Marketo to Salesforce field mapping",
    ),
)
def file_change_request(ctx: ToolContext, args: ChangeRequestDraft) -> WriteProposal:
    """Use to file a change request to the martech stack; the policy routes it to the approvers its content needs."""
    policy = _policy(ctx)
    unknown = [s for s in args.affected_systems if not policy.known_system(s)]
    if unknown and policy.systems:
        raise UserFacingError(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(policy.system_names)}")
    route = policy.classify(
        text=f"{args.title}\n{args.description}",
        systems=args.affected_systems,
        fields=args.fields,
        category=args.category,
        change_type=args.change_type,
        records=args.records,
    )
    payload = {
        "change_type": args.change_type,
        "title": args.title,
        "description": args.description,
        "affected_systems": list(route.systems),
        "fields": list(route.fields),
        "category": route.category,
        "risk": route.risk,
        "records": args.records,
        **{p: getattr(args, p) for p in PLANS},
    }
    missing = missing_plans(payload, args.change_type, route.risk)
    note = f" (missing: {', '.join(p.replace('_', ' ') for p in missing)})" if missing else ""
    shapers = tuple(person_ids(ctx, args.on_behalf_of))
    return WriteProposal(
        action_kind=route.action_kind,
        payload=payload,
        summary=f"Change request: {args.title}{note}",
        risk=route.risk,  # type: ignore[arg-type]
        preview=json.dumps(payload, indent=2),
        category=route.category,
        routing_reasons=route.reasons,
        requesters=shapers,
    )


class ChangePlansArgs(BaseModel):
    change_id: str = Field(pattern=r"(?i)^CR-\d{4,}$", description="e.g. CR-0007")
    implementation_plan: str = Field("", max_length=4000)
    backout_plan: str = Field("", max_length=4000)
    test_plan: str = Field("", max_length=4000)


@tool(
    "write",
    action_kind="change_request",
    exemplars=(
        "add plans to CR-0003: implementation ... backout ... test ...",
        "here are the plans for the change: implementation plan, backout plan, test plan",
    ),
)
def add_change_plans(ctx: ToolContext, args: ChangePlansArgs) -> WriteProposal:
    """Use when a requester adds implementation, backout or test plans to their pending change request."""
    change = get_change(ctx.deps.store, args.change_id)
    if change is None:
        raise UserFacingError(f"no change request {args.change_id.upper()}")
    caller = ctx.deps.caller.user_id
    if caller not in change["requesters"]:
        raise UserFacingError(f"only the requesters of {change['id']} can add its plans")
    if change["state"] != "pending_approval" or not change["action_id"]:
        raise UserFacingError(
            f"{change['id']} is {change['state']}; plans can only be added while it waits for approval"
        )
    approvals = ctx.deps.approvals
    if approvals is None:
        raise UserFacingError("amending needs the approvals service, which is not configured here")
    current = approvals.get(change["action_id"])
    if current is None or current["status"] != "pending":
        raise UserFacingError(f"{change['id']} has no pending approval to amend")
    try:  # the amendment starts from the version that was sealed and shown, never from the editable row
        sealed = approvals.sealed(change["action_id"])
    except EnvelopeMismatch as err:
        raise UserFacingError(f"{change['id']} cannot be amended: {err}") from None
    base = sealed.payload
    kind, risk, category = sealed.kind, sealed.risk, sealed.category
    reasons, shapers, old_id = sealed.routing_reasons, sealed.requesters, sealed.id
    payload = {**base, **{p: getattr(args, p) or base.get(p, "") for p in PLANS}, "change_id": change["id"]}
    missing = missing_plans(payload, payload.get("change_type", "normal"), risk)
    note = f" (missing: {', '.join(p.replace('_', ' ') for p in missing)})" if missing else ""
    return WriteProposal(
        action_kind=kind,
        payload=payload,
        summary=f"Change request {change['id']}: {payload['title']}{note}",
        risk=risk,  # type: ignore[arg-type]
        preview=json.dumps(payload, indent=2),
        category=category,
        routing_reasons=reasons,
        requesters=shapers,
        supersedes=old_id,
    )


class ListChangesArgs(BaseModel):
    state: Literal[STATES] | None = None  # type: ignore[valid-type]
    mine: bool = Field(False, description="Only the caller's own change requests.")


@tool("read", exemplars=("show my change requests", "list pending change requests", "which changes are waiting?"))
def list_change_requests(ctx: ToolContext, args: ListChangesArgs) -> ToolResult:
    """Use to list change requests, optionally by state or only the caller's."""
    rows = list_changes(ctx.deps.store, args.state, ctx.deps.caller.user_id if args.mine else None)
    return ToolResult(summary=f"{len(rows)} change request(s)", data={"change_requests": rows})


class GetChangeArgs(BaseModel):
    id: str = Field(pattern=r"(?i)^CR-\d{4,}$", description="e.g. CR-0007")


@tool("read", exemplars=("what's the status of CR-0001?", "show change request CR-0002"))
def get_change_request(ctx: ToolContext, args: GetChangeArgs) -> ToolResult:
    """Use to show one change request with its state, risk, plans and ticket reference."""
    change = get_change(ctx.deps.store, args.id)
    if change is None:
        raise UserFacingError(f"no change request {args.id.upper()}")
    return ToolResult(summary=f"{change['id']} is {change['state']} ({change['risk']} risk)", data={"change": change})
