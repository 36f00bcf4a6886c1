"""Running metric queries on the warehouse: read-only, external access off, every result with its provenance."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from mopsbot.errors import UserFacingError
from mopsbot.metrics import attribution
from mopsbot.metrics.catalog import ATTRIBUTION_TABLE, Catalog, load_catalog
from mopsbot.metrics.compiler import (
    Compiled,
    compile_query,
    compiled_sources_allow,
    one_pass_comparison,
    resolve,
)
from mopsbot.metrics.periods import FiscalCalendar, Period, add_months, comparison_period, parse_period
from mopsbot.metrics.query import MetricQuery
from mopsbot.warehouse import (
    DEFAULT_TIMEOUT_S,
    Generation,
    Session,
    Warehouse,
    WarehouseTimeout,
    WarehouseUnavailable,
    connect_read_only,  # noqa: F401 - re-exported: callers and tests import it from here
)

DEFAULT_PERIOD = "last 90 days"
_QUESTION: ContextVar[tuple[MetricsEngine, Session] | None] = ContextVar("metrics_question", default=None)


@dataclass
class MetricResult:
    """Rows plus everything needed to trust them: SQL, parameters, period, freshness, definitions, notes."""

    metrics: list[str]
    dimensions: list[str]
    grain: str | None
    period: Period
    columns: list[str]
    rows: list[dict[str, Any]]
    sql: str
    params: list[Any]
    units: dict[str, str]
    labels: dict[str, str]
    definitions: dict[str, str]
    freshness: dict[str, str]
    truncated: bool = False
    filters: list[dict[str, Any]] = field(default_factory=list)
    comparison: Period | None = None
    compare_to: str | None = None
    attribution: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        period = {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "label": self.period.label,
        }
        comp = None
        if self.comparison:
            comp = {"start": self.comparison.start.isoformat(), "end": self.comparison.end.isoformat(),
                    "label": self.comparison.label, "compare_to": self.compare_to}  # fmt: skip
        return {
            "metrics": self.metrics,
            "dimensions": self.dimensions,
            "filters": self.filters,
            "grain": self.grain,
            "period": period,
            "comparison": comp,
            "attribution": self.attribution,
            "columns": self.columns,
            "rows": [{k: _json(v) for k, v in r.items()} for r in self.rows],
            "row_count": self.row_count,
            "truncated": self.truncated,
            "units": self.units,
            "labels": self.labels,
            "definitions": self.definitions,
            "freshness": self.freshness,
            "sql": self.sql,
            "params": [_json(p) for p in self.params],
            "notes": self.notes,
        }


def _json(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "__float__") and not isinstance(v, (int, float, bool)):
        return float(v)
    return v


class MetricsEngine:
    """The semantic layer: catalog + warehouse. Thread-safe; holds no warehouse file between questions (each
    question attaches it read-only, reads and detaches), so a writer waits at most one question and a reseed
    is seen by the next question.

    `timeout_s` bounds every warehouse statement. With `lazy`, reading the catalog never touches the warehouse
    (the bot starts, and answers knowledge questions, whatever state the warehouse is in); its columns are
    checked at the first question on each new version of the file instead."""

    def __init__(
        self,
        catalog_path: Path,
        warehouse_path: Path,
        today: date | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lazy: bool = False,
    ) -> None:
        self.catalog_path = catalog_path
        self.warehouse = Warehouse(warehouse_path, timeout_s)
        self.today = today
        self.lazy = lazy
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._checked: Generation | None = None  # the warehouse version the catalog's columns were checked on

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse.path

    @property
    def timeout_s(self) -> float:
        return self.warehouse.timeout_s

    @property
    def catalog(self) -> Catalog:
        """The catalog. Unless lazy, also checked against the warehouse's columns when the warehouse can be read
        now. Raises CatalogError."""
        if self._catalog is None and not self.lazy:
            try:
                with self.warehouse.session() as s:
                    return self._checked_catalog(s)
            except (WarehouseUnavailable, WarehouseTimeout):
                pass  # checked at the first question instead
        return self._shape()

    def _shape(self) -> Catalog:
        """The catalog as loaded (checked against the warehouse if a question has read it); reads no warehouse."""
        if self._catalog is None:
            shape = load_catalog(self.catalog_path)
            with self._lock:
                self._catalog = self._catalog or shape
        return self._catalog

    def _checked_catalog(self, s: Session) -> Catalog:
        """The catalog checked against the columns of the warehouse version `s` reads (once per version)."""
        if self._catalog is not None and s.generation is not None and self._checked == s.generation:
            return self._catalog
        out: dict[str, set[str]] = {}
        for table, column in s.read("SELECT table_name, column_name FROM information_schema.columns"):
            out.setdefault(table, set()).add(column)
        catalog = load_catalog(self.catalog_path, {t: frozenset(c) for t, c in out.items()})
        with self._lock:
            self._catalog, self._checked = catalog, s.generation
        return catalog

    @property
    def cursor(self) -> Warehouse:
        """The warehouse as a connection factory: `engine.cursor()` is a new read-only connection for hand-written
        SQL (close it); handed to Predictions, its reads go per question, bounded by the timeout."""
        return self.warehouse

    def close(self) -> None:
        """Release the in-memory database questions attach the file to (no file is held between questions)."""
        self.warehouse.close()

    def ping(self) -> dict[str, Any]:
        """Readiness probe: the warehouse opens and answers `select 1`, every catalog table's latest date reads,
        and the main table's (the one most measures read) is reported; short timeout. Returns {"ok": bool,
        "detail": str}; never raises."""
        tables: list[tuple[str, str]] = []
        try:
            catalog = self._catalog or load_catalog(self.catalog_path)
            counts = Counter(m.table for m in catalog.measures.values() if m.table in catalog.tables)
            order = sorted(catalog.tables, key=lambda t: -counts[t])
            tables = [(t, catalog.tables[t].time) for t in order if catalog.tables[t].time]
        except Exception:  # a broken catalog must not hide whether the warehouse answers
            tables = []
        return self.warehouse.ping(tables)

    @property
    def calendar(self) -> FiscalCalendar:
        return FiscalCalendar(self._shape().spec.fiscal_year_start_month)

    def period_of(self, query: MetricQuery, today: date | None = None) -> Period:
        if query.start and query.end:
            return Period(query.start, query.end, f"{query.start.isoformat()} to {query.end.isoformat()}")
        return parse_period(query.period or DEFAULT_PERIOD, today or self.today or date.today(), self.calendar)

    def freshness(self, tables: set[str]) -> dict[str, str]:
        """The latest date in each table's governing column (read each time: a reseed must show at once)."""
        out = {}
        with self._question() as s:
            for t in sorted(tables):
                time = self._shape().tables[t].time
                latest = s.read(f"SELECT max({time})::DATE FROM {t}", fetch="one")[0]  # names from the catalog
                out[t] = latest.isoformat() if latest else ""
        return out

    @contextmanager
    def _question(self) -> Iterator[Session]:
        """The session of the question under way in this thread, or a new one for the duration: one question's
        reads share one attachment of the file."""
        current = _QUESTION.get()
        if current is not None and current[0] is self:
            yield current[1]
            return
        with self.warehouse.session() as s:
            token = _QUESTION.set((self, s))
            try:
                yield s
            finally:
                _QUESTION.reset(token)

    def query(self, query: MetricQuery, today: date | None = None) -> MetricResult:
        """Run a metric query. Raises UserFacingError subclasses (unknown names, bad periods, no warehouse,
        an unreadable or busy warehouse, a statement over the timeout)."""
        catalog = self._shape()
        resolved = resolve(catalog, query)
        period = self.period_of(query, today)
        comp = comparison_period(period, query.compare_to, self.calendar) if query.compare_to else None
        # a comparison without a time grain reads both periods in one scan; otherwise one query per period
        one_pass = comp is not None and one_pass_comparison(resolved) and compiled_sources_allow(catalog, resolved)
        compiled = compile_query(catalog, resolved, period, comp if one_pass else None)
        with self._question() as s:
            catalog = self._checked_catalog(s)
            rows = self._run(compiled)
            freshness = self.freshness(compiled.tables)
            previous = self._run(compile_query(catalog, resolved, comp)) if comp and not one_pass else None
        truncated = len(rows) > resolved.limit
        rows = rows[: resolved.limit]
        result = MetricResult(
            metrics=resolved.metrics,
            dimensions=resolved.dimensions,
            grain=resolved.grain,
            period=period,
            columns=compiled.columns,
            rows=rows,
            sql=compiled.sql,
            params=compiled.params,
            units={m: catalog.metric_unit(m) for m in resolved.metrics},
            labels={m: catalog.metrics[m].label for m in resolved.metrics},
            definitions={m: self.definition(m) for m in resolved.metrics},
            freshness=freshness,
            truncated=truncated,
            filters=[{"dimension": d, "op": op, "values": v} for d, op, v in resolved.filters],
        )
        if any(_attributed(catalog, m) for m in resolved.metrics):
            result.attribution = resolved.attribution
            result.notes.append(attribution.CAVEAT)
        for m in resolved.metrics:
            if catalog.metrics[m].caveat:
                result.notes.append(catalog.metrics[m].caveat)
        latest = min((d for d in result.freshness.values() if d), default="")
        if latest and period.end > date.fromisoformat(latest):
            result.notes.append(f"The data runs to {latest}: the part of the period after that has no data yet.")
        if comp is not None:
            if one_pass:
                for r in result.rows:
                    for m in resolved.metrics:
                        r[f"{m}_change"] = _change(r.get(m), r.get(f"{m}_previous"))
                result.columns = [*compiled.columns, *(f"{m}_change" for m in resolved.metrics)]
            else:
                _merge_comparison(result, previous or [], period, comp, self.calendar)
            result.comparison, result.compare_to = comp, query.compare_to
        return result

    def _run(self, compiled: Compiled) -> list[dict[str, Any]]:
        """Rows of one compiled statement, in the current question's session or one of its own. Raises
        UserFacingError (WarehouseTimeout past the timeout)."""
        try:
            with self._question() as s:
                rows = s.read(compiled.sql, compiled.params)
        except duckdb.Error as err:
            raise UserFacingError(f"the warehouse refused the metric query: {str(err).splitlines()[0]}") from err
        return [dict(zip(compiled.columns, (_plain(v) for v in row), strict=True)) for row in rows]

    def definition(self, name: str) -> str:
        catalog = self._shape()
        m = catalog.metrics[name]
        text = m.description or _formula(catalog, name)
        return f"{m.label}: {text}"

    def dimension_values(self, dimension: str, limit: int = 1000) -> list[str]:
        """Distinct values of a dimension in the warehouse (for matching a campaign or owner name)."""
        catalog = self._shape()
        d = catalog.dimensions[catalog.dimension_name(dimension)]
        if d.values is not None:
            return list(d.values)
        table, column = next((t, c) for t, c in d.columns.items() if t != ATTRIBUTION_TABLE)
        sql = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY 1 LIMIT ?"
        with self._question() as s:
            return [r[0] for r in s.read(sql, [limit])]


def _plain(v: Any) -> Any:
    if hasattr(v, "__float__") and not isinstance(v, (int, float, bool)):
        return float(v)  # Decimal -> float for formatting and JSON
    return v


def _attributed(catalog: Catalog, metric: str) -> bool:
    return any(catalog.measures[ms].table == ATTRIBUTION_TABLE for ms in catalog.metric_measures(metric))


def _formula(catalog: Catalog, name: str) -> str:
    m = catalog.metrics[name]
    if m.type == "ratio":
        scale = f" x {m.scale:g}" if m.scale != 1 else ""
        return f"sum of {m.numerator} / sum of {m.denominator}{scale}"
    if m.type == "derived":
        return m.expr or ""
    if m.type == "conversion":
        window = f" within {m.window_days} days" if m.window_days else ""
        return f"share of {m.base_measure} in the period that reached {m.step_at}{window}"
    if m.type == "cumulative":
        return f"running total of {m.measure} from the start of the {m.grain_to_date}"
    ms = catalog.measures[m.measure]  # type: ignore[index]
    return f"{ms.agg} of {ms.expr} from {ms.table}"


def _change(now: float | None, prev: float | None) -> float | None:
    """Relative change; empty when either side is empty or the previous value is 0."""
    return (now - prev) / abs(prev) if now is not None and prev not in (None, 0) else None


def _merge_comparison(
    result: MetricResult, previous: list[dict[str, Any]], period: Period, comp: Period, cal: FiscalCalendar
) -> None:
    """Add <metric>_previous and <metric>_change (relative) columns, matching rows on dimensions and on the time
    bucket shifted onto the current period (January 2025 -> January 2026, not "the first bucket")."""
    months = _month_offset(period, comp)
    keyed = {}
    for r in previous:
        key = tuple(
            _shift_bucket(r[c], result.grain, months, period.start - comp.start, cal) if c == "bucket" else r[c]
            for c in ("bucket", *result.dimensions)
            if c in r
        )
        keyed[key] = r
    for r in result.rows:
        key = tuple(r[c] for c in ("bucket", *result.dimensions) if c in r)
        before = keyed.get(key, {})
        for m in result.metrics:
            prev = before.get(m)
            r[f"{m}_previous"] = prev
            now = r.get(m)
            r[f"{m}_change"] = _change(now, prev)
    result.columns += [f"{m}_{s}" for m in result.metrics for s in ("previous", "change")]


def _month_offset(period: Period, comp: Period) -> int | None:
    """Whole months between the two periods' starts when both start on the same day of the month, else None."""
    if period.start.day != comp.start.day:
        return None
    return (period.start.year - comp.start.year) * 12 + period.start.month - comp.start.month


def _shift_bucket(bucket: Any, grain: str | None, months: int | None, days: timedelta, cal: FiscalCalendar) -> Any:
    if not isinstance(bucket, date) or grain is None:
        return bucket
    shifted = (
        add_months(bucket, months) if months is not None and grain in ("month", "quarter", "year") else bucket + days
    )
    if grain == "week":
        return shifted - timedelta(days=shifted.weekday())
    if grain == "month":
        return shifted.replace(day=1)
    if grain == "quarter":
        return cal.quarter_start(shifted)
    if grain == "year":
        return cal.year_start(shifted)
    return shifted
