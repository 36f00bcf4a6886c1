"""Class 3 - the approval must not trust its own editable rows: an insider with SQL on the state store edits the
pending action, the change request or the draft behind it; the decision is refused, or only the sealed payload runs.
Every attack runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.redteam.kit import (
    CAMPAIGN_NAME,
    DANA,
    LENA,
    MARCUS,
    PRIYA,
    SAM,
    Rig,
    audit_guards_removed,
    dig,
    forge,
    pending_row,
    replace_deep,
    rewrite_payload,
    rows,
    set_columns,
    table,
    tamper_all_rows,
    ticketing_hook,
    update_row,
    verify,
    yaml_files,
)

MARKER = "all-contacts-attacker"
CR_MARKER = "ATTACKER: grant Salesforce admin to U07SC0005"
CONSENT = "Stop honouring the global unsubscribe list when sending webinar reminder emails."


def _row(rig: Rig, aid: str) -> dict[str, Any]:
    return pending_row(rig.engine, aid)


def _rewrite_payload(rig: Rig, aid: str, mutate: Callable[[Any], Any], with_hash: bool = True) -> None:
    rewrite_payload(rig.engine, aid, mutate, with_hash)


def _set(rig: Rig, aid: str, **values: Any) -> None:
    set_columns(rig.engine, aid, **values)


def _outcome(rig: Rig, aid: str, actor: str) -> str:
    from mopsbot.approvals import DecisionRefused

    try:
        return rig.decide(aid, actor).status
    except DecisionRefused:
        assert rig.executions(aid) == 0 and rig.status(aid) != "executed"
        assert rig.audit("decision.refused", aid), "a refused decision must be audited"
        return "refused"


def _campaign_mutation(payload: Any) -> Any:
    return replace_deep(replace_deep(payload, "emea-prospects", MARKER), 8000, 45000)


def _assert_sealed_campaign(rig: Rig) -> None:
    for name, body in yaml_files(rig).items():
        assert MARKER not in body and "45000" not in body, (name, body)
        assert "emea-prospects" in body, (name, body)


def test_payload_and_hash_rewritten_together_campaign(db_rig: Rig) -> None:
    """Class 3: rewrite a pending campaign's payload (audience, budget) and payload_hash together, then approve."""
    aid = db_rig.propose_campaign(drafter=LENA)
    _rewrite_payload(db_rig, aid, _campaign_mutation)
    outcome = _outcome(db_rig, aid, PRIYA)
    if outcome == "executed":
        assert yaml_files(db_rig), "executed but no version file"
        _assert_sealed_campaign(db_rig)
    else:
        assert outcome == "refused"
        assert any("envelope" in str(r["data"].get("reason", "")).lower() for r in db_rig.audit("decision.refused"))


def test_payload_rewritten_without_hash(db_rig: Rig) -> None:
    """Class 3: rewrite only the payload of a pending campaign (hash left stale), then approve."""
    aid = db_rig.propose_campaign(drafter=LENA)
    _rewrite_payload(db_rig, aid, _campaign_mutation, with_hash=False)
    outcome = _outcome(db_rig, aid, PRIYA)
    assert outcome in ("refused", "executed")
    _assert_sealed_campaign(db_rig)


def test_payload_and_hash_rewritten_together_change_request_ticket(
    make_rig: Callable[..., Rig], store_url: str
) -> None:
    """Class 3: rewrite a pending change request's payload+hash; the ticket POSTed must be the one shown."""
    with ticketing_hook(status=200) as hook:
        rig = make_rig(store_url, webhook=hook.url)
        aid = rig.file_change(SAM)
        shown = rig.get(aid)["payload"]
        _rewrite_payload(rig, aid, lambda p: replace_deep(p, shown_description(shown), CR_MARKER))
        if _outcome(rig, aid, DANA) in ("executed", "failed"):
            assert hook.requests, "executed but no ticket was posted"
            for request in hook.requests:
                assert CR_MARKER not in request["body"] and "Looker funnel" in request["body"]
        assert CR_MARKER not in json.dumps(rows(rig.engine, "change_requests"), default=str)


def shown_description(payload: Any) -> str:
    description = dig(payload, "description")
    assert isinstance(description, str) and description, payload
    return description


def test_kind_edited_from_consent_to_change_request(db_rig: Rig) -> None:
    """Class 3: flip kind consent_change -> change_request on a pending consent change so a manager may approve."""
    aid = db_rig.file_change(SAM, description=CONSENT, affected_systems=["Marketo"])
    _set(db_rig, aid, kind="change_request")
    assert _outcome(db_rig, aid, PRIYA) == "refused"
    assert _outcome(db_rig, aid, DANA) == "refused"


def test_risk_edited_from_high_to_low(db_rig: Rig) -> None:
    """Class 3: lower risk high -> low on a pending MQL-threshold change so an ops manager may approve."""
    aid = db_rig.file_change(SAM, description="Lower the MQL threshold in Marketo from 65 to 60.",
                             affected_systems=["Marketo"])  # fmt: skip
    _set(db_rig, aid, risk="low")
    assert _outcome(db_rig, aid, PRIYA) == "refused"


def test_required_group_edited_to_directors(db_rig: Rig) -> None:
    """Class 3: rewrite required_group privacy -> mops-directors on a pending consent change; the director approves."""
    aid = db_rig.file_change(SAM, description=CONSENT, affected_systems=["Marketo"])
    _set(db_rig, aid, required_group=["mops-directors"])
    assert _outcome(db_rig, aid, DANA) == "refused"


def test_requesters_edited_to_drop_the_drafter(db_rig: Rig) -> None:
    """Class 3: remove the drafter from requesters of her colleague-submitted campaign; she approves it."""
    aid = db_rig.propose_campaign(drafter=PRIYA, submitter=SAM)
    _set(db_rig, aid, requesters=[SAM])
    assert _outcome(db_rig, aid, PRIYA) == "refused"


def test_kind_risk_group_and_requesters_edited_together(db_rig: Rig) -> None:
    """Class 3: make a consent change look like a low-risk change request anyone in ops may approve."""
    aid = db_rig.file_change(MARCUS, description=CONSENT, affected_systems=["Marketo"])
    _set(db_rig, aid, kind="change_request", risk="low", required_group=["mops-managers"], requesters=[SAM])
    assert _outcome(db_rig, aid, MARCUS) == "refused"
    assert _outcome(db_rig, aid, PRIYA) == "refused"


def _as_utc(value: Any) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_expires_at_extended_does_not_revive_an_expired_action(
    make_rig: Callable[..., Rig], store_url: str, workspace_copy: Callable[..., Any]
) -> None:
    """Class 3: push expires_at of an expired pending change a year ahead, then approve it."""
    found = None
    for hours in (0, 0.0003):
        try:
            rig = make_rig(store_url, workspace=workspace_copy(lambda p, h=hours: p.__setitem__("expiry_hours", h)))
            aid = rig.file_change(SAM)
        except Exception:
            continue
        time.sleep(1.2 if hours else 0.05)
        if _as_utc(_row(rig, aid)["expires_at"]) <= datetime.now(UTC):
            found = rig, aid
            break
    if found is None:
        pytest.skip("the policy does not accept a sub-hour expiry, so an expired action cannot be made in a test")
    rig, aid = found
    old = _row(rig, aid)["expires_at"]
    later = datetime.now(UTC) + timedelta(days=365)
    update_row(rig.engine, "pending_actions", aid, expires_at=later.isoformat() if isinstance(old, str) else later)
    assert _outcome(rig, aid, DANA) == "refused"


def test_change_request_row_edited_after_proposal(make_rig: Callable[..., Rig], store_url: str) -> None:
    """Class 3: edit the change_requests row (title, description) the ticket is built from, then approve."""
    with ticketing_hook(status=200) as hook:
        rig = make_rig(store_url, webhook=hook.url)
        aid = rig.file_change(SAM)
        description = shown_description(rig.get(aid)["payload"])
        assert tamper_all_rows(rig.engine, "change_requests", description, CR_MARKER) >= 1
        if _outcome(rig, aid, DANA) in ("executed", "failed"):
            assert hook.requests, "executed but no ticket was posted"
            for request in hook.requests:
                assert CR_MARKER not in request["body"] and description in request["body"]


def test_change_request_row_category_edited_off_consent(db_rig: Rig) -> None:
    """Class 3: relabel the change_requests row of a consent change as content/change_request; the director approves."""
    aid = db_rig.file_change(SAM, description=CONSENT, affected_systems=["Marketo"])
    tamper_all_rows(db_rig.engine, "change_requests", "consent_change", "change_request")
    tamper_all_rows(db_rig.engine, "change_requests", "consent", "content")
    tamper_all_rows(db_rig.engine, "change_requests", "privacy", "mops-directors")
    assert _outcome(db_rig, aid, DANA) == "refused"


def test_campaign_draft_row_edited_after_submission(db_rig: Rig) -> None:
    """Class 3: edit the campaign_drafts row after submission (audience, budget); the approved version is the draft."""
    aid = db_rig.propose_campaign(drafter=LENA)
    assert tamper_all_rows(db_rig.engine, "campaign_drafts", "emea-prospects", MARKER) >= 1
    tamper_all_rows(db_rig.engine, "campaign_drafts", 8000, 45000)
    outcome = _outcome(db_rig, aid, PRIYA)
    if outcome == "executed":
        assert yaml_files(db_rig), "executed but no version file"
    _assert_sealed_campaign(db_rig)
    assert all(MARKER not in json.dumps(v, default=str) for v in db_rig.versions(CAMPAIGN_NAME))


def test_signed_envelope_forged_in_the_row_and_the_audit_log(make_rig: Callable[..., Rig], store_url: str) -> None:
    """Class 3: with MOPSBOT_SIGNING_KEY set, forge the pending row AND the audit action.proposed envelope."""
    rig = make_rig(store_url, signing_key="rt-signing-key-0123456789abcdef")
    aid = rig.file_change(SAM, description=CONSENT, affected_systems=["Marketo"])
    _set(rig, aid, kind="change_request", risk="low", required_group=["mops-directors"])
    (proposed,) = rig.audit("action.proposed", aid)
    data = proposed["data"]
    assert data.get("signature"), "precondition: the proposal entry is signed"
    envelope = dict(data["envelope"])
    forged = {**envelope, "kind": "change_request", "risk": "low", "approver_groups": ["mops-directors"]}
    forged_hash, _ = forge(envelope, data["envelope_hash"], forged)
    new_data = {**data, "envelope": forged, "envelope_hash": forged_hash}
    with audit_guards_removed(rig.engine) as conn:
        t = table(conn, "audit_events")
        raw = conn.execute(t.select().where(t.c.id == proposed["id"])).one()._mapping["data"]
        stored = json.dumps(new_data) if isinstance(raw, str) else new_data
        conn.execute(t.update().where(t.c.id == proposed["id"]).values(data=stored))
    assert _outcome(rig, aid, DANA) == "refused"
    assert verify(rig).exit_code == 1
