"""Who may approve what (tools/approvals.yaml): groups, rules by action kind and risk, expiry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mopsbot.workspace import load_yaml


@dataclass(frozen=True)
class ApprovalPolicy:
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    rules: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)
    expiry_hours: float = 72.0
    allow_cli_decisions: bool = True
    version: str = "none"  # SHA-256 of the file, sealed into every envelope

    @classmethod
    def load(cls, tools_dir: Path) -> ApprovalPolicy:
        """Read tools/approvals.yaml; a missing file means no approvers at all (every approval fails closed)."""
        path = tools_dir / "approvals.yaml"
        if not path.exists():
            return cls()
        spec: dict[str, Any] = load_yaml(path)
        groups = {g: frozenset((v or {}).get("members") or []) for g, v in (spec.get("groups") or {}).items()}
        rules = {
            kind: {risk: tuple(gs or []) for risk, gs in (by_risk or {}).items()}
            for kind, by_risk in (spec.get("rules") or {}).items()
        }
        people = {uid: (p or {}).get("name", uid) for uid, p in (spec.get("people") or {}).items()}
        settings = spec.get("approvals") or {}
        return cls(
            groups,
            rules,
            people,
            float(spec.get("expiry_hours", 72)),
            allow_cli_decisions=bool(settings.get("allow_cli_decisions", True)),
            version=hashlib.sha256(path.read_bytes()).hexdigest(),
        )

    def approver_groups(self, kind: str, risk: str) -> tuple[str, ...]:
        """Groups whose members may approve this kind at this risk; empty means nobody can (fail closed)."""
        return tuple(g for g in self.rules.get(kind, {}).get(risk, ()) if self.groups.get(g))

    def may_approve(self, user_id: str, kind: str, risk: str) -> bool:
        return self.in_any(user_id, self.approver_groups(kind, risk))

    def in_any(self, user_id: str, groups: tuple[str, ...] | list[str]) -> bool:
        return any(user_id in self.groups.get(g, frozenset()) for g in groups)

    def groups_of(self, user_id: str) -> list[str]:
        return [g for g, members in self.groups.items() if user_id in members]

    def name(self, user_id: str) -> str:
        return self.people.get(user_id, user_id)
