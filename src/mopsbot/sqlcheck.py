"""Checking SQL fragments that workspace files (metric catalog, model cards) put into queries.

A fragment must be one expression (no second statement, no subquery), use only allowed functions and, when the
table's columns are known, name only those columns. Identifiers from these files are the only SQL text mopsbot
writes besides its own; values from users are always bound parameters.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp


class SqlCheckError(ValueError):
    """A fragment that may not go into a query; the message says where and why."""


# SQL functions (sqlglot's names) a measure expression or filter may use; anything else (aggregates, table
# functions such as read_csv, random(), ...) is refused at load.
ALLOWED_FUNCTIONS = frozenset(
    {
        "TIME_TO_UNIX",
        "EPOCH",
        "COALESCE",
        "NULLIF",
        "ABS",
        "ROUND",
        "LOWER",
        "UPPER",
        "GREATEST",
        "LEAST",
        "CASE",
        "IF",
        "CAST",
        "TRY_CAST",
        "DATEDIFF",
        "DATE_DIFF",
    }
)


def check_sql(text: str, columns: frozenset[str] | None, where: str) -> None:
    """An expression or filter must parse, use allowed functions only and name only its table's columns."""
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as err:
        raise SqlCheckError(f"{where}: does not parse as SQL: {str(err).splitlines()[0]}") from None
    if len(trees) != 1 or ";" in text:
        raise SqlCheckError(f"{where}: one expression only (no ';', no second statement)")
    tree = trees[0]
    if isinstance(tree, exp.Query) or tree.find(exp.Query, exp.Subquery, exp.Command):
        raise SqlCheckError(f"{where}: subqueries and statements are not allowed")
    for fn in tree.find_all(exp.Func):
        if isinstance(fn, exp.Connector):  # AND / OR are operators here, not functions
            continue
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).upper()
        if name not in ALLOWED_FUNCTIONS:
            raise SqlCheckError(f"{where}: function {name.lower()}() is not allowed in a catalog expression")
    if columns is not None:
        for col in tree.find_all(exp.Column):
            if col.table or col.name not in columns:
                raise SqlCheckError(f"{where}: column {col.sql()!r} is not a column of the table")
