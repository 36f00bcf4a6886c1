"""The CLI: every command has help and is in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mopsbot.cli.app import app
from mopsbot.config import Settings, env_name

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DESIGN_COMMANDS = ["ask", "chat", "serve", "watch", "demo", "knowledge", "metrics", "models", "approvals", "eval"]
runner = CliRunner()


def _commands() -> dict[str, object]:
    import typer.main

    group = typer.main.get_command(app)
    return group.commands  # type: ignore[attr-defined]


def test_help_lists_every_design_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in DESIGN_COMMANDS:
        assert re.search(rf"\b{name}\b", result.output), name


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_help_text_and_is_in_the_readme(name: str) -> None:
    cmd = _commands()[name]
    assert (cmd.help or "").strip(), f"{name} has no help text"  # type: ignore[attr-defined]
    assert f"`mopsbot {name}" in README, f"`mopsbot {name}` is missing from the README CLI reference"


def test_every_setting_is_in_the_readme() -> None:
    missing = [env_name(f) for f in Settings.model_fields if f"`{env_name(f)}`" not in README]
    assert missing == []


def test_demo_seed_then_info(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "seed", "--scale", "0.05", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "warehouse.duckdb").exists()
    assert (tmp_path / "var" / "mopsbot.db").exists()  # the state store was migrated too
    info = runner.invoke(app, ["demo", "info", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert data["meta"]["seed"] == "1"
    assert data["tables"]["fct_touchpoint"]["rows"] > 0


def test_demo_info_without_a_warehouse_says_how_to_make_one() -> None:
    result = runner.invoke(app, ["demo", "info"])
    assert result.exit_code == 1
    assert "mopsbot demo seed" in result.output


def test_bad_scale_is_a_usage_error() -> None:
    result = runner.invoke(app, ["demo", "seed", "--scale", "0"])
    assert result.exit_code == 2
    assert "--scale" in result.output


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "revision 0003" in result.output
    current = runner.invoke(app, ["db", "current"])
    assert "current: 0003" in current.output


def test_invalid_configuration_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_LLM", "gpt-5")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "MOPSBOT_LLM" in result.output


def test_unreachable_database_is_reported_without_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_DATABASE_URL", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db?connect_timeout=2")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot reach the state store" in result.output
    assert "s3cret" not in result.output


def test_chat_answers_commands_and_leaves_on_eof() -> None:
    result = runner.invoke(app, ["chat"], input="/whoami\n/approve\n/reject abc\n/nope\n")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "U07SC0005" in output and "Sam Carter" in output
    assert "usage: /approve ID" in output and "a rejection needs a reason" in output
    assert "unknown command /nope" in output


def test_chat_as_an_approver_shows_their_groups() -> None:
    result = runner.invoke(app, ["chat", "--user", "U07DW0001"], input="/whoami\n/quit\n")
    output = " ".join(result.output.split())
    assert "Dana Whitfield" in output and "mops-directors" in output
