"""The campaign linter: every finding at once, each with rule id, severity, field, fix hint and the defining SOP."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal

from mopsbot.campaigns.config import CampaignConfig
from mopsbot.campaigns.policy import CampaignPolicy


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Literal["error", "warning"]
    field: str
    message: str
    fix: str
    sop: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _a(program_type: str) -> str:
    """'an event', 'a paid social campaign'."""
    kind = program_type.replace("_", " ")
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def lint(config: CampaignConfig, policy: CampaignPolicy, today: date) -> list[Finding]:
    """All findings for `config` under `policy`, errors first."""
    out: list[Finding] = []
    ptype = policy.program_types[config.program_type]

    naming = policy.naming
    if not re.match(naming["pattern"], config.name):
        out.append(
            Finding(
                "naming.pattern",
                "error",
                "topic",
                f"name {config.name} does not follow the convention",
                f"use letters and digits in the topic, like {naming['example']}",
                naming["sop"],
            )
        )
    if len(config.topic.split()) > naming.get("topic_max_words", 4):
        out.append(
            Finding(
                "naming.topic_words",
                "error",
                "topic",
                f"the topic has {len(config.topic.split())} words (max {naming['topic_max_words']})",
                "shorten the topic",
                naming["sop"],
            )
        )

    required = policy.required_fields
    for field in [*required.get("all", []), *required.get(config.program_type, [])]:
        value = getattr(config, field, None)
        if value in (None, "", [], 0) and not (field == "budget" and value == 0):
            out.append(
                Finding(
                    "required.missing",
                    "error",
                    field,
                    f"{field} is required for {_a(config.program_type)}",
                    f"add {field}",
                    required["sop"],
                )
            )

    if config.end_date < config.start_date:
        out.append(
            Finding(
                "dates.order",
                "error",
                "end_date",
                "the campaign ends before it starts",
                "set end_date on or after start_date",
                ptype.sop,
            )
        )
    lead_days = (config.start_date - today).days
    if lead_days < ptype.min_lead_time_days:
        out.append(
            Finding(
                "lead_time.minimum",
                "error",
                "start_date",
                f"starts in {lead_days} days; {_a(config.program_type)} needs {ptype.min_lead_time_days}",
                f"start on or after {date.fromordinal(today.toordinal() + ptype.min_lead_time_days)}",
                ptype.sop,
            )
        )

    cap = policy.cap(config.program_type, config.region)
    if cap is not None and config.budget > cap:
        out.append(
            Finding(
                "budget.cap",
                "error",
                "budget",
                f"budget {config.budget:,.0f} is over the {config.program_type} cap for {config.region} ({cap:,.0f})",
                f"lower the budget to {cap:,.0f} or less, or split the program",
                policy.budget_caps["sop"],
            )
        )
    if config.currency != policy.currency:
        out.append(
            Finding(
                "budget.currency",
                "error",
                "currency",
                f"budgets are in {policy.currency}",
                f"convert the budget to {policy.currency}",
                policy.budget_caps["sop"],
            )
        )

    utm = policy.utm
    if config.utm_source and config.utm_source not in utm["sources"]:
        out.append(
            Finding(
                "utm.source",
                "error",
                "utm_source",
                f"{config.utm_source!r} is not an allowed utm_source",
                f"use one of {', '.join(utm['sources'])}",
                utm["sop"],
            )
        )
    expected_medium = utm["medium_by_program_type"][config.program_type]
    if config.utm_medium and config.utm_medium != expected_medium:
        out.append(
            Finding(
                "utm.medium",
                "error",
                "utm_medium",
                f"a {config.program_type} uses utm_medium {expected_medium!r}, not {config.utm_medium!r}",
                f"set utm_medium to {expected_medium}",
                utm["sop"],
            )
        )
    for field in ("utm_source", "utm_medium"):
        value = getattr(config, field)
        if value and not re.match(utm["slug_pattern"], value):
            out.append(
                Finding(
                    "utm.slug",
                    "error",
                    field,
                    f"{field} must be a lowercase slug",
                    f"use {value.lower().replace(' ', '-')}",
                    utm["sop"],
                )
            )

    consent = policy.consent
    if (
        config.region in consent["consent_required_regions"]
        and ptype.channel == "email"
        and not config.audience.endswith(consent["consented_segment_suffix"])
    ):
        out.append(
            Finding(
                "consent.segment",
                "error",
                "audience",
                f"{config.region} email audiences must use a consented segment",
                f"use a segment ending in {consent['consented_segment_suffix']}",
                consent["sop"],
            )
        )
    return sorted(out, key=lambda f: (f.severity != "error", f.rule))
