"""Surfaces without a signed identity (the CLI and the terminal chat) can be turned off for decisions and change
moves; who may move a change comes from the sealed envelope, not from rows an insider can edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update
from typer.testing import CliRunner

from mopsbot.caller import CallerContext
from mopsbot.cli import app
from mopsbot.config import load_settings
from mopsbot.errors import UserFacingError
from mopsbot.services import Services
from mopsbot.store.models import AuditEvent, ChangeRequest, PendingAction

REPO = Path(__file__).resolve().parents[2]
SAM, LENA, DANA = "U07SC0005", "U07LV0004", "U07DW0001"
LOW = {
    "change_type": "standard",
    "title": "Copy fix on the AI Ops webinar page",
    "description": "Fix a typo in the headline of the AI Ops webinar landing page copy.",
    "backout_plan": "Put the old headline back.",
}
runner = CliRunner()


def _workspace(tmp_path: Path, allow_cli: bool) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "tools", ws / "tools")
    (ws / "knowledge").mkdir()
    spec = yaml.safe_load((ws / "tools" / "approvals.yaml").read_text())
    spec["approvals"] = {"allow_cli_decisions": allow_cli}
    (ws / "tools" / "approvals.yaml").write_text(yaml.safe_dump(spec))
    return ws


def _services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_cli: bool, knowledge_index_dir: Path) -> Services:
    ws = _workspace(tmp_path, allow_cli)
    for name, value in (("MOPSBOT_WORKSPACE", ws), ("MOPSBOT_DATA_DIR", tmp_path / "var"),
                        ("MOPSBOT_CHROMA_PATH", knowledge_index_dir)):  # fmt: skip
        monkeypatch.setenv(name, str(value))
    return Services.from_settings(load_settings(env_file=None), backend="local")


def _file_low(svc: Services) -> str:
    record = svc.agent.run_tool("file_change_request", LOW, CallerContext(SAM, "C07MOPS001", "ops"), "t1", "")
    (pending,) = record.pending_actions
    return pending.id


def test_cli_and_terminal_decisions_and_moves_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path
) -> None:
    svc = _services(tmp_path, monkeypatch, False, knowledge_index_dir)
    action_id = _file_low(svc)
    cli = runner.invoke(app, ["approvals", "approve", action_id, "--as", DANA])
    assert cli.exit_code == 1 and "turned off" in " ".join(cli.output.split())
    chat = runner.invoke(app, ["chat", "--user", DANA], input=f"/approve {action_id}\n")
    assert "turned off" in " ".join(chat.output.split())
    assert svc.approvals.get(action_id)["status"] == "pending"  # type: ignore[index]
    result = svc.approvals.decide(action_id, DANA, "approve", via="slack")  # the signed surface still decides
    assert result.status == "executed"
    moved = runner.invoke(app, ["changes", "move", "CR-0001", "implementing", "--as", SAM])
    assert moved.exit_code == 1 and "turned off" in " ".join(moved.output.split())
    with svc.store.session() as s:
        refusals = [e.data["via"] for e in s.query(AuditEvent).filter(AuditEvent.event.like("%refused"))]
    assert sorted(refusals) == ["cli", "cli", "terminal"]


def test_who_may_move_a_change_ignores_edited_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path
) -> None:
    svc = _services(tmp_path, monkeypatch, True, knowledge_index_dir)
    action_id = _file_low(svc)
    with svc.store.session() as s:  # an insider makes Lena a requester in both editable rows
        s.execute(update(ChangeRequest).values(requesters=[SAM, LENA], requester_id=LENA))
        s.execute(update(PendingAction).where(PendingAction.id == action_id).values(required_group="everyone"))
    with pytest.raises(UserFacingError, match="may not move CR-0001"):
        svc.changes.move("CR-0001", "cancelled", LENA, "not needed")
    assert svc.changes.move("CR-0001", "cancelled", SAM, "not needed")["state"] == "cancelled"
    with pytest.raises(UserFacingError, match="no longer matches its sealed envelope"):
        svc.approvals.decide(action_id, DANA, "approve")
    second = _file_low(svc)  # untouched, then cancelled by its requester: it can no longer be approved
    svc.changes.move("CR-0002", "cancelled", SAM, "filed twice")
    with pytest.raises(UserFacingError, match="CR-0002 is cancelled"):
        svc.approvals.decide(second, DANA, "approve")
