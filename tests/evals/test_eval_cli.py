"""`mopsbot eval` end to end, offline: the local agent suite passes its gates; recorded cassettes replay fully."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mopsbot.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def indexed(monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path, warehouse: Path) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(knowledge_index_dir))
    monkeypatch.setenv("MOPSBOT_WAREHOUSE_PATH", str(warehouse))  # metric cases check figures by SQL on it


def test_agent_suite_on_the_local_backend_passes_its_gates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--suite", "agent", "--backend", "local", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "agent" / "summary.json").read_text())
    assert summary["cases"] >= 40 and summary["policy_violations"] == 0 and summary["errors"] == 0
    assert summary["sql_values"] == 1.0 and summary["sql_values_n"] >= 40  # every figure right, on 40+ metric turns
    rows = [json.loads(line) for line in (tmp_path / "agent" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == summary["turns"]
    assert "# mopsbot eval: suite `agent`, backend `local`" in (tmp_path / "agent" / "summary.md").read_text()


def test_recorded_cassettes_replay_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there: replay only
    result = runner.invoke(app, ["eval", "--suite", "agent", "--backend", "replay", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "agent" / "summary.json").read_text())
    assert summary["errors"] == 0, "a cassette did not match its request (re-record with --record)"
    assert summary["llm_tokens"] > 0


def test_retrieval_suite_runs_through_eval(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--suite", "retrieval", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "recall@5" in result.output and "pass" in result.output


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["eval", "--suite", "nope"]).exit_code == 2
    assert runner.invoke(app, ["eval", "--backend", "local", "--record"]).exit_code == 2
