"""The team's campaign policy (tools/campaign_policy.yaml), validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mopsbot.workspace import WorkspaceError, load_yaml


class ProgramRule(BaseModel):
    code: str
    channel: str
    min_lead_time_days: int
    sop: str


class CampaignPolicy(BaseModel):
    currency: str
    regions: list[str]
    program_types: dict[str, ProgramRule]
    naming: dict[str, Any]
    required_fields: dict[str, Any]
    budget_caps: dict[str, Any]
    budget_approval: dict[str, Any]
    utm: dict[str, Any]
    consent: dict[str, Any]
    defaults: dict[str, Any]
    cpl_thresholds: dict[str, Any] = {}

    @classmethod
    def load(cls, tools_dir: Path) -> CampaignPolicy:
        path = tools_dir / "campaign_policy.yaml"
        try:
            return cls.model_validate(load_yaml(path))
        except ValidationError as err:
            first = err.errors()[0]
            raise WorkspaceError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    def cap(self, program_type: str, region: str) -> float | None:
        caps = self.budget_caps.get(program_type)
        return float(caps[region]) if isinstance(caps, dict) and region in caps else None

    def cpl_threshold(self, channel: str, region: str) -> float | None:
        """The monthly CPL alert threshold (USD) of a channel in a region, if the policy sets one."""
        cell = self.cpl_thresholds.get(channel)
        return float(cell[region]) if isinstance(cell, dict) and region in cell else None

    @property
    def min_leads_for_breach(self) -> int:
        return int(self.cpl_thresholds.get("min_leads_for_breach", 30))

    def approval_tier(self, budget: float) -> dict[str, Any]:
        for tier in self.budget_approval["tiers"]:
            if tier["max_usd"] is None or budget <= tier["max_usd"]:
                return tier
        return self.budget_approval["tiers"][-1]

    def risk(self, budget: float) -> str:
        """The approval risk of a config: the budget tier (low <= first tier, high above the second)."""
        tiers = self.budget_approval["tiers"]
        index = tiers.index(self.approval_tier(budget))
        return ("low", "medium", "high")[min(index, 2)]
