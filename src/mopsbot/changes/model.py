"""What a change request says, and the risk computed from it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

# Systems named in the stack docs (knowledge/stack/); a change must say which it touches.
SYSTEMS = (
    "Marketo",
    "Salesforce",
    "Segment",
    "ZoomInfo",
    "6sense",
    "ON24",
    "Looker",
    "LeanData",
    "Google Ads",
    "Microsoft Ads",
    "LinkedIn Ads",
    "Meta Ads",
    "TechTarget",
    "NetLine",
    "mops_dw",
    "Website",
)
_CONSENT = re.compile(r"consent|preference cent|gdpr|opt[- ]?in|unsubscrib|double opt", re.I)
_HIGH_RISK = re.compile(r"lead scor|routing|router|leandata|consent|preference cent|gdpr|opt[- ]?in|unsubscrib", re.I)


class ChangeRequestDraft(BaseModel):
    """A change request as proposed; its canonical JSON is the payload the approver sees and that is executed."""

    change_type: Literal["standard", "normal", "emergency"] = "normal"
    title: str = Field(min_length=5, max_length=200)
    description: str = Field(min_length=5, max_length=4000)
    affected_systems: list[str] = Field(min_length=1)
    implementation_plan: str = ""
    backout_plan: str = ""
    test_plan: str = ""

    @field_validator("affected_systems")
    @classmethod
    def _known_systems(cls, value: list[str]) -> list[str]:
        by_lower = {s.lower(): s for s in SYSTEMS}
        unknown = [v for v in value if v.lower() not in by_lower]
        if unknown:
            raise ValueError(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
        return sorted({by_lower[v.lower()] for v in value})

    def is_consent_change(self) -> bool:
        """Consent fields, logic, segments, preference center or double opt-in: approved by the DPO only."""
        return bool(_CONSENT.search(" ".join([self.title, self.description])))

    def missing_plans(self) -> list[str]:
        return [n for n in ("implementation_plan", "backout_plan", "test_plan") if not getattr(self, n).strip()]

    def risk(self) -> Literal["low", "medium", "high"]:
        """High if it touches lead scoring, routing or consent; medium for emergencies, several systems or
        the systems of record; low otherwise (sop-change-management-policy)."""
        text = " ".join([self.title, self.description, *self.affected_systems])
        if _HIGH_RISK.search(text) or "LeanData" in self.affected_systems:
            return "high"
        if (
            self.change_type == "emergency"
            or len(self.affected_systems) > 1
            or {"Salesforce", "Marketo"} & set(self.affected_systems)
        ):
            return "medium"
        return "low"
