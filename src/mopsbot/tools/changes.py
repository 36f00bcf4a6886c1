"""Change-request tools: file one (for approval) and look them up."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from mopsbot.changes.model import ChangeRequestDraft
from mopsbot.changes.service import create_pending, get_change, list_changes
from mopsbot.changes.states import STATES
from mopsbot.errors import UserFacingError
from mopsbot.tools.base import ToolContext, ToolResult, WriteProposal
from mopsbot.tools.registry import tool


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
    """Use to file a change request to the martech stack; it waits for the approver group its risk requires."""
    risk = args.risk()
    missing = args.missing_plans()
    preview = json.dumps(args.model_dump(), indent=2)
    note = f" (missing: {', '.join(p.replace('_', ' ') for p in missing)})" if missing else ""
    store, requester = ctx.deps.store, ctx.deps.caller.user_id

    def link(action_id: str) -> dict:
        cr = create_pending(store, args, requester, action_id)
        return {"change_request": cr.id, "state": cr.state}

    # consent changes follow their own approval rule (sop-change-management-policy: privacy group only)
    kind = "consent_change" if args.is_consent_change() else "change_request"
    return WriteProposal(
        kind, args.model_dump(), f"Change request: {args.title}{note}", risk, preview, after_propose=link
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
