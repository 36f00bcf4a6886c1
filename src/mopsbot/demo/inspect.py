"""What is in a demo warehouse: tables, row counts, freshness and the generator's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

FRESHNESS = {
    "dim_campaign": "start_date",
    "fct_ad_daily": "date",
    "fct_email_send": "send_date",
    "dim_lead": "created_at",
    "fct_touchpoint": "touched_at",
    "fct_opportunity": "created_at",
}


class WarehouseMissing(FileNotFoundError):
    """The warehouse file does not exist yet; the message says how to create it."""


def describe_warehouse(path: Path) -> dict[str, Any]:
    """Row count and latest date per table, plus the seed and scale it was generated with."""
    if not path.exists():
        raise WarehouseMissing(f"no warehouse at {path}; run `mopsbot demo seed` first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables: dict[str, Any] = {}
        for table, col in FRESHNESS.items():
            rows, latest = con.execute(f"SELECT count(*), max({col}) FROM {table}").fetchone()  # type: ignore[misc]
            tables[table] = {"rows": rows, "latest": latest}
        meta = dict(con.execute("SELECT key, value FROM mops_meta").fetchall())
    finally:
        con.close()
    return {"path": str(path), "tables": tables, "meta": meta}
