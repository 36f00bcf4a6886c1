"""Drafts (bot state), policy defaults, and the executor that writes an approved config as a new version."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from mopsbot.campaigns.config import CampaignConfig
from mopsbot.campaigns.lint import Finding
from mopsbot.campaigns.policy import CampaignPolicy
from mopsbot.store.db import Store
from mopsbot.store.models import CampaignDraft, PendingAction

DEFAULT_LENGTH_DAYS = {"webinar": 14, "event": 3, "email": 7, "nurture": 90}


def with_defaults(fields: dict[str, Any], policy: CampaignPolicy, requester: str) -> tuple[dict[str, Any], list[str]]:
    """The brief completed from the policy's defaults; returns (fields, names of the fields that were filled)."""
    out = {k: v for k, v in fields.items() if v not in (None, "", [])}
    ptype = out.get("program_type")
    defaults: dict[str, Any] = {"currency": policy.defaults.get("currency", policy.currency), "owner": requester}
    if ptype in policy.program_types:
        defaults["sop"] = policy.program_types[ptype].sop
        defaults["utm_medium"] = policy.utm["medium_by_program_type"].get(ptype, "")
        defaults["utm_source"] = policy.defaults.get("utm_source_by_program_type", {}).get(ptype, "")
        if ptype == "webinar":
            defaults["webinar_platform"] = policy.defaults.get("webinar_platform", "")
        if "start_date" in out and "end_date" not in out:
            start = date.fromisoformat(str(out["start_date"]))
            defaults["end_date"] = (start + timedelta(days=DEFAULT_LENGTH_DAYS.get(ptype, 30))).isoformat()
    filled = [k for k, v in defaults.items() if v and k not in out]
    return {**{k: defaults[k] for k in filled}, **out}, filled


def to_yaml(config: CampaignConfig) -> str:
    """The config as the approver reads it: name first, empty optional fields left out."""
    data = config.model_dump(mode="json")
    shown = {"name": data.pop("name")} | {k: v for k, v in data.items() if v not in ("", [], None)}
    return yaml.safe_dump(shown, sort_keys=False, allow_unicode=True)


def save_draft(store: Store, config: CampaignConfig, findings: list[Finding], requester: str) -> str:
    with store.session() as s:
        draft = CampaignDraft(
            name=config.name,
            config=config.model_dump(mode="json"),
            findings=[f.as_dict() for f in findings],
            status="draft",
            requester_id=requester,
        )
        s.add(draft)
        s.flush()
        return draft.id


def get_draft(store: Store, draft_id: str) -> CampaignDraft | None:
    with store.session() as s:
        draft = s.get(CampaignDraft, draft_id)
        if draft is not None:
            s.expunge(draft)
        return draft


def mark_draft_submitted(store: Store, draft_id: str, action_id: str) -> None:
    with store.session() as s:
        draft = s.get(CampaignDraft, draft_id)
        if draft is not None:
            draft.status = "submitted"
            draft.action_id = action_id


def list_campaigns(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    with store.session() as s:
        q = select(CampaignDraft).order_by(CampaignDraft.created_at)
        if status:
            q = q.where(CampaignDraft.status == status)
        return [
            {
                "id": d.id,
                "name": d.name,
                "status": d.status,
                "version": d.version,
                "requester": d.requester_id,
                "errors": sum(1 for f in d.findings if f.get("severity") == "error"),
            }
            for d in s.scalars(q)
        ]


def make_executor(store: Store, export_dir: Path):
    """Writes the approved config (the stored payload, exactly) as the next version: DB row + YAML file."""

    def execute(payload: str, action: PendingAction) -> dict[str, Any]:
        approved = json.loads(payload)
        config = approved["config"]
        name = config["name"]
        with store.session() as s:
            version = 1 + (
                s.scalar(
                    select(func.count())
                    .select_from(CampaignDraft)
                    .where(CampaignDraft.name == name, CampaignDraft.status == "approved")
                )
                or 0
            )
            draft = s.get(CampaignDraft, approved["draft_id"])
            if draft is not None:
                draft.status = "approved"
                draft.version = version
                draft.action_id = action.id
        path = export_dir / name / f"v{version}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return {"campaign": name, "version": version, "path": str(path)}

    return execute
