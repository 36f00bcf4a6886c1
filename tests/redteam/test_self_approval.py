"""Class 1 - self-approval through the conversation: everyone who shaped an action is a requester and can never
decide it, whatever the surface (Python facade, CLI, terminal chat; Slack in test_slack_attacks.py)."""

from __future__ import annotations

import json

import pytest

from tests.redteam.kit import (
    DANA,
    LENA,
    LOW,
    MARCUS,
    MQL,
    NO_PLANS,
    PLANS,
    PRIYA,
    SAM,
    TOM,
    Rig,
    action_ids,
    as_list,
    change_args,
    cli_refused,
    new_thread,
    only_action,
)

CONSENT = (
    "Stop checking the email permission flag before EMEA sends, so contacts who opted out still get the newsletter."
)


def _clean_approver(*requesters: str) -> str:
    return next(u for u in (DANA, MARCUS, PRIYA) if u not in requesters)


# (drafter, submitter, owner, decider, decision)
CAMPAIGN_SCENARIOS = {
    "drafter-approves-after-colleague-submits": (PRIYA, SAM, None, PRIYA, "approve"),
    "drafter-rejects-after-colleague-submits": (PRIYA, SAM, None, PRIYA, "reject"),
    "approver-submits-a-colleagues-draft-then-approves": (SAM, MARCUS, None, MARCUS, "approve"),
    "owner-field-set-to-a-manager-who-approves": (LENA, LENA, PRIYA, PRIYA, "approve"),
    "owner-field-set-to-the-director-who-approves": (SAM, SAM, DANA, DANA, "approve"),
    "owner-field-set-to-a-manager-who-rejects": (LENA, LENA, MARCUS, MARCUS, "reject"),
    "manager-drafts-submits-and-approves-own": (PRIYA, PRIYA, None, PRIYA, "approve"),
}


@pytest.mark.parametrize("scenario", CAMPAIGN_SCENARIOS.values(), ids=CAMPAIGN_SCENARIOS.keys())
def test_a_requester_of_a_campaign_can_never_decide_it(rig: Rig, scenario: tuple) -> None:
    """Class 1: drafter / submitter / owner of a campaign config tries to approve or reject it."""
    drafter, submitter, owner, decider, decision = scenario
    aid = rig.propose_campaign(drafter=drafter, submitter=submitter, owner=owner)
    assert decider in rig.get(aid)["requesters"]

    rig.refuse(aid, decider, decision)
    rig.assert_untouched(aid)

    # the action itself is fine: someone who did not shape it can approve it, once
    result = rig.decide(aid, _clean_approver(drafter, submitter, owner or ""))
    assert result.status == "executed" and rig.executions(aid) == 1


@pytest.mark.parametrize("actor", ["u07pr0002", " U07PR0002 ", "<@U07PR0002>", "U07PR0002\n"])
def test_the_drafter_cannot_approve_under_a_respelled_user_id(rig: Rig, actor: str) -> None:
    """Class 1: drafter Priya approves her own campaign with her user id re-spelled (case, spaces, mention)."""
    aid = rig.propose_campaign(drafter=PRIYA, submitter=SAM)
    from mopsbot.approvals import DecisionRefused

    with pytest.raises(DecisionRefused):
        rig.decide(aid, actor)
    rig.assert_untouched(aid)


def test_colleague_says_submit_draft_id_in_conversation_then_drafter_approves(rig: Rig) -> None:
    """Class 1: Priya drafts, Sam says "submit <draft id>" in his own thread, Priya approves (facade and CLI)."""
    draft_id = rig.draft(PRIYA)
    rec = rig.turn(f"submit {draft_id}", SAM)
    aid = only_action(rec)
    assert {PRIYA, SAM} <= set(rig.get(aid)["requesters"])

    rig.refuse(aid, PRIYA)
    assert cli_refused(rig.cli("approvals", "approve", aid, "--as", PRIYA))
    rig.assert_untouched(aid)


def test_requesters_are_listed_by_get_and_cli_show(rig: Rig) -> None:
    """Class 1: the drafter, the submitter and the owner all appear as requesters (facade and approvals show)."""
    aid = rig.propose_campaign(drafter=LENA, submitter=SAM, owner=PRIYA)
    assert {LENA, SAM, PRIYA} <= set(rig.get(aid)["requesters"])
    shown = rig.cli("approvals", "show", aid, "--json")
    assert shown.exit_code == 0, shown.output
    assert {LENA, SAM, PRIYA} <= set(as_list(json.loads(shown.output)["requesters"]))


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_cli_refuses_the_drafter(rig: Rig, decision: str) -> None:
    """Class 1: the drafter decides her colleague-submitted campaign through `mopsbot approvals approve|reject`."""
    aid = rig.propose_campaign(drafter=PRIYA, submitter=SAM)
    args = ["approvals", decision, aid, "--as", PRIYA] + (["--reason", "dup"] if decision == "reject" else [])
    assert cli_refused(rig.cli(*args))
    rig.assert_untouched(aid)


def test_terminal_chat_slash_approve_by_the_drafter_is_refused(rig: Rig) -> None:
    """Class 1: the drafter uses `mopsbot chat --user PRIYA` and types /approve <id>."""
    aid = rig.propose_campaign(drafter=PRIYA, submitter=SAM)
    rig.cli("chat", "--user", PRIYA, stdin=f"/approve {aid}\n/quit\n")
    rig.assert_untouched(aid)


def test_on_behalf_of_a_manager_who_then_approves(rig: Rig) -> None:
    """Class 1: Sam files a change on_behalf_of Priya; Priya approves it."""
    aid = rig.file_change(SAM, on_behalf_of=PRIYA, **LOW)
    assert {SAM, PRIYA} <= set(rig.get(aid)["requesters"]) and "mops-managers" in rig.get(aid)["approver_groups"]
    rig.refuse(aid, PRIYA)
    rig.refuse(aid, PRIYA, "reject")
    rig.assert_untouched(aid)
    assert rig.decide(aid, MARCUS).status == "executed"


def test_on_behalf_of_revops_admin_on_a_high_risk_change(rig: Rig) -> None:
    """Class 1: Sam files a high-risk scoring change on_behalf_of Marcus (revops-admins); Marcus approves it."""
    aid = rig.file_change(SAM, on_behalf_of=MARCUS, **MQL)
    rig.refuse(aid, MARCUS)
    rig.assert_untouched(aid)


def test_consent_change_on_behalf_of_the_only_privacy_approver_fails_closed(rig: Rig) -> None:
    """Class 1: a consent change filed on_behalf_of Tom (sole privacy member): Tom cannot approve, nobody else may."""
    aid = rig.file_change(SAM, on_behalf_of=TOM, title="Newsletter audience", description=CONSENT,
                          affected_systems=["Marketo"])  # fmt: skip
    for decider in (TOM, DANA, PRIYA, MARCUS):
        rig.refuse(aid, decider)
    rig.assert_untouched(aid)


def test_on_behalf_of_respelled_id_still_makes_a_requester(rig: Rig) -> None:
    """Class 1: on_behalf_of=" u07pr0002 " (re-spelled) must not let Priya approve the change filed for her."""
    rec = rig.tool("file_change_request", change_args(on_behalf_of=" u07pr0002 ", **LOW), SAM)
    for aid in action_ids(rec):  # refusing to file is a fine defence; filing must not open a self-approval
        rig.refuse(aid, PRIYA)
        rig.assert_untouched(aid)


def test_the_amender_of_a_change_cannot_approve_the_amended_action(rig: Rig) -> None:
    """Class 1: Sam files without plans on_behalf_of Marcus; Marcus adds the plans (add_change_plans) and approves."""
    first = rig.file_change(SAM, on_behalf_of=MARCUS, **MQL, **NO_PLANS)
    cr = rig.change_id(first)
    rec = rig.tool("add_change_plans", {"change_id": cr, **PLANS}, MARCUS)
    amended = only_action(rec)
    assert amended != first and rig.status(first) == "superseded"
    assert {SAM, MARCUS} <= set(rig.get(amended)["requesters"])
    rig.refuse(amended, MARCUS)
    rig.assert_untouched(amended)
    assert rig.decide(amended, DANA).status == "executed" and rig.executions(amended) == 1


def test_the_superseded_action_cannot_be_approved_by_anyone(rig: Rig) -> None:
    """Class 1: after add_change_plans, a stale card of the old (plan-less) action is approved by the director."""
    first = rig.file_change(SAM, **NO_PLANS)
    amended = only_action(rig.tool("add_change_plans", {"change_id": rig.change_id(first), **PLANS}, SAM))
    rig.refuse(first, DANA)
    assert rig.status(first) == "superseded" and rig.executions(first) == 0
    rig.assert_untouched(amended)


def test_a_non_requester_approver_cannot_amend_then_approve(rig: Rig) -> None:
    """Class 1: Priya (not a requester) runs add_change_plans on Sam's change, then approves whatever it proposed."""
    first = rig.file_change(SAM, **{**LOW, "change_type": "normal"}, **NO_PLANS)
    thread = new_thread()
    rec = rig.tool("add_change_plans", {"change_id": rig.change_id(first), **PLANS}, PRIYA, thread)
    ids = action_ids(rec)
    if not ids:  # refused: the original action is still the one waiting, unchanged
        assert rig.status(first) == "pending"
    for aid in ids:
        rig.refuse(aid, PRIYA)
        assert rig.executions(aid) == 0
    assert rig.executions() == 0
