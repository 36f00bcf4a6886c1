"""`mopsbot metrics`: list, describe, query (flags or words), anomalies; JSON output and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mopsbot.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def seeded(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    monkeypatch.setenv("MOPSBOT_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("MOPSBOT_TODAY", "2026-11-16")


def _json(args: list[str]) -> dict | list:
    result = runner.invoke(app, ["metrics", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_shows_at_least_25_metrics_with_definitions() -> None:
    rows = _json(["list"])
    assert len(rows) >= 25
    assert {"cpl", "roas", "mql_to_sql_rate", "spam_complaint_rate", "sales_velocity"} <= {r["name"] for r in rows}
    assert all(r["definition"] for r in rows)
    emails = _json(["list", "--search", "email"])
    assert emails and all("email" in json.dumps(r).lower() for r in emails)


def test_describe_by_synonym() -> None:
    d = _json(["describe", "cost per lead"])
    assert d["name"] == "cpl" and set(d["measures"]) == {"spend", "campaign_leads"}
    assert "region" in d["dimensions"] and "industry" not in d["dimensions"]


def test_query_prints_rows_sql_parameters_and_freshness(tmp_path: Path) -> None:
    chart = tmp_path / "cpl.png"
    data = _json(["query", "cpl", "--by", "channel", "--period", "Q3 2026", "--filter", "region=emea",
                  "--compare", "previous", "--chart", str(chart)])  # fmt: skip
    assert data["row_count"] == len(data["rows"]) > 3
    assert data["comparison"]["label"] == "Q2 2026"
    assert data["freshness"]["fct_ad_daily"] == "2026-10-31"
    assert "EMEA" in data["params"] and "EMEA" not in data["sql"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_query_in_words_gives_the_same_numbers_as_flags() -> None:
    words = _json(["query", "--text", "CPL by channel last quarter"])
    flags = _json(["query", "cpl", "--by", "channel", "--period", "last quarter"])
    assert words["rows"] == flags["rows"] and words["period"]["label"] == "Q3 2026"


def test_terminal_table_and_show_sql() -> None:
    result = runner.invoke(app, ["metrics", "query", "spend", "--by", "region", "--period", "2025", "--sql"])
    assert result.exit_code == 0, result.output
    assert "EMEA" in result.output and "data through 2026-10-31" in result.output and "SELECT" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "cpx"], "closest: "),
        (["query", "spend", "--by", "industry"], "cannot be broken down"),
        (["query", "cpl", "--filter", "region=Mars"], "not a region value"),
        (["query", "cpl", "--period", "next fortnight"], "can't read the period"),
        (["query", "cpl", "--compare", "sideways"], "--compare must be"),
        (["describe", "nonsense"], "unknown metric"),
    ],
)
def test_bad_input_is_a_usage_error_with_a_reason(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["metrics", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_anomalies_find_the_injected_spikes() -> None:
    bounce = _json(["anomalies", "hard_bounce_rate", "--grain", "day", "--period", "2026"])
    assert bounce["anomalies"][0]["bucket"] == "2026-09-16"
    cpl = _json(["anomalies", "cpl", "--by", "channel", "--by", "region", "--period", "this year"])
    top = cpl["anomalies"][0]
    assert (top["group"], top["bucket"], top["direction"]) == (
        {"channel": "paid_social", "region": "EMEA"},
        "2026-10-01",
        "above",
    )


def test_a_missing_warehouse_says_how_to_make_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOPSBOT_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    result = runner.invoke(app, ["metrics", "query", "spend"])
    assert result.exit_code == 2 and "mopsbot demo seed" in result.output
