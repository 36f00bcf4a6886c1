"""The read-only warehouse connection every engine shares (metrics, predictions)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mopsbot.errors import UserFacingError


class WarehouseUnavailable(UserFacingError):
    """The warehouse file is missing or cannot be opened."""


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A duckdb connection that cannot write, read files, attach databases or change its own settings."""
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path}; run `mopsbot demo seed` (or set MOPSBOT_WAREHOUSE_PATH)")
    try:
        return duckdb.connect(
            str(path),
            read_only=True,
            config={"enable_external_access": False, "autoload_known_extensions": False, "lock_configuration": True},
        )
    except duckdb.Error as err:
        raise WarehouseUnavailable(f"cannot open the warehouse at {path}: {err}") from None
