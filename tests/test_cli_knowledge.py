"""`mopsbot knowledge ingest|search|eval` end to end on the demo knowledge/ (index built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mopsbot.cli import app

runner = CliRunner()


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch, knowledge_index_dir: Path) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(knowledge_index_dir))


def test_ingest_again_embeds_nothing(indexed: None) -> None:
    result = runner.invoke(app, ["knowledge", "ingest", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["chunks_embedded"] == 0 and len(report["unchanged"]) >= 30


def test_search_from_a_public_channel_returns_only_public_documents(indexed: None) -> None:
    result = runner.invoke(
        app, ["knowledge", "search", "why did the CRM sync stop in June?", "--channel", "C07MKTG001", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["visibilities"] == ["public"]
    assert "runbook-crm-sync-failure" not in [p["doc_id"] for p in data["passages"]]


def test_search_from_the_ops_channel_finds_the_runbook(indexed: None) -> None:
    result = runner.invoke(
        app, ["knowledge", "search", "why did the CRM sync stop in June?", "--channel", "C07MOPS001", "--json"]
    )
    data = json.loads(result.output)
    assert data["visibilities"] == ["ops", "public"]
    assert any(p["doc_id"] in {"runbook-crm-sync-failure", "incident-log-2026"} for p in data["passages"][:3])


def test_search_says_when_nothing_is_relevant(indexed: None) -> None:
    result = runner.invoke(app, ["knowledge", "search", "which podcasts do we sponsor?"])
    assert result.exit_code == 0
    assert "Nothing relevant" in result.output


def test_search_on_an_empty_index_says_to_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(tmp_path / "empty"))
    result = runner.invoke(app, ["knowledge", "search", "anything"])
    assert result.exit_code == 1
    assert "mopsbot knowledge ingest" in result.output


def test_ingest_reports_bad_files_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_CHROMA_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("MOPSBOT_EMBEDDINGS", "static")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "good.md").write_text(
        "---\ntitle: Good\nvisibility: public\n---\n# Good\n\nUseful text here.\n"
    )
    (tmp_path / "docs" / "bad.md").write_text("---\nvisibility: nope\n---\n# Bad\n\ntext text text\n")
    result = runner.invoke(app, ["knowledge", "ingest", str(tmp_path / "docs")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "added 1" in output and "skipped 1" in output and "bad.md: visibility must be one of" in output


def test_eval_prints_the_scorecard_and_passes(indexed: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["knowledge", "eval", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "recall_at_5" in result.output and "FAIL" not in result.output
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["passed"]
