"""`mopsbot approvals|campaigns|changes`: pending actions, campaign configs and change requests."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from mopsbot.cli.common import console, fail, load
from mopsbot.config import Settings

if TYPE_CHECKING:
    from mopsbot.approvals.decide import DecisionResult

approvals_app = typer.Typer(
    help="List, show, approve, reject, resume and expire pending write actions.", no_args_is_help=True
)
campaigns_app = typer.Typer(help="Draft, lint and list campaign configs.", no_args_is_help=True)
changes_app = typer.Typer(help="List and show change requests.", no_args_is_help=True)

AsUser = Annotated[str, typer.Option("--as", help="Slack user id of the person acting.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(settings: Settings):
    from mopsbot.store.db import Store, StoreUnavailable

    try:
        return Store.open(settings.resolved_database_url)
    except StoreUnavailable as err:
        fail(str(err))


def _services(settings: Settings):
    from mopsbot.services import Services
    from mopsbot.store.db import StoreUnavailable

    try:
        return Services.from_settings(settings)
    except StoreUnavailable as err:
        fail(str(err))


def _print(data: Any, json_out: bool, text: str) -> None:
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        console.print(text, markup=False, highlight=False)


@approvals_app.command("list")
def approvals_list(
    status: Annotated[
        str | None, typer.Option(help="pending, approved, executed, rejected, expired, failed, superseded.")
    ] = "pending",
    json_out: JsonOut = False,
) -> None:
    """List pending actions (or those in another status)."""
    rows = _services(load()).approvals.list(status)
    text = "\n".join(
        f"{r['id']}  {r['status']:<9} {r['risk']:<6} {r['kind']:<16} {r['summary']} "
        f"(by {', '.join(r['requesters'])}; needs {' or '.join(r['approver_groups']) or 'nobody configured'})"
        for r in rows
    )
    _print(rows, json_out, text or f"no {status or ''} actions")


@approvals_app.command("show")
def approvals_show(action_id: Annotated[str, typer.Argument(help="Action id.")], json_out: JsonOut = False) -> None:
    """Show one action: the exact payload (and its SHA-256), risk, requesters, approvers, route, expiry, decision."""
    data = _services(load()).approvals.get(action_id)
    if data is None:
        fail(f"no pending action {action_id}")
    text = yaml.safe_dump({k: v for k, v in data.items() if k != "payload"}, sort_keys=False, default_flow_style=False)
    _print(data, json_out, text + "payload (exactly what runs):\n" + json.dumps(data["payload"], indent=2))


def _decide(action_id: str, actor: str, decision: str, reason: str | None) -> None:
    from mopsbot.approvals.decide import DecisionRefused

    services = _services(load())
    try:
        result = services.approvals.decide(action_id, actor, decision, reason=reason, via="cli")  # type: ignore[arg-type]
    except DecisionRefused as err:
        fail(f"refused: {err}")
    _report(result)


def _report(result: DecisionResult) -> None:
    console.print(result.message, markup=False)
    if result.result:
        console.print(json.dumps(result.result, default=str), markup=False)
    if result.status == "failed":
        raise typer.Exit(1)


@approvals_app.command("approve")
def approvals_approve(action_id: Annotated[str, typer.Argument(help="Action id.")], as_user: AsUser) -> None:
    """Approve an action as USER (recorded as a CLI decision with the OS user): it then runs once, exactly as shown."""
    _decide(action_id, as_user, "approve", None)


@approvals_app.command("reject")
def approvals_reject(
    action_id: Annotated[str, typer.Argument(help="Action id.")],
    as_user: AsUser,
    reason: Annotated[str, typer.Option(help="Why (required; the requester and the agent see it).")] = "",
) -> None:
    """Reject an action as USER, with a reason."""
    if not reason.strip():
        fail("a rejection needs --reason", code=2)
    _decide(action_id, as_user, "reject", reason)


@approvals_app.command("resume")
def approvals_resume(action_id: Annotated[str, typer.Argument(help="Action id.")], as_user: AsUser) -> None:
    """Resume, as USER (one of its approvers), an approved action whose execution a crash left running past its
    lease: it runs again with the same idempotency key, so nothing is done twice."""
    from mopsbot.approvals.decide import DecisionRefused

    try:
        result = _services(load()).approvals.resume(action_id, as_user, via="cli")
    except DecisionRefused as err:
        fail(f"refused: {err}")
    _report(result)


@approvals_app.command("sweep")
def approvals_sweep() -> None:
    """Mark pending actions past their expiry as expired (and their change requests)."""
    expired = _services(load()).approvals.sweep()
    console.print(f"expired {len(expired)} action(s)" + (": " + ", ".join(expired) if expired else ""))


@campaigns_app.command("draft")
def campaigns_draft(
    program_type: Annotated[
        str,
        typer.Option("--type", help="webinar, email, paid_social, paid_search, event, content_syndication or nurture."),
    ],
    topic: Annotated[str, typer.Option(help="What it is about, e.g. 'AI ops'.")],
    region: Annotated[str, typer.Option(help="NA, EMEA, APAC or LATAM.")],
    start: Annotated[str, typer.Option(help="Start date YYYY-MM-DD.")],
    budget: Annotated[float, typer.Option(help="Total budget in USD.")],
    field: Annotated[list[str] | None, typer.Option(help="Any other field as key=value (repeatable).")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Requester (default MOPSBOT_LOCAL_USER).")] = None,
    json_out: JsonOut = False,
) -> None:
    """Draft a campaign config from a brief: policy defaults filled, name generated, lint findings listed."""
    from mopsbot.agent.backend import ToolOutcome
    from mopsbot.agent.local.writes import compose_draft
    from mopsbot.errors import UserFacingError
    from mopsbot.tools.campaigns import DraftCampaignArgs, draft_campaign_config

    settings = load()
    extra = dict(f.split("=", 1) for f in field or [] if "=" in f)
    try:
        args = DraftCampaignArgs(
            program_type=program_type,
            topic=topic,
            region=region,
            start_date=start,  # type: ignore[arg-type]
            budget=budget,
            extra=extra,
        )
        result = draft_campaign_config.fn(_context(settings, as_user), args)
    except (ValueError, UserFacingError) as err:
        fail(str(err), code=2)
    if json_out:
        _print(result.data, True, "")
        return
    console.print(
        compose_draft("", ToolOutcome("draft_campaign_config", True, result.summary, result.data), None),
        markup=False,
        highlight=False,
    )  # type: ignore[arg-type]


def _context(settings: Settings, user: str | None):
    from mopsbot.caller import CallerContext
    from mopsbot.campaigns.policy import CampaignPolicy
    from mopsbot.tools.base import ToolContext, ToolDeps

    user = user or settings.local_user
    return ToolContext(
        ToolDeps(
            caller=CallerContext(user, f"D{user}", "dm"),
            store=_store(settings),
            campaign_policy=CampaignPolicy.load(settings.tools_dir),
            today=settings.today or date.today(),
        )
    )


@campaigns_app.command("lint")
def campaigns_lint(
    path: Annotated[Path, typer.Argument(help="A campaign config YAML file.")], json_out: JsonOut = False
) -> None:
    """Check a campaign config file against tools/campaign_policy.yaml; exits 1 when there are errors."""
    from pydantic import ValidationError

    from mopsbot.campaigns.config import CampaignConfig
    from mopsbot.campaigns.lint import lint
    from mopsbot.campaigns.policy import CampaignPolicy

    settings = load()
    try:
        raw = yaml.safe_load(path.read_text())
        raw.pop("name", None)
        raw.pop("utm_campaign", None)
        config = CampaignConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, AttributeError) as err:
        fail(f"{path}: {err}", code=2)
    except ValidationError as err:
        first = err.errors()[0]
        fail(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}", code=2)
    findings = lint(config, CampaignPolicy.load(settings.tools_dir), settings.today or date.today())
    _print(
        [f.as_dict() for f in findings],
        json_out,
        "\n".join(f"[{f.severity}] {f.rule} {f.field}: {f.message}. Fix: {f.fix} ({f.sop})" for f in findings)
        or f"{config.name}: no findings",
    )
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


@campaigns_app.command("list")
def campaigns_list(
    status: Annotated[str | None, typer.Option(help="draft or approved.")] = None, json_out: JsonOut = False
) -> None:
    """List campaign drafts and approved configs."""
    from mopsbot.campaigns.service import list_campaigns

    rows = list_campaigns(_store(load()), status)
    _print(
        rows,
        json_out,
        "\n".join(f"{r['id']}  {r['status']:<8} v{r['version']} {r['name']} ({r['errors']} errors)" for r in rows)
        or "no campaigns",
    )


@campaigns_app.command("schema")
def campaigns_schema() -> None:
    """Print the JSON schema of a campaign config."""
    from mopsbot.campaigns.config import CampaignConfig

    sys.stdout.write(json.dumps(CampaignConfig.model_json_schema(mode="serialization"), indent=2) + "\n")


@changes_app.command("list")
def changes_list(
    state: Annotated[str | None, typer.Option(help="e.g. pending_approval, approved.")] = None,
    json_out: JsonOut = False,
) -> None:
    """List change requests."""
    from mopsbot.changes.service import list_changes

    rows = list_changes(_store(load()), state)
    _print(
        rows,
        json_out,
        "\n".join(f"{r['id']}  {r['state']:<16} {r['risk']:<6} {r['title']}" for r in rows) or "no change requests",
    )


@changes_app.command("show")
def changes_show(cr_id: Annotated[str, typer.Argument(help="e.g. CR-0001")], json_out: JsonOut = False) -> None:
    """Show one change request with its state history in the audit log."""
    from mopsbot.audit import events_for
    from mopsbot.changes.service import get_change

    store = _store(load())
    change = get_change(store, cr_id)
    if change is None:
        fail(f"no change request {cr_id}")
    with store.session() as s:
        history = [
            {"at": e.at, "actor": e.actor, **(e.data or {})} for e in events_for(s, "change_request", change["id"])
        ]
    change["history"] = history
    _print(change, json_out, yaml.safe_dump(change, sort_keys=False, default_flow_style=False))


@changes_app.command("move")
def changes_move(
    cr_id: Annotated[str, typer.Argument(help="e.g. CR-0001")],
    state: Annotated[str, typer.Argument(help="implementing, implemented, closed, cancelled or failed.")],
    as_user: AsUser,
    reason: Annotated[str | None, typer.Option(help="Required for cancelled and failed.")] = None,
) -> None:
    """Move a change through implementation; only its requesters or approver groups may (the state table decides)."""
    from mopsbot.changes.states import InvalidTransition
    from mopsbot.errors import UserFacingError

    if state in ("approved", "rejected", "expired", "pending_approval"):
        fail(f"{state} is set by the approval flow, not by hand", code=2)
    try:
        _services(load()).changes.move(cr_id, state, as_user, reason, via="cli")
    except (InvalidTransition, UserFacingError) as err:
        fail(str(err))
    console.print(f"{cr_id.upper()} is now {state}")
