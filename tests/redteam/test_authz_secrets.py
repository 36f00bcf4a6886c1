"""Class 7 - smaller holes: outsiders moving someone's change request, a failing ticketing webhook leaking its URL or
token, CLI decisions not attributable, and CLI decisions when the workspace switched them off."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.redteam.kit import (
    DANA,
    LENA,
    NINA,
    RACHEL,
    SAM,
    TICKET_TOKEN,
    TOM,
    Rig,
    cli_refused,
    dump_tables,
    ticketing_hook,
)

CONSENT = "Stop honouring the global unsubscribe list when sending webinar reminder emails."


def _state(rig: Rig, cr: str) -> str:
    shown = rig.cli("changes", "show", cr, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)["state"]


def _approved_change(rig: Rig, **over: Any) -> tuple[str, str]:
    aid = rig.file_change(SAM, **over)
    approver = TOM if over.get("description") == CONSENT else DANA
    assert rig.decide(aid, approver).status == "executed"
    return aid, rig.change_id(aid)


def _move_refused(rig: Rig, cr: str, to: str, actor: str) -> None:
    from mopsbot.errors import UserFacingError

    before = _state(rig, cr)
    with pytest.raises(UserFacingError):
        rig.svc.changes.move(cr, to, actor, reason="tidying up")
    assert _state(rig, cr) == before
    refused = [r for r in rig.audit("change_request.move_refused", cr) if r["actor"] == actor]
    assert refused, "the refused move was not audited"


def test_an_outsider_cannot_start_implementing(rig: Rig) -> None:
    """Class 7: Nina (no group, not a requester) moves Sam's approved change to implementing."""
    _, cr = _approved_change(rig)
    _move_refused(rig, cr, "implementing", NINA)
    rig.svc.changes.move(cr, "implementing", DANA)  # an approver of the change may
    assert _state(rig, cr) == "implementing"


def test_an_outsider_cannot_cancel_a_pending_change(rig: Rig) -> None:
    """Class 7: Lena cancels Sam's change while it waits for approval."""
    aid = rig.file_change(SAM)
    _move_refused(rig, rig.change_id(aid), "cancelled", LENA)
    rig.assert_untouched(aid)


def test_a_member_of_another_approver_group_cannot_move_it(rig: Rig) -> None:
    """Class 7: Tom (privacy, not an approver group of this change) moves a plain change to implementing."""
    _, cr = _approved_change(rig)
    _move_refused(rig, cr, "implementing", TOM)


def test_the_vp_cannot_close_someone_elses_change(rig: Rig) -> None:
    """Class 7: Rachel (marketing-vps, not a change-request approver) closes an implemented change."""
    _, cr = _approved_change(rig)
    for state in ("implementing", "implemented"):
        rig.svc.changes.move(cr, state, SAM)
    _move_refused(rig, cr, "closed", RACHEL)


def test_the_director_cannot_move_a_consent_change(rig: Rig) -> None:
    """Class 7: Dana (not privacy, not a requester) starts implementing an approved consent change."""
    _, cr = _approved_change(rig, description=CONSENT, affected_systems=["Marketo"])
    _move_refused(rig, cr, "implementing", DANA)


@pytest.mark.parametrize(("actor", "prepare", "to"), [(NINA, (), "implementing"),
                                                      (LENA, ("implementing", "implemented"), "closed")],
                         ids=["outsider-implements", "outsider-closes"])  # fmt: skip
def test_cli_changes_move_by_an_outsider_is_refused(rig: Rig, actor: str, prepare: tuple, to: str) -> None:
    """Class 7: `mopsbot changes move CR STATE --as OUTSIDER`."""
    _, cr = _approved_change(rig)
    for state in prepare:
        assert rig.cli("changes", "move", cr, state, "--as", SAM).exit_code == 0
    before = _state(rig, cr)
    result = rig.cli("changes", "move", cr, to, "--as", actor)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert result.exit_code == 1 and not crashed, result.output
    assert _state(rig, cr) == before
    assert [r for r in rig.audit("change_request.move_refused", cr) if r["actor"] == actor]


# --- secrets of a failing ticketing webhook ----------------------------------------------------------------------


def _assert_no_leak(texts: list[str], leaks: list[str]) -> None:
    for where, content in enumerate(texts):
        for secret in leaks:
            assert secret not in content, f"{secret!r} leaked in output #{where}: {content[:800]}"


HOOKS = {
    "http-500": {"status": 500},
    "http-500-echoing-request": {"status": 500, "echo": True},
    "http-401-echoing-request": {"status": 401, "echo": True},
    "connection-refused": {"listening": False},
}


@pytest.mark.parametrize("hook_kind", HOOKS.values(), ids=HOOKS.keys())
def test_a_failing_webhook_never_leaks_its_url_or_token(make_rig: Callable[..., Rig], hook_kind: dict) -> None:
    """Class 7: the ticketing webhook (URL with ?token=, bearer token) fails; its secrets surface somewhere."""
    with ticketing_hook(**hook_kind) as hook:
        rig = make_rig(webhook=hook.url, token=TICKET_TOKEN)
        aid = rig.file_change(SAM)
        cr = rig.change_id(aid)
        from mopsbot.approvals import DecisionRefused

        try:
            result: Any = rig.decide(aid, DANA)
            outputs = [repr(result), str(getattr(result, "error", "")), json.dumps(result.result, default=str)]
        except DecisionRefused as err:
            outputs = [str(err)]
        if hook_kind.get("listening", True):
            assert hook.requests, "precondition: the webhook was called"
        outputs += [
            dump_tables(rig.engine, ("pending_actions", "action_executions", "audit_events", "change_requests")),
            rig.cli("approvals", "show", aid, "--json").output,
            rig.cli("changes", "show", cr, "--json").output,
            rig.cli("audit", "tail", "-n", "100", "--json").output,
        ]
        _assert_no_leak(outputs, hook.leaks())


def test_cli_approval_with_a_failing_webhook_prints_no_secret(make_rig: Callable[..., Rig]) -> None:
    """Class 7: `mopsbot approvals approve` of a change whose webhook answers 500 echoing the request."""
    with ticketing_hook(status=500, echo=True) as hook:
        rig = make_rig(webhook=hook.url, token=TICKET_TOKEN)
        aid = rig.file_change(SAM)
        result = rig.cli("approvals", "approve", aid, "--as", DANA)
        assert hook.requests, "precondition: the webhook was called"
        _assert_no_leak([result.output, rig.cli("approvals", "list", "--json").output], hook.leaks())


# --- CLI decisions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_cli_decisions_are_audited_with_via_and_os_user(rig: Rig, decision: str) -> None:
    """Class 7: a decision taken with `mopsbot approvals approve|reject --as U` is not attributable to the OS user."""
    aid = rig.file_change(SAM)
    args = ["approvals", decision, aid, "--as", DANA] + (["--reason", "duplicate"] if decision == "reject" else [])
    assert rig.cli(*args).exit_code == 0
    decided = [r for r in rig.audit(subject=aid) if r["actor"] == DANA and r["data"].get("via") == "cli"]
    assert decided and all(r["data"].get("os_user") == getpass.getuser() for r in decided), rig.audit(subject=aid)


def test_a_refused_cli_decision_is_audited_with_via_cli(rig: Rig) -> None:
    """Class 7: an outsider's `approvals approve --as NINA` is refused without a trace of who ran it."""
    aid = rig.file_change(SAM)
    assert cli_refused(rig.cli("approvals", "approve", aid, "--as", NINA))
    (row,) = rig.audit("decision.refused", aid)
    assert row["actor"] == NINA and row["data"].get("via") == "cli" and row["data"].get("os_user") == getpass.getuser()


def _no_cli_decisions(policy: dict) -> None:
    policy.setdefault("approvals", {})["allow_cli_decisions"] = False


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_cli_decisions_switched_off_are_refused(make_rig: Callable[..., Rig], workspace_copy: Callable[..., Any],
                                                decision: str) -> None:  # fmt: skip
    """Class 7: with allow_cli_decisions: false an approver still decides through the CLI."""
    rig = make_rig(workspace=workspace_copy(_no_cli_decisions))
    aid = rig.file_change(SAM)
    args = ["approvals", decision, aid, "--as", DANA] + (["--reason", "duplicate"] if decision == "reject" else [])
    assert cli_refused(rig.cli(*args))
    rig.assert_untouched(aid)
    assert rig.decide(aid, DANA, via="slack").status == "executed"  # Slack decisions still work
