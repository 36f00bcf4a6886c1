"""Class 2 - approver routing must not depend on keywords or on the caller's hints: consent changes in any wording
go to privacy only, scoring/routing changes are high, unclear changes take the strictest route with a reason, and a
normal/high change without its plans cannot be approved."""

from __future__ import annotations

import re

import pytest

from tests.redteam.kit import (
    DANA,
    LENA,
    MARCUS,
    NO_PLANS,
    PLANS,
    PRIYA,
    RACHEL,
    SAM,
    TOM,
    Rig,
    action_ids,
    campaign_args,
    cli_refused,
    dig,
    only_action,
    rows,
)

# (description, affected systems, caller's category hint, change_type) - none of them says "consent"
CONSENT_WORDINGS = {
    "permission-flag": (
        "Stop checking the email permission flag before EMEA sends, so contacts who opted out still get the "
        "newsletter.", ["Marketo"], None, "normal"),
    "unsubscribed-filter": (
        "Remove the 'Unsubscribed is false' filter from the Q1 nurture smart list so every lead in the database "
        "gets the nurture.", ["Marketo"], "content", "normal"),
    "marketing-suspended": (
        "Set Marketing Suspended and Unsubscribed to false for the 4,000 contacts imported from the Berlin event.",
        ["Marketo"], "sync", "standard"),
    "double-opt-in": (
        "Turn off double opt-in for DE, AT and CH form fills on the website so new leads are mailable right away.",
        ["Website", "Marketo"], "other", "normal"),
    "salesforce-opt-out": (
        "Bulk update Email Opt Out to unchecked on all Salesforce leads owned by the SDR team.",
        ["Salesforce"], "taxonomy", "normal"),
    "pre-ticked-box": (
        "Pre-tick the 'send me product news' checkbox on the demo request form so nobody has to click it.",
        ["Website"], "content", "standard"),
    "lawful-basis": (
        "Sync the lawful basis field from Salesforce to Marketo as legitimate interest for every EMEA record so "
        "they can all be emailed.", ["Salesforce", "Marketo"], "sync", "normal"),
    "global-unsubscribe": (
        "Stop honouring the global unsubscribe list when sending webinar reminder emails.",
        ["Marketo"], "other", "normal"),
    "re-import-suppressed": (
        "Re-import the suppressed and opted-out addresses into the main marketing list so they can be mailed again.",
        ["Marketo"], "data_deletion", "normal"),
    "preference-center": (
        "Hide the preference center link in the email footer and default everyone to all subscriptions.",
        ["Marketo", "Website"], "content", "normal"),
    "removed-people": (
        "Let the SDR sequences keep emailing people who asked to be removed from marketing emails.",
        ["Salesforce"], None, "normal"),
}  # fmt: skip


def _assert_privacy_only(rig: Rig, aid: str) -> None:
    action = rig.get(aid)
    assert action["kind"] == "consent_change", action["kind"]
    assert set(action["approver_groups"]) == {"privacy"}, action["approver_groups"]
    assert action["risk"] == "high"


@pytest.mark.parametrize("wording", CONSENT_WORDINGS.values(), ids=CONSENT_WORDINGS.keys())
def test_a_consent_change_in_other_words_goes_to_privacy_only(rig: Rig, wording: tuple) -> None:
    """Class 2: a consent change phrased without the word "consent" is approved by the director instead of privacy."""
    description, systems, category, change_type = wording
    aid = rig.file_change(SAM, title="Audience update", description=description, affected_systems=systems,
                          category=category, change_type=change_type)  # fmt: skip
    _assert_privacy_only(rig, aid)
    rig.refuse(aid, DANA)
    rig.assert_untouched(aid)
    assert rig.decide(aid, TOM).status == "executed"  # the DPO still can


@pytest.mark.parametrize("category", ["content", "reporting", "taxonomy", "scoring"])
def test_a_caller_category_hint_cannot_lower_a_consent_route(rig: Rig, category: str) -> None:
    """Class 2: the caller labels a consent change with a milder category to route it to ops managers."""
    aid = rig.file_change(SAM, title="Newsletter reach", description=CONSENT_WORDINGS["permission-flag"][0],
                          affected_systems=["Marketo"], category=category)  # fmt: skip
    _assert_privacy_only(rig, aid)
    rig.refuse(aid, PRIYA)
    rig.assert_untouched(aid)


@pytest.mark.parametrize("change_type", ["standard", "emergency"])
def test_a_change_type_cannot_lower_a_consent_route(rig: Rig, change_type: str) -> None:
    """Class 2: a consent change filed as a pre-approved "standard" or rushed "emergency" change."""
    aid = rig.file_change(SAM, title="Newsletter reach", change_type=change_type, affected_systems=["Marketo"],
                          description=CONSENT_WORDINGS["global-unsubscribe"][0])  # fmt: skip
    _assert_privacy_only(rig, aid)
    rig.refuse(aid, DANA)
    rig.assert_untouched(aid)


def test_nobody_but_privacy_approves_a_consent_change(rig: Rig) -> None:
    """Class 2: director, managers, revops admin and the VP each try to approve a consent change."""
    aid = rig.file_change(LENA, title="Newsletter reach", description=CONSENT_WORDINGS["double-opt-in"][0],
                          affected_systems=["Website"])  # fmt: skip
    for decider in (DANA, PRIYA, MARCUS, RACHEL):
        rig.refuse(aid, decider)
    rig.assert_untouched(aid)
    assert rig.decide(aid, TOM).status == "executed" and rig.executions(aid) == 1


def test_cli_director_cannot_approve_a_consent_change(rig: Rig) -> None:
    """Class 2: the director approves a reworded consent change through the CLI."""
    aid = rig.file_change(SAM, title="Audience", description=CONSENT_WORDINGS["salesforce-opt-out"][0],
                          affected_systems=["Salesforce"])  # fmt: skip
    assert cli_refused(rig.cli("approvals", "approve", aid, "--as", DANA))
    rig.assert_untouched(aid)


def test_a_consent_field_named_only_in_fields_still_routes_to_privacy(rig: Rig) -> None:
    """Class 2: a bland description with the opt-out field only in `fields` is approved by a manager."""
    rec = rig.tool("file_change_request", {
        "change_type": "normal", "title": "Field cleanup", "affected_systems": ["Marketo"],
        "description": "Normalize the values of this field on imported records.", "fields": ["Unsubscribed"], **PLANS,
    }, SAM)  # fmt: skip
    for aid in action_ids(rec):  # rejecting an unknown field is fine; a filed change must go to privacy
        assert set(rig.get(aid)["approver_groups"]) == {"privacy"}
        rig.refuse(aid, PRIYA)
        rig.assert_untouched(aid)


SCORING_WORDINGS = {
    "mql-threshold": ("Lower the MQL threshold in Marketo from 65 to 60.", ["Marketo"], "reporting", "normal"),
    "mql-points": ("Change the lead score a lead needs to become an MQL from 65 to 60 points.", ["Marketo"], "content",
                   "standard"),
    "leandata-routing": ("Update LeanData routing so EMEA enterprise leads go to the NA SDR queue.", ["LeanData"],
                         None, "normal"),
}  # fmt: skip


@pytest.mark.parametrize("wording", SCORING_WORDINGS.values(), ids=SCORING_WORDINGS.keys())
def test_scoring_and_routing_changes_are_high_risk(rig: Rig, wording: tuple) -> None:
    """Class 2: a lead-scoring / routing change labelled mild is approved by an ops manager."""
    description, systems, category, change_type = wording
    aid = rig.file_change(SAM, title="Threshold update", description=description, affected_systems=systems,
                          category=category, change_type=change_type)  # fmt: skip
    action = rig.get(aid)
    assert action["risk"] == "high" and set(action["approver_groups"]) == {"mops-directors", "revops-admins"}
    rig.refuse(aid, PRIYA)
    rig.assert_untouched(aid)
    assert rig.decide(aid, DANA).status == "executed"


UNCLEAR = {
    "tweak-we-discussed": ("Make the tweak we discussed on Thursday to the contact fields in Marketo.", ["Marketo"]),
    "new-form-settings": ("Apply the new settings to the EMEA forms.", ["Website"]),
    "clean-up-lists": ("Clean up the lists before the next big send.", ["Marketo"]),
}


@pytest.mark.parametrize("wording", UNCLEAR.values(), ids=UNCLEAR.keys())
def test_an_unclear_change_takes_the_strictest_route_with_a_reason(rig: Rig, wording: tuple) -> None:
    """Class 2: a vague change that may touch consent is approved by the director."""
    description, systems = wording
    aid = rig.file_change(SAM, title="Small update", description=description, affected_systems=systems,
                          category="other")  # fmt: skip
    action = rig.get(aid)
    assert set(action["approver_groups"]) == {"privacy"}
    assert any("could not rule out a consent change" in r for r in action["routing_reasons"]), action
    rig.refuse(aid, DANA)
    rig.assert_untouched(aid)


def _names(plans: list[str]) -> set[str]:
    return {re.sub(r"[^a-z]", "", p.lower()).removesuffix("plan") for p in plans}


def test_a_high_risk_change_without_plans_cannot_be_approved(rig: Rig) -> None:
    """Class 2: a high-risk MQL change with empty plans is approved; the refusal must name the missing plans."""
    aid = rig.file_change(SAM, title="MQL threshold", description=SCORING_WORDINGS["mql-threshold"][0],
                          affected_systems=["Marketo"], **NO_PLANS)  # fmt: skip
    message = rig.refuse(aid, DANA).lower()
    rig.assert_untouched(aid)
    for plan in ("implementation", "backout", "test"):
        assert re.search(rf"{plan}[ _]plan", message), message
    assert _names(rig.get(aid)["missing_plans"]) == {"implementation", "backout", "test"}


def test_a_normal_change_missing_one_plan_names_that_plan(rig: Rig) -> None:
    """Class 2: a normal change with only the test plan left empty is approved anyway."""
    aid = rig.file_change(SAM, test_plan="")
    message = rig.refuse(aid, DANA).lower()
    rig.assert_untouched(aid)
    assert re.search(r"test[ _]plan", message) and not re.search(r"backout[ _]plan", message), message
    assert _names(rig.get(aid)["missing_plans"]) == {"test"}


def test_whitespace_plans_count_as_missing(rig: Rig) -> None:
    """Class 2: plans made of blanks and newlines slip past the empty-plan check."""
    blanks = {"implementation_plan": "   ", "backout_plan": "\n\t", "test_plan": " \n "}
    aid = rig.file_change(
        SAM, description=SCORING_WORDINGS["leandata-routing"][0], affected_systems=["LeanData"], **blanks
    )
    rig.refuse(aid, DANA)
    rig.assert_untouched(aid)


def test_adding_plans_supersedes_and_then_approval_works_once(rig: Rig) -> None:
    """Class 2: after add_change_plans the new action is approvable exactly once and the old one never."""
    first = rig.file_change(SAM, description=SCORING_WORDINGS["mql-threshold"][0], affected_systems=["Marketo"],
                            **NO_PLANS)  # fmt: skip
    rig.refuse(first, DANA)
    amended = only_action(rig.tool("add_change_plans", {"change_id": rig.change_id(first), **PLANS}, SAM))
    assert rig.status(first) == "superseded"
    assert rig.decide(amended, DANA).status == "executed"
    rig.refuse(amended, MARCUS)
    assert rig.executions(amended) == 1 and rig.executions(first) == 0
    assert rig.get(amended)["missing_plans"] == []


def test_an_email_campaign_to_non_consented_emea_contacts_is_never_written(rig: Rig) -> None:
    """Class 2: an EMEA email campaign to a non-consented list is submitted and approved by a manager."""
    args = campaign_args(
        program_type="email", topic="Product News", start_date="2027-02-01", budget=2000,
        audience="emea-all-contacts",
        extra={"send_list": "emea-all-contacts", "sender_address": "news@brightwave.example"},
    )  # fmt: skip
    rec = rig.tool("draft_campaign_config", args, LENA)
    draft_id = dig(rec, "draft_id")
    if draft_id:
        submitted = rig.tool("submit_campaign_config", {"draft_id": draft_id}, LENA)
        for aid in action_ids(submitted):
            for approver in (PRIYA, DANA):
                try:
                    rig.decide(aid, approver)
                except Exception:  # refusals are the expected outcome
                    continue
    assert rows(rig.engine, "campaign_versions", campaign="2027-Q1_EML_Product-News_EMEA") == []
    assert not (rig.data_dir / "campaigns" / "2027-Q1_EML_Product-News_EMEA").exists()
