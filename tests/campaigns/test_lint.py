"""CampaignConfig naming, policy defaults and every linter rule, each citing its SOP."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mopsbot.campaigns.config import CampaignConfig, topic_slug
from mopsbot.campaigns.lint import lint
from mopsbot.campaigns.policy import CampaignPolicy
from mopsbot.campaigns.service import with_defaults

REPO = Path(__file__).resolve().parents[2]
POLICY = CampaignPolicy.load(REPO / "tools")
TODAY = date(2026, 11, 15)
CLEAN = {
    "program_type": "webinar",
    "topic": "AI ops",
    "region": "EMEA",
    "audience": "emea-prospects",
    "start_date": "2027-01-20",
    "end_date": "2027-02-03",
    "budget": 8000,
    "owner": "U07LV0004",
    "utm_source": "on24",
    "utm_medium": "webinar",
    "kpis": [{"metric": "mqls", "target": 150}],
    "speakers": ["Dana Whitfield"],
    "registration_form": "rf-ai-ops",
    "webinar_platform": "on24",
}


def rules(**changes: object) -> set[str]:
    return {f.rule for f in lint(CampaignConfig.model_validate(CLEAN | changes), POLICY, TODAY)}


def test_name_is_generated_by_the_naming_convention() -> None:
    config = CampaignConfig.model_validate(CLEAN)
    assert config.name == "2027-Q1_WBN_AI-Ops_EMEA" and config.utm_campaign == "2027-q1_wbn_ai-ops_emea"
    assert topic_slug("lead scoring 101") == "Lead-Scoring-101"


def test_a_clean_config_has_no_findings() -> None:
    assert rules() == set()


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"budget": 12500}, "budget.cap"),
        ({"currency": "EUR"}, "budget.currency"),
        ({"start_date": "2026-11-20"}, "lead_time.minimum"),
        ({"end_date": "2027-01-01"}, "dates.order"),
        ({"speakers": []}, "required.missing"),
        ({"utm_source": "tiktok"}, "utm.source"),
        ({"utm_medium": "cpc"}, "utm.medium"),
        ({"topic": "a very long topic with many words"}, "naming.topic_words"),
    ],
)
def test_each_rule(changes: dict, rule: str) -> None:
    assert rule in rules(**changes)


def test_emea_email_needs_a_consented_segment_and_findings_cite_sops() -> None:
    config = CampaignConfig.model_validate(
        CLEAN
        | {
            "program_type": "email",
            "utm_source": "marketo",
            "utm_medium": "email",
            "send_list": "l",
            "sender_address": "s",
        }
    )
    findings = lint(config, POLICY, TODAY)
    consent = next(f for f in findings if f.rule == "consent.segment")
    assert consent.severity == "error" and consent.field == "audience" and consent.fix.endswith("-consented")
    assert consent.sop == "sop-consent-gdpr-preference-center"
    ok = CampaignConfig.model_validate(config.model_dump() | {"audience": "emea-customers-consented"})
    assert "consent.segment" not in {f.rule for f in lint(ok, POLICY, TODAY)}


def test_all_findings_come_at_once() -> None:
    found = rules(budget=99999, currency="EUR", utm_source="tiktok", speakers=[])
    assert {"budget.cap", "budget.currency", "utm.source", "required.missing"} <= found


def test_defaults_come_from_the_policy_and_are_named() -> None:
    fields, filled = with_defaults(
        {"program_type": "webinar", "topic": "x", "region": "NA", "start_date": "2027-03-01", "budget": 5000},
        POLICY,
        "U07SC0005",
    )
    assert fields["currency"] == "USD" and fields["webinar_platform"] == "on24"
    assert fields["utm_source"] == "on24" and fields["utm_medium"] == "webinar" and fields["end_date"] == "2027-03-15"
    assert set(filled) == {"currency", "owner", "sop", "utm_medium", "utm_source", "webinar_platform", "end_date"}


def test_risk_follows_the_budget_tiers() -> None:
    assert [POLICY.risk(b) for b in (8000, 10000, 10001, 50000, 60000)] == ["low", "low", "medium", "medium", "high"]


def test_published_json_schema_is_current() -> None:
    published = json.loads((REPO / "docs" / "campaign_config.schema.json").read_text())
    assert published == CampaignConfig.model_json_schema(mode="serialization")
