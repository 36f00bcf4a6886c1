"""MetricQuery -> parameterized SQL for duckdb, MetricFlow style.

Each group of measures that share a table, date column and row filter is aggregated in its own CTE at the query's
grain (time bucket + dimensions); the CTEs are joined on those keys and the metrics are computed on the joined
sums. So a ratio is always sum(numerator) / sum(denominator) at the grain asked for, never an average of row
ratios. Identifiers come only from the validated catalog; every value from the query is a bound parameter.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from mopsbot.errors import UserFacingError
from mopsbot.metrics import attribution
from mopsbot.metrics.catalog import ATTRIBUTION_TABLE, Catalog, Measure, derived_refs
from mopsbot.metrics.periods import Period
from mopsbot.metrics.query import MetricQuery

ADDITIVE = ("sum", "count", "count_distinct", "sum_distinct")


class QueryError(UserFacingError):
    """A MetricQuery the catalog cannot answer (a dimension not available for a metric, a bad order_by...)."""


@dataclass(frozen=True)
class Resolved:
    """A query with every name resolved to the catalog's spelling."""

    metrics: list[str]
    dimensions: list[str]
    filters: list[tuple[str, str, list[str]]]  # (dimension, op, values)
    grain: str | None
    attribution: str
    order_by: tuple[str, bool] | None  # (column, descending)
    limit: int


@dataclass
class Compiled:
    sql: str
    params: list[Any]
    columns: list[str]  # bucket?, dimensions..., metrics...
    tables: set[str] = field(default_factory=set)


def resolve(catalog: Catalog, query: MetricQuery, default_limit: int = 100) -> Resolved:
    """Names to catalog names. Raises UnknownName / QueryError."""
    metrics = list(dict.fromkeys(catalog.metric_name(m) for m in query.metrics))
    dims = list(dict.fromkeys(catalog.dimension_name(d) for d in query.dimensions))
    filters = []
    for f in query.filters:
        dim = catalog.dimension_name(f.dimension)
        filters.append((dim, f.op, [catalog.normalize_value(dim, v) for v in f.values]))
    order = None
    if query.order_by:
        desc = query.order_by.startswith("-")
        key = query.order_by.lstrip("-+ ")
        if key in ("date", "period", "time", query.grain):
            order = ("bucket", desc)
        else:
            try:
                order = (catalog.metric_name(key), desc)
            except UserFacingError:
                try:
                    order = (catalog.dimension_name(key), desc)
                except UserFacingError:
                    raise QueryError(
                        f"order_by {key!r} is not a metric or dimension of the query; use one of "
                        f"{', '.join(metrics + dims)}"
                    ) from None
            if order[0] not in metrics + dims:
                raise QueryError(
                    f"order_by {key!r} must be one of the query's metrics or dimensions: {', '.join(metrics + dims)}"
                )
    model = query.attribution or (catalog.spec.attribution.default_model if catalog.spec.attribution else "w_shaped")
    if query.attribution and not any(
        catalog.measures[ms].table == ATTRIBUTION_TABLE and not catalog.measures[ms].model
        for m in metrics
        for ms in catalog.metric_measures(m)
    ):
        attributed = [n for n in catalog.metrics if not catalog.metrics[n].hidden and _takes_model(catalog, n)]
        raise QueryError(f"an attribution model applies to {', '.join(attributed)}; not to {', '.join(metrics)}")
    return Resolved(metrics, dims, filters, query.grain, model, order, query.limit or default_limit)


def _takes_model(catalog: Catalog, metric: str) -> bool:
    return any(
        catalog.measures[ms].table == ATTRIBUTION_TABLE and not catalog.measures[ms].model
        for ms in catalog.metric_measures(metric)
    )


def _bucket(column: str, grain: str, fiscal_start: int) -> str:
    if grain == "day":
        return f"CAST({column} AS DATE)"
    if grain in ("quarter", "year") and fiscal_start != 1:
        shift = fiscal_start - 1
        return f"(date_trunc('{grain}', {column} - INTERVAL {shift} MONTH) + INTERVAL {shift} MONTH)::DATE"
    return f"date_trunc('{grain}', {column})::DATE"


@functools.lru_cache(maxsize=512)
def _qualify(sql_text: str, alias: str) -> str:
    tree = sqlglot.parse_one(sql_text, read="duckdb")
    for col in tree.find_all(exp.Column):
        col.set("table", exp.to_identifier(alias))
    return tree.sql(dialect="duckdb")


@dataclass(frozen=True)
class _Source:
    """Measures that can be aggregated in one scan: same table, date column, filter, via and model."""

    table: str
    time: str
    filter: str | None
    via: str | None
    model: str | None
    cumulative: str | None = None  # grain_to_date unit
    distinct: bool = False  # sum_distinct measures aggregate over a de-duplicated subquery


class _Joins:
    """FROM clause for a measure's table plus the joins its dimensions need (LEFT, or INNER for `via`)."""

    def __init__(self, catalog: Catalog, source: _Source) -> None:
        self.catalog = catalog
        self.source = source
        self.aliases: dict[tuple[str, ...], str] = {(source.table,): "t0"}
        self.clauses: list[str] = []
        if source.via:
            self._alias(self._path(source.via), inner=True)

    def _graph(self, table: str) -> dict[str, str]:
        if table == ATTRIBUTION_TABLE:
            return {"dim_campaign": "campaign_id"}
        return dict(self.catalog.tables[table].joins)

    def _path(self, target: str) -> tuple[str, ...]:
        queue: deque[tuple[str, ...]] = deque([(self.source.table,)])
        while queue:
            path = queue.popleft()
            if path[-1] == target:
                return path
            queue.extend((*path, nxt) for nxt in self._graph(path[-1]) if nxt not in path)
        raise QueryError(f"{target} cannot be reached from {self.source.table}")

    def _alias(self, path: tuple[str, ...], inner: bool = False) -> str:
        for i in range(2, len(path) + 1):
            sub = path[:i]
            if sub not in self.aliases:
                alias = f"t{len(self.aliases)}"
                parent = self.aliases[sub[:-1]]
                fk = self._graph(sub[-2])[sub[-1]]
                pk = self.catalog.tables[sub[-1]].primary_key
                kind = "JOIN" if inner else "LEFT JOIN"
                self.clauses.append(f"{kind} {sub[-1]} {alias} ON {alias}.{pk} = {parent}.{fk}")
                self.aliases[sub] = alias
        return self.aliases[path]

    def column(self, dimension: str, metric_label: str) -> str:
        """The qualified column of a dimension for this source. Raises QueryError if it is not reachable."""
        columns = self.catalog.dimensions[dimension].columns
        order = [self.source.via] if self.source.via else []
        order.append(self.source.table)
        for table in order:
            if table in columns:
                return f"{self._alias(self._path(table))}.{columns[table]}"
        for path in self._reachable():
            if path[-1] in columns:
                return f"{self._alias(path)}.{columns[path[-1]]}"
        raise QueryError(f"{metric_label} cannot be broken down or filtered by {dimension}")

    def _reachable(self) -> list[tuple[str, ...]]:
        out, queue = [], deque([(self.source.table,)])
        while queue:
            path = queue.popleft()
            out.append(path)
            queue.extend((*path, nxt) for nxt in self._graph(path[-1]) if nxt not in path)
        return out[1:]


def compile_query(catalog: Catalog, q: Resolved, period: Period, compare: Period | None = None) -> Compiled:
    """SQL for the resolved query over the period. Raises QueryError.

    With `compare` (only when `one_pass_comparison` allows it) both periods are read in one scan: every measure is
    aggregated twice with FILTER, and the metrics of the other period come back as <metric>_previous columns.
    """
    measures: dict[str, Measure] = {}
    sources: dict[_Source, list[str]] = {}
    metric_sql: dict[str, str] = {}

    def need(name: str, measure: Measure, cumulative: str | None = None) -> str:
        time = catalog.time_of(measure)
        if cumulative and measure.agg not in ("sum", "count"):
            raise QueryError(f"cumulative metrics need an additive measure, not {measure.agg}")
        model = measure.model or (q.attribution if measure.table == ATTRIBUTION_TABLE else None)
        src = _Source(
            measure.table, time, measure.filter, measure.via, model, cumulative, measure.agg == "sum_distinct"
        )
        sources.setdefault(src, [])
        if name not in sources[src]:
            sources[src].append(name)
        measures[name] = measure
        col = f"m_{name}"
        return f"coalesce({col}, 0)" if measure.agg in ADDITIVE else col

    keys = (["bucket"] if q.grain else []) + [f"d_{d}" for d in q.dimensions]
    # a group's whole series, for telling "no rows this month" (0) from "no rows ever" (empty) in ratios; without
    # a time grain each row is its own series
    series = ", ".join(f"k.d_{d}" for d in q.dimensions)
    partition = (f"PARTITION BY {series}" if series else "") if q.grain else None
    for name in q.metrics:
        metric_sql[name] = _metric_expr(catalog, name, need, metric_sql, partition)
    if compare is not None and not one_pass_comparison(q, list(sources)):
        raise QueryError("this comparison needs one query per period")

    ctes: list[str] = []
    params: list[Any] = []
    tables: set[str] = set()
    for i, (src, names) in enumerate(sources.items()):
        sql, p = _source_cte(catalog, q, period, src, [(n, measures[n]) for n in names], compare)
        ctes.append(f"c{i} AS ({sql})")
        params += p
        tables |= {"fct_opportunity", "fct_touchpoint"} if src.table == ATTRIBUTION_TABLE else {src.table}
    n = len(ctes)
    if n == 1:  # one scan: no joins
        from_clause = "c0 AS k"
        current = "k._rows_now > 0"
    elif keys:  # full outer joins on the keys: a group present in any scan is a row
        cols = [f"coalesce({', '.join(f'c{i}.{key}' for i in range(n))}) AS {key}" for key in keys]
        on = []
        for i in range(1, n):
            left = {
                key: (f"c0.{key}" if i == 1 else f"coalesce({', '.join(f'c{j}.{key}' for j in range(i))})")
                for key in keys
            }
            on.append(
                f"FULL JOIN c{i} ON " + " AND ".join(f"{left[key]} IS NOT DISTINCT FROM c{i}.{key}" for key in keys)
            )
        for i, names in enumerate(sources.values()):
            cols += [f"c{i}.{prefix}_{name}" for name in names for prefix in (("m", "p") if compare else ("m",))]
            if compare is not None:
                cols.append(f"c{i}._rows_now AS _rows_now_{i}")
        ctes.append(f"k AS (SELECT {', '.join(cols)} FROM c0 {' '.join(on)})")
        from_clause = "k"
        current = " OR ".join(f"k._rows_now_{i} > 0" for i in range(n))
    else:
        from_clause = " CROSS JOIN ".join(f"c{i}" for i in range(n))
        current = ""
    selects = [f"k.{key}" for key in keys] + [f"{metric_sql[m]} AS {m}" for m in q.metrics]
    if compare is not None:
        selects += [f"{_previous(metric_sql[m])} AS {m}_previous" for m in q.metrics]
    where = f"\nWHERE {current}" if compare is not None and current and keys else ""
    sql = (
        f"WITH {', '.join(ctes)}\nSELECT {', '.join(selects)}\nFROM {from_clause}{where}\n"
        f"ORDER BY {_order(q, keys)}\nLIMIT {int(q.limit) + 1}"
    )
    columns = (["bucket"] if q.grain else []) + list(q.dimensions) + list(q.metrics)
    if compare is not None:
        columns += [f"{m}_previous" for m in q.metrics]
    return Compiled(sql, params, columns, tables)


def one_pass_comparison(q: Resolved, sources: list[_Source] | None = None) -> bool:
    """Whether a comparison can be read in one scan: no time grain (buckets differ between the periods) and no
    running totals, de-duplicated sums or attribution (their own subqueries are per period)."""
    if q.grain:
        return False
    return all(not (src.cumulative or src.distinct or src.table == ATTRIBUTION_TABLE) for src in (sources or []))


def compiled_sources_allow(catalog: Catalog, q: Resolved) -> bool:
    """Whether every measure of the query's metrics can be read for two periods in one scan."""
    for metric in q.metrics:
        m = catalog.metrics[metric]
        if m.type == "cumulative":
            return False
        for ms in catalog.metric_measures(metric):
            measure = catalog.measures[ms]
            if measure.table == ATTRIBUTION_TABLE or measure.agg == "sum_distinct":
                return False
    return True


def _previous(metric_sql: str) -> str:
    """The same metric expression over the other period's aggregates (p_<measure> instead of m_<measure>)."""
    return re.sub(r"\bm_([a-z0-9_]+)", r"p_\1", metric_sql)


def _order(q: Resolved, keys: list[str]) -> str:
    if q.order_by:
        col, desc = q.order_by
        name = col if col in q.metrics or col == "bucket" else f"d_{col}"
        primary = f"{name if col in q.metrics else ('k.' + name if keys else name)} {'DESC' if desc else 'ASC'}"
        primary += " NULLS LAST"
        rest = [f"k.{k}" for k in keys]
        return ", ".join([primary, *rest]) if rest else primary
    parts = ["k.bucket"] if q.grain else []
    if q.dimensions:
        parts.append(f"{q.metrics[0]} DESC NULLS LAST")
        parts += [f"k.d_{d}" for d in q.dimensions]
    return ", ".join(parts) or "1"


def _metric_expr(catalog: Catalog, name: str, need, done: dict[str, str], partition: str | None = "") -> str:
    m = catalog.metrics[name]
    if m.type == "simple":
        return need(m.measure, catalog.measures[m.measure])
    if m.type == "cumulative":
        return need(f"{name}__cumulative", catalog.measures[m.measure], m.grain_to_date)
    if m.type == "ratio":
        num_m, den_m = catalog.measures[m.numerator], catalog.measures[m.denominator]
        num = need(m.numerator, num_m)
        den = need(m.denominator, den_m)
        if num_m.table != den_m.table:
            # a month without won revenue is 0 ROAS, but a group with no numerator rows at all (email campaigns
            # have no spend rows) has no CPL: empty, like a zero denominator (metrics-glossary)
            if partition is None:  # no time grain: the group's series is this one row
                num = f"m_{m.numerator}"
            else:
                num = f"CASE WHEN count(m_{m.numerator}) OVER ({partition}) = 0 THEN NULL ELSE {num} END"
        scale = f" * {float(m.scale)!r}" if m.scale != 1 else ""
        return f"({num}{scale} / nullif({den}, 0))"
    if m.type == "conversion":
        base = catalog.measures[m.base_measure]
        time = catalog.measure_time(m.base_measure)
        condition = f"{m.step_at} IS NOT NULL"
        if m.window_days:
            condition += f" AND {m.step_at} <= {time} + INTERVAL {int(m.window_days)} DAY"
        if base.filter:
            condition = f"({base.filter}) AND {condition}"
        converted = base.model_copy(update={"filter": condition, "agg": "count", "expr": base.expr, "time": time})
        num = need(f"{name}__converted", converted)
        den = need(m.base_measure, base)
        return f"({num} / nullif({den}, 0))"
    tree = sqlglot.parse_one(m.expr or "", read="duckdb")
    for ref in derived_refs(m.expr or ""):
        done.setdefault(ref, _metric_expr(catalog, ref, need, done, partition))

    for div in list(tree.find_all(exp.Div)):
        div.set("expression", exp.Nullif(this=div.expression.copy(), expression=exp.Literal.number(0)))
    for col in list(tree.find_all(exp.Column)):
        col.replace(exp.Paren(this=sqlglot.parse_one(done[col.name], read="duckdb")))
    return "(" + tree.sql(dialect="duckdb") + ")"


def _source_cte(
    catalog: Catalog,
    q: Resolved,
    period: Period,
    src: _Source,
    items: list[tuple[str, Measure]],
    compare: Period | None = None,
) -> tuple[str, list[Any]]:
    joins = _Joins(catalog, src)
    params: list[Any] = []
    label = catalog.metrics[q.metrics[0]].label if len(q.metrics) == 1 else ", ".join(q.metrics)
    dims = [(d, joins.column(d, label)) for d in q.dimensions]
    where: list[str] = []
    time = f"t0.{src.time}"
    start = period.start
    if src.cumulative:  # running totals start at the beginning of the unit the period starts in
        start = _unit_start(period.start, src.cumulative, catalog.spec.fiscal_year_start_month)
    if src.table == ATTRIBUTION_TABLE:
        assert catalog.spec.attribution is not None
        sub, p = attribution.credits_sql(catalog.spec.attribution, src.model or "w_shaped", src.time, start, period.end)
        base = f"({sub}) t0"
        params += p
    elif compare is not None and _adjacent(compare, period):  # one range, split by FILTER on the boundary
        base = f"{src.table} t0"
        where.append(f"{time} >= ? AND {time} < ?")
        params += [compare.start, period.end + timedelta(days=1)]
    elif compare is not None:
        base = f"{src.table} t0"
        where.append(f"(({time} >= ? AND {time} < ?) OR ({time} >= ? AND {time} < ?))")
        params += [start, period.end + timedelta(days=1), compare.start, compare.end + timedelta(days=1)]
    else:
        base = f"{src.table} t0"
        where.append(f"{time} >= ? AND {time} < ?")
        params += [start, period.end + timedelta(days=1)]
    if src.filter:
        where.append(f"({_qualify(src.filter, 't0')})")
    for dim, op, values in q.filters:
        col = joins.column(dim, label)
        marks = ", ".join("?" * len(values))
        where.append(f"{col} IN ({marks})" if op == "in" else f"({col} NOT IN ({marks}) OR {col} IS NULL)")
        params += values
    aggs = [_agg(name, m) for name, m in items]
    fiscal = catalog.spec.fiscal_year_start_month
    group = [f"{col} AS d_{d}" for d, col in dims]
    from_sql = f"{base} {' '.join(joins.clauses)}"
    where_sql = f"WHERE {' AND '.join(where)}" if where else ""
    if src.cumulative:
        return _cumulative_cte(q, period, src, items, from_sql, where_sql, group, params, fiscal)
    if q.grain:
        group.insert(0, f"{_bucket(time, q.grain, fiscal)} AS bucket")
    if src.distinct:  # count each entity once per group (influenced pipeline: full amount once per channel)
        (name, m), *_ = items
        inner_keys = [g.split(" AS ")[1] for g in group]
        inner = ", ".join([*group, f"t0.{m.key} AS _key", f"{_qualify(m.expr, 't0')} AS _value"])
        sub = f"SELECT DISTINCT {inner} FROM {from_sql} {where_sql}"
        outer = ", ".join([*inner_keys, f"sum(_value) AS m_{name}"])
        return f"SELECT {outer} FROM ({sub}) GROUP BY ALL", params
    if compare is not None:  # both periods in one scan; the SELECT's FILTER parameters come first in the text
        if _adjacent(compare, period):
            in_now, in_then, now, then = f"{time} >= ?", f"{time} < ?", [period.start], [period.start]
        else:
            in_now, in_then = f"{time} >= ? AND {time} < ?", f"{time} >= ? AND {time} < ?"
            now = [period.start, period.end + timedelta(days=1)]
            then = [compare.start, compare.end + timedelta(days=1)]
        aggs, select_params = [], []
        for name, m in items:
            aggs.append(_agg(name, m).replace(" AS m_", f" FILTER (WHERE {in_now}) AS m_"))
            aggs.append(_agg(name, m).replace(" AS m_", f" FILTER (WHERE {in_then}) AS p_"))
            select_params += now + then
        aggs.append(f"count(*) FILTER (WHERE {in_now}) AS _rows_now")
        params = [*select_params, *now, *params]
    select = ", ".join([*group, *aggs])
    return f"SELECT {select} FROM {from_sql} {where_sql} {'GROUP BY ALL' if group else ''}", params


def _adjacent(before: Period, after: Period) -> bool:
    return before.end + timedelta(days=1) == after.start


def _agg(name: str, m: Measure) -> str:
    expr = _qualify(m.expr, "t0")
    fn = {"sum": "sum({})", "count": "count({})", "count_distinct": "count(DISTINCT {})", "avg": "avg({})",
          "median": "median({})", "sum_distinct": "sum({})"}[m.agg]  # fmt: skip
    return f"{fn.format(expr)} AS m_{name}"


def _unit_start(d: date, unit: str, fiscal_start: int) -> date:
    from mopsbot.metrics.periods import FiscalCalendar, _month_start

    cal = FiscalCalendar(fiscal_start)
    return {"month": _month_start, "quarter": cal.quarter_start, "year": cal.year_start}[unit](d)


def _cumulative_cte(q, period, src, items, from_sql, where_sql, group, params, fiscal) -> tuple[str, list[Any]]:
    """Running total within each grain-to-date unit, read at the end of each output bucket (or of the period)."""
    (name, m), *_ = items
    unit = src.cumulative
    dim_keys = [g.split(" AS ")[1] for g in group]
    daily = ", ".join([f"t0.{src.time}::DATE AS day", *group, _agg(name, m).replace(f" AS m_{name}", " AS v")])
    part = ", ".join([*dim_keys, f"{_bucket('day', unit, fiscal)}"])
    running = f"SELECT *, sum(v) OVER (PARTITION BY {part} ORDER BY day) AS run FROM daily"
    if q.grain:
        bucket = _bucket("day", q.grain, fiscal)
        bucket_end = f"least({bucket} + INTERVAL 1 {q.grain} - INTERVAL 1 DAY, ?::DATE)"
        keep = f"day >= ?::DATE AND {_bucket('day', unit, fiscal)} = {_bucket(bucket_end, unit, fiscal)}"
        keys = ", ".join([f"{bucket} AS bucket", *dim_keys])
    else:
        keep = f"{_bucket('day', unit, fiscal)} = {_bucket('?::DATE', unit, fiscal)}"
        keys = ", ".join(dim_keys)
    select = ", ".join(filter(None, [keys, f"arg_max(run, day) AS m_{name}"]))
    sql = (
        f"WITH daily AS (SELECT {daily} FROM {from_sql} {where_sql} GROUP BY ALL), running AS ({running}) "
        f"SELECT {select} FROM running WHERE {keep} {'GROUP BY ALL' if keys else ''}"
    )
    # the keep clause's parameters come after the scan's, in text order
    return sql, [*params, period.start, period.end] if q.grain else [*params, period.end]


def available_dimensions(catalog: Catalog, metric: str) -> list[str]:
    """The dimensions every measure of a metric can be broken down by."""
    out = []
    for dim in catalog.dimensions:
        try:
            for ms in catalog.metric_measures(metric):
                m = catalog.measures[ms]
                _Joins(catalog, _Source(m.table, catalog.time_of(m), m.filter, m.via, m.model)).column(dim, metric)
        except QueryError:
            continue
        out.append(dim)
    return out
