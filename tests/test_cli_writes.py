"""`mopsbot approvals|campaigns|changes` on a scratch state store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mopsbot.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def indexed(monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(knowledge_index_dir))
    monkeypatch.setenv("MOPSBOT_TODAY", "2026-11-15")


CHANGE = (
    "file a change request to update the Looker funnel dashboard. implementation: edit the funnel explore; "
    "backout: revert the LookML commit; test: compare the tile with the warehouse for October"
)


def _file_change() -> str:
    runner.invoke(app, ["ask", CHANGE, "--user", "U07SC0005"])
    rows = json.loads(runner.invoke(app, ["approvals", "list", "--json"]).output)
    assert len(rows) == 1 and rows[0]["kind"] == "change_request"
    return rows[0]["id"]


def test_list_show_approve_and_refusals() -> None:
    action_id = _file_change()
    shown = runner.invoke(app, ["approvals", "show", action_id])
    assert "payload (exactly what runs)" in shown.output and "payload_hash" in shown.output
    refused = runner.invoke(app, ["approvals", "approve", action_id, "--as", "U07SC0005"])
    assert refused.exit_code == 1 and "cannot decide it" in refused.output
    manager = runner.invoke(app, ["approvals", "approve", action_id, "--as", "U07PR0002"])
    assert manager.exit_code == 1 and "not in mops-directors" in " ".join(manager.output.split())  # medium risk
    ok = runner.invoke(app, ["approvals", "approve", action_id, "--as", "U07DW0001"])
    assert ok.exit_code == 0, ok.output
    assert "Approved by Dana Whitfield and executed once." in ok.output
    again = runner.invoke(app, ["approvals", "approve", action_id, "--as", "U07PR0002"])
    assert again.exit_code == 1 and "already executed by Dana Whitfield" in " ".join(again.output.split())
    changes = json.loads(runner.invoke(app, ["changes", "list", "--json"]).output)
    assert [(c["id"], c["state"]) for c in changes] == [("CR-0001", "approved")]
    history = json.loads(runner.invoke(app, ["changes", "show", "CR-0001", "--json"]).output)["history"]
    assert [(h["from"], h["to"]) for h in history] == [("draft", "pending_approval"), ("pending_approval", "approved")]


def test_reject_needs_a_reason() -> None:
    action_id = _file_change()
    assert runner.invoke(app, ["approvals", "reject", action_id, "--as", "U07PR0002"]).exit_code == 2
    ok = runner.invoke(app, ["approvals", "reject", action_id, "--as", "U07DW0001", "--reason", "duplicate"])
    assert ok.exit_code == 0 and "Rejected by Dana Whitfield" in ok.output


def test_campaign_draft_lint_and_list(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "campaigns",
            "draft",
            "--type",
            "email",
            "--topic",
            "Product news",
            "--region",
            "EMEA",
            "--start",
            "2027-02-01",
            "--budget",
            "2000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "2027-Q1_EML_Product-News_EMEA"
    assert "consent.segment" in {f["rule"] for f in data["findings"]}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data["config"]))
    linted = runner.invoke(app, ["campaigns", "lint", str(config)])
    assert linted.exit_code == 1 and "consent.segment" in linted.output
    listed = json.loads(runner.invoke(app, ["campaigns", "list", "--json"]).output)
    assert listed[0]["name"] == "2027-Q1_EML_Product-News_EMEA" and listed[0]["errors"] >= 1


def test_chat_approves_as_its_user() -> None:
    action_id = _file_change()
    result = runner.invoke(app, ["chat", "--user", "U07DW0001"], input=f"/approve {action_id}\n")
    assert "Approved by Dana Whitfield and executed once." in " ".join(result.output.split())


def test_sweep_with_nothing_due() -> None:
    result = runner.invoke(app, ["approvals", "sweep"])
    assert result.exit_code == 0 and "expired 0 action(s)" in result.output


def test_changes_move_through_implementation() -> None:
    action_id = _file_change()
    runner.invoke(app, ["approvals", "approve", action_id, "--as", "U07DW0001"])
    assert runner.invoke(app, ["changes", "move", "CR-0001", "closed", "--as", "U07SC0005"]).exit_code == 1
    outsider = runner.invoke(app, ["changes", "move", "CR-0001", "cancelled", "--as", "U07LV0004", "--reason", "x"])
    assert outsider.exit_code == 1 and "may not move CR-0001" in " ".join(outsider.output.split())
    for state, who in (("implementing", "U07SC0005"), ("implemented", "U07DW0001"), ("closed", "U07SC0005")):
        result = runner.invoke(app, ["changes", "move", "CR-0001", state, "--as", who])
        assert result.exit_code == 0 and f"CR-0001 is now {state}" in result.output
    assert runner.invoke(app, ["changes", "move", "CR-0001", "approved", "--as", "U07SC0005"]).exit_code == 2
    tail = json.loads(runner.invoke(app, ["audit", "tail", "-n", "200", "--json"]).output)
    refused = [e for e in tail if e["event"] == "change_request.move_refused"]
    assert [(e["actor"], e["data"]["via"]) for e in refused] == [("U07LV0004", "cli")]
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
