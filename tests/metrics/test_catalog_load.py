"""tools/metrics.yaml: the real catalog loads and agrees with the glossary; a broken copy fails with a CatalogError
that names the file and the line of the offending entry."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from mopsbot.metrics.catalog import CatalogError, load_catalog
from mopsbot.metrics.engine import MetricsEngine
from tests.metrics.conftest import CATALOG, REPO

GLOSSARY = REPO / "knowledge" / "reference" / "metrics-glossary.md"


@pytest.fixture(scope="module")
def columns(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
        out.setdefault(table, set()).add(column)
    return {t: frozenset(c) for t, c in out.items()}


def broken_copy(tmp_path: Path, section: str, entry: str) -> tuple[Path, int]:
    """The real catalog with `entry` inserted as the first entry of `section`; returns its path and the entry's line."""
    lines = CATALOG.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.rstrip() == f"{section}:") + 1
    lines[at:at] = [entry + "\n"]
    path = tmp_path / "metrics.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path, at + 1


def assert_points_at(err: pytest.ExceptionInfo[CatalogError], path: Path, line: int, *words: str) -> None:
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert re.search(rf"(:{line}:|: line {line}:)", message), f"expected line {line}: {message}"
    for word in words:
        assert word in message


RATIO = "type: ratio, unit: usd, label: Broken, glossary: Spend"
BROKEN = [  # section, entry, words the message must contain
    ("metrics", f"  broken: {{{RATIO}, numerator: spend, denominator: spend_typo}}",
     ["metrics.broken", "unknown measure spend_typo"]),
    ("metrics", f"  broken: {{{RATIO}, numerator: spend}}", ["metrics.broken", "a ratio metric needs denominator"]),
    ("metrics", "  broken: {type: cumulative, measure: spend, label: Broken, glossary: Spend}",
     ["metrics.broken", "grain_to_date"]),
    ("metrics", "  broken: {type: conversion, base_measure: leads, label: Broken, glossary: Leads}",
     ["metrics.broken", "step_at"]),
    ("metrics", "  broken: {type: derived, unit: usd, label: Broken, glossary: ROI}", ["metrics.broken", "expr"]),
    ("metrics", '  broken: {type: derived, expr: "(w_shaped_revenue - spend_typo) / spend", unit: pct, label: Broken, '
                "glossary: ROI}", ["metrics.broken", "spend_typo", "not another metric"]),
    ("metrics", "  broken: {type: simple, measure: spend, label: Broken, glossary: Spend, colour: red}",
     ["metrics.broken.colour"]),
    ("measures", '  broken: {table: fct_ad_daily, agg: sum, expr: "(SELECT max(spend) FROM fct_ad_daily)", unit: usd}',
     ["measures.broken.expr", "subqueries"]),
    ("measures", '  broken: {table: dim_lead, agg: count, expr: lead_id, unit: count, '
                 'filter: "source_campaign_id IN (SELECT campaign_id FROM dim_campaign)"}',
     ["measures.broken.filter", "subqueries"]),
    ("measures", '  broken: {table: fct_ad_daily, agg: sum, expr: "spend; DROP TABLE dim_lead", unit: usd}',
     ["measures.broken.expr"]),
    ("measures", '  broken: {table: fct_ad_daily, agg: sum, expr: "pg_sleep(spend)", unit: usd}',
     ["measures.broken.expr", "pg_sleep() is not allowed"]),
    ("measures", '  broken: {table: fct_ad_daily, agg: sum, expr: "now()", unit: usd}', ["now() is not allowed"]),
    ("measures", "  broken: {table: fct_ads, agg: sum, expr: spend, unit: usd}", ["unknown table fct_ads"]),
    ("dimensions", "  broken: {columns: {dim_leads: region}}", ["dimensions.broken", "unknown table dim_leads"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("section", "entry", "words"),
    [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in
     enumerate(BROKEN)],
)  # fmt: skip
def test_broken_entry_is_refused_at_its_line(tmp_path: Path, section: str, entry: str, words: list[str]) -> None:
    path, line = broken_copy(tmp_path, section, entry)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert_points_at(err, path, line, *words)


def test_a_nested_field_is_pointed_at_on_its_own_line(tmp_path: Path) -> None:
    path, line = broken_copy(
        tmp_path, "measures", "  broken:\n    table: fct_ad_daily\n    agg: total\n    expr: spend"
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert_points_at(err, path, line + 2, "measures.broken.agg")


@pytest.mark.parametrize(("entry", "offset"), [("  broken: {type: simple, measure: spend,, ]", 0),
                                               ("  broken:\n\ttype: simple", 1)])  # fmt: skip
def test_yaml_syntax_error_names_the_line(tmp_path: Path, entry: str, offset: int) -> None:
    path, line = broken_copy(tmp_path, "metrics", entry)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert_points_at(err, path, line + offset)


@pytest.mark.parametrize(
    ("section", "entry", "words"),
    [
        ("measures", "  broken: {table: fct_ad_daily, agg: sum, expr: spend_usd, unit: usd}", ["'spend_usd'"]),
        ("measures", "  broken: {table: dim_lead, agg: count, expr: lead_id, unit: count, filter: \"campaign_id > 0\"}",
         ["measures.broken.filter", "'campaign_id'"]),
        ("measures", "  broken: {table: dim_lead, agg: count, expr: lead_id, time: converted_at, unit: count}",
         ["converted_at"]),
        ("dimensions", "  broken: {columns: {dim_lead: lead_region}}", ["lead_region is not a column of dim_lead"]),
        ("metrics", "  broken: {type: conversion, base_measure: leads, step_at: won_at, label: B, glossary: Leads}",
         ["step_at won_at"]),
    ],
)  # fmt: skip
def test_a_column_not_in_the_warehouse_is_refused(
    tmp_path: Path, warehouse: Path, columns: dict[str, frozenset[str]], section: str, entry: str, words: list[str]
) -> None:
    path, line = broken_copy(tmp_path, section, entry)
    load_catalog(path)  # without the warehouse's columns only the shape is checked
    with pytest.raises(CatalogError) as err:
        load_catalog(path, columns)
    assert_points_at(err, path, line, *words)
    with pytest.raises(CatalogError) as err:
        _ = MetricsEngine(path, warehouse).catalog  # the engine checks against its warehouse
    assert_points_at(err, path, line, *words)


@pytest.mark.parametrize(
    "expr",
    ["read_csv('/etc/passwd')", "random() * spend", "md5(platform)", "max(spend)"],
)  # fmt: skip
def test_functions_outside_the_allowed_list_are_refused(tmp_path: Path, expr: str) -> None:
    path, line = broken_copy(tmp_path, "measures", f'  broken: {{table: fct_ad_daily, agg: sum, expr: "{expr}", '
                                                   "unit: usd}")  # fmt: skip
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert_points_at(err, path, line, "is not allowed")


def test_a_missing_catalog_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file not found"):
        load_catalog(tmp_path / "metrics.yaml")


def test_the_real_catalog_loads_against_the_warehouse(engine: MetricsEngine) -> None:
    visible = [n for n, m in engine.catalog.metrics.items() if not m.hidden]
    assert len(visible) >= 25
    assert engine.catalog.columns  # checked against the warehouse's columns, not only its shape


def glossary_rows() -> set[str]:
    """The first cell of every table row of the glossary, bold stripped."""
    rows = set()
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("|"):
            rows.add(line.strip().strip("|").split("|")[0].strip().replace("**", ""))
    return rows


LABELS = sorted({m.glossary for m in load_catalog(CATALOG).metrics.values()})


@pytest.mark.parametrize("label", LABELS)
def test_every_glossary_label_is_a_row_of_the_glossary(label: str) -> None:
    assert label in glossary_rows()
