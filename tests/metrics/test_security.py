"""Nothing a question carries reaches the SQL text, and the metrics connection can neither write nor read files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import ValidationError

from mopsbot.metrics.catalog import UnknownName
from mopsbot.metrics.compiler import QueryError
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.query import MetricQuery

INJECTIONS = ["EMEA'; DROP TABLE dim_lead; --", "x' OR '1'='1", 'NA"); DELETE FROM fct_opportunity; --']
TABLES = ("dim_campaign", "fct_ad_daily", "fct_email_send", "dim_lead", "fct_touchpoint", "fct_opportunity")


def fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return {"tables": tables} | {t: con.execute(f"SELECT count(*), sum(hash(t)) FROM {t} t").fetchone() for t in TABLES}


@pytest.fixture(scope="module")
def before(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return fingerprint(con)


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("dimension", ["region", "channel", "company_size"])
def test_injection_into_a_closed_dimension_is_not_a_value(engine: MetricsEngine, dimension: str, value: str) -> None:
    with pytest.raises(UnknownName, match="allowed:"):
        engine.query(MetricQuery(metrics=["spend", "leads"], filters=[{"dimension": dimension, "values": [value]}]))


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(("metric", "dimension"), [("spend", "campaign"), ("cpl", "owner"), ("leads", "industry")])
def test_injection_into_an_open_dimension_is_a_bound_value_that_matches_nothing(
    engine: MetricsEngine, con: duckdb.DuckDBPyConnection, before: dict, metric: str, dimension: str, value: str
) -> None:
    result = engine.query(MetricQuery(metrics=[metric], dimensions=[dimension], period="2025",
                                      filters=[{"dimension": dimension, "values": [value]}]))  # fmt: skip
    assert result.rows == []
    assert value in result.params
    assert value not in result.sql
    assert fingerprint(con) == before


@pytest.mark.parametrize(
    "query",
    [
        {"metrics": ["cpl; DROP TABLE dim_lead"]},
        {"metrics": ["cpl"], "dimensions": ["channel; DROP TABLE dim_lead --"]},
        {"metrics": ["cpl"], "filters": [{"dimension": "region) OR 1=1 --", "values": ["EMEA"]}]},
        {"metrics": ["cpl"], "order_by": "-cpl; DROP TABLE dim_lead"},
        {"metrics": ["cpl"], "order_by": "channel DESC, (SELECT 1)"},
    ],
)
def test_injection_into_a_name_is_an_unknown_name_with_close_names(
    engine: MetricsEngine, con: duckdb.DuckDBPyConnection, before: dict, query: dict
) -> None:
    with pytest.raises((UnknownName, QueryError), match=r"closest: |use one of "):
        engine.query(MetricQuery(**query))
    assert fingerprint(con) == before


def test_order_by_something_not_asked_for_is_refused(engine: MetricsEngine) -> None:
    with pytest.raises(QueryError, match="must be one of the query's metrics or dimensions"):
        engine.query(MetricQuery(metrics=["cpl"], dimensions=["channel"], order_by="-leads"))


def test_attribution_model_and_grain_are_closed_lists() -> None:
    with pytest.raises(ValidationError):
        MetricQuery(metrics=["attributed_pipeline"], attribution="w_shaped; DROP TABLE dim_lead")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MetricQuery(metrics=["leads"], grain="month') --")  # type: ignore[arg-type]


def test_unknown_metric_lists_the_closest_names(engine: MetricsEngine) -> None:
    with pytest.raises(UnknownName) as err:
        engine.query(MetricQuery(metrics=["cpx"]))
    closest = str(err.value).split("closest: ")[1].split(", ")
    assert {"cpl", "cpc", "cpm"} <= set(closest)


def test_filter_values_travel_as_parameters_only(engine: MetricsEngine, con: duckdb.DuckDBPyConnection) -> None:
    campaign, owner = con.execute("""SELECT c.campaign_name, c.owner_name FROM dim_campaign c JOIN fct_ad_daily a
        USING (campaign_id) WHERE c.region = 'EMEA' AND a.date >= '2026-07-01' LIMIT 1""").fetchone()  # type: ignore[misc]
    result = engine.query(MetricQuery(metrics=["spend", "cpl"], dimensions=["channel"], period="Q3 2026", filters=[
        {"dimension": "region", "values": ["emea"]}, {"dimension": "campaign", "values": [campaign]},
        {"dimension": "owner", "values": [owner]}]))  # fmt: skip
    assert result.rows and result.rows[0]["spend"] > 0  # the bound values do select the campaign
    for value in ("EMEA", campaign, owner):
        assert value in result.params
        assert value not in result.sql


WRITES = [
    "INSERT INTO dim_campaign (campaign_id, campaign_name) VALUES (99999, 'x')",
    "CREATE TABLE stolen AS SELECT * FROM dim_lead",
    "DROP TABLE dim_lead",
    "UPDATE fct_opportunity SET amount = amount * 10",
    "DELETE FROM fct_touchpoint",
    "ALTER TABLE dim_lead ADD COLUMN x INT",
]


@pytest.mark.parametrize("statement", WRITES)
def test_the_metrics_connection_cannot_write(
    engine: MetricsEngine, con: duckdb.DuckDBPyConnection, before: dict, statement: str
) -> None:
    with pytest.raises(duckdb.Error, match="read-only"):
        engine.cursor().execute(statement)
    assert fingerprint(con) == before


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "COPY (SELECT * FROM dim_lead) TO '{tmp}/leads.csv'",
        "COPY dim_lead TO '{tmp}/leads.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '{tmp}/dump'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ],
)
def test_the_metrics_connection_cannot_reach_files_or_extensions(
    engine: MetricsEngine, tmp_path: Path, statement: str
) -> None:
    with pytest.raises(duckdb.Error):
        engine.cursor().execute(statement.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []
