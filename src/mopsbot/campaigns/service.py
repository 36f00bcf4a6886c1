"""Drafts (bot state), policy defaults, and the executor that writes an approved config as a new version."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mopsbot.campaigns.config import CampaignConfig
from mopsbot.campaigns.lint import Finding
from mopsbot.campaigns.policy import CampaignPolicy
from mopsbot.store.db import Store
from mopsbot.store.models import CampaignDraft, CampaignVersion, PendingAction

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


class CampaignConfigHandler:
    """Effects of a campaign_config action: the draft is marked submitted; approval writes the next version.

    Idempotent per action (a version row's action_id is unique), so an interrupted run may be resumed unattended.
    """

    resumable = True

    def __init__(self, store: Store, export_dir: Path) -> None:
        self.store = store
        self.export_dir = export_dir

    def on_proposed(self, session: Session, action: PendingAction, proposal: Any) -> dict[str, Any]:
        draft = session.get(CampaignDraft, proposal.payload["draft_id"])
        if draft is not None:
            draft.status = "submitted"
            draft.action_id = action.id
        return {"draft_id": proposal.payload["draft_id"]}

    def check(self, action: Any) -> None:
        return None

    def execute(self, action: Any, key: str | None = None) -> dict[str, Any]:
        """The sealed config, exactly, as a new version: a unique (campaign, version) row, a file never overwritten.
        Run again for the same action (`key` is its execution's), it returns the version written the first time."""
        written = self._written(action.id)
        if written is not None:
            return written
        approved = action.payload
        config = approved["config"]
        name = str(config["name"])
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"campaign name {name!r} cannot be used as a folder name")
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        folder = self.export_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        floor = 1
        for _ in range(20):  # another approver may take the same number at the same moment: the unique key decides
            with self.store.session() as s:
                taken = s.scalar(select(func.max(CampaignVersion.version)).where(CampaignVersion.campaign == name)) or 0
            version = max(taken + 1, floor)
            path = folder / f"v{version}.yaml"
            try:
                with self.store.session() as s:
                    s.add(CampaignVersion(campaign=name, version=version, action_id=action.id, config_sha256=digest,
                                          path=str(path)))  # fmt: skip
                    s.flush()
                    _write_new(path, text)  # inside the transaction: a file that exists already rolls the row back
                    draft = s.get(CampaignDraft, approved["draft_id"])
                    if draft is not None:
                        draft.status = "approved"
                        draft.version = version
                return {"campaign": name, "version": version, "path": str(path), "config_sha256": digest}
            except IntegrityError:
                written = self._written(action.id)
                if written is not None:  # a concurrent run of this same action got there first
                    return written
            except FileExistsError:  # another action's run crashed between its file and its row: leave that file be
                floor = version + 1
        raise RuntimeError(f"could not allocate a version of {name}")

    def _written(self, action_id: str) -> dict[str, Any] | None:
        """The version an earlier run of this action wrote, as that run returned it."""
        with self.store.session() as s:
            row = s.scalars(select(CampaignVersion).where(CampaignVersion.action_id == action_id)).one_or_none()
            if row is None:
                return None
            return {
                "campaign": row.campaign,
                "version": row.version,
                "path": row.path,
                "config_sha256": row.config_sha256,
            }

    def on_closed(self, action: Any, status: str, actor: str, reason: str | None) -> None:
        with self.store.session() as s:
            draft = s.get(CampaignDraft, action.payload.get("draft_id"))
            if draft is not None and draft.action_id == action.id and draft.status == "submitted":
                draft.status = status if status in ("rejected", "expired") else "draft"


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def _write_new(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temp file, fsync, hard link); never overwrites. A regular file already
    there with exactly `text` is kept (a crashed run of this write left it); anything else: FileExistsError."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails with FileExistsError when the version file is already there
        except FileExistsError:
            if path.is_symlink() or not path.is_file() or path.read_text(encoding="utf-8") != text:
                raise
    finally:
        Path(tmp).unlink(missing_ok=True)
