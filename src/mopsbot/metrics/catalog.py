"""The metric catalog (tools/metrics.yaml): tables, measures, metrics and dimensions, validated on load.

Every identifier the compiler will put into SQL comes from here and is checked here: names are plain identifiers,
measure expressions and filters parse as SQL that references only the columns of their own table, and every
reference between entries resolves. Errors name the file and line of the offending entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz, process
from sqlglot import exp

from mopsbot.errors import UserFacingError
from mopsbot.sqlcheck import SqlCheckError, check_sql

IDENT = r"^[a-z][a-z0-9_]*$"
Unit = Literal["usd", "count", "pct", "ratio", "days", "usd_per_day"]
ATTRIBUTION_TABLE = "attribution"
# Columns of the virtual attribution table (one row per opportunity and credited touch).
ATTRIBUTION_COLUMNS = frozenset(
    {
        "opportunity_id",
        "amount",
        "credit",
        "channel",
        "campaign_id",
        "region",
        "created_at",
        "closed_at",
        "is_won",
        "touched",
    }
)
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")


class CatalogError(UserFacingError, ValueError):
    """tools/metrics.yaml is invalid; the message names the file, the line and the entry."""


class UnknownName(UserFacingError):
    """A metric, dimension or value that is not in the catalog; the message lists the closest names."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Table(_Strict):
    time: str | None = None
    primary_key: str | None = None
    joins: dict[Annotated[str, Field(pattern=IDENT)], Annotated[str, Field(pattern=IDENT)]] = Field(
        default_factory=dict
    )
    description: str = ""


class Measure(_Strict):
    table: str = Field(pattern=IDENT)
    agg: Literal["sum", "count", "count_distinct", "avg", "median", "sum_distinct"]
    expr: str
    unit: Unit
    time: str | None = Field(None, pattern=IDENT)
    filter: str | None = None
    via: str | None = Field(None, pattern=IDENT)  # dimensions found on this joined table win (inner join)
    model: str | None = None  # attribution measures: a fixed model instead of the query's
    key: str | None = Field(None, pattern=IDENT)  # sum_distinct: the entity counted once per group


class Metric(_Strict):
    type: Literal["simple", "ratio", "derived", "cumulative", "conversion"]
    label: str
    glossary: str
    unit: Unit | None = None
    description: str = ""
    caveat: str = ""
    synonyms: list[str] = Field(default_factory=list)
    hidden: bool = False  # building blocks of derived metrics; not listed, still queryable
    good_direction: Literal["up", "down"] | None = None  # which way is good news (anomaly checks, answers)
    measure: str | None = None  # simple, cumulative
    numerator: str | None = None  # ratio
    denominator: str | None = None
    scale: float = 1.0
    expr: str | None = None  # derived
    grain_to_date: Literal["month", "quarter", "year"] | None = None  # cumulative
    base_measure: str | None = None  # conversion: the cohort
    step_at: str | None = Field(None, pattern=IDENT)  # conversion: timestamp of reaching the step
    window_days: int | None = Field(None, ge=1, le=3650)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Metric:
        need = {
            "simple": ("measure",),
            "ratio": ("numerator", "denominator"),
            "derived": ("expr", "unit"),
            "cumulative": ("measure", "grain_to_date"),
            "conversion": ("base_measure", "step_at"),
        }[self.type]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} metric needs {', '.join(missing)}")
        return self


class Dimension(_Strict):
    columns: dict[Annotated[str, Field(pattern=IDENT)], Annotated[str, Field(pattern=IDENT)]]
    values: list[str] | None = None
    synonyms: list[str] = Field(default_factory=list)


class AttributionConfig(_Strict):
    default_model: Literal["first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"] = "w_shaped"
    lookback_days: int = Field(90, ge=1, le=730)
    time_decay_half_life_days: float = Field(7.0, gt=0)
    counted_touch_types: list[Annotated[str, Field(pattern=IDENT)]]
    no_touch_label: str = "No marketing touch"


class CatalogFile(_Strict):
    version: Literal[1]
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
    tables: dict[Annotated[str, Field(pattern=IDENT)], Table]
    attribution: AttributionConfig | None = None
    measures: dict[Annotated[str, Field(pattern=IDENT)], Measure]
    metrics: dict[Annotated[str, Field(pattern=IDENT)], Metric]
    dimensions: dict[Annotated[str, Field(pattern=IDENT)], Dimension]


@dataclass(frozen=True)
class Catalog:
    """The validated catalog plus name lookups (synonyms, close matches)."""

    spec: CatalogFile
    path: Path
    columns: dict[str, frozenset[str]] = field(default_factory=dict)  # table -> columns, when checked
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # name indexes, built once

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.spec.metrics

    @property
    def measures(self) -> dict[str, Measure]:
        return self.spec.measures

    @property
    def dimensions(self) -> dict[str, Dimension]:
        return self.spec.dimensions

    @property
    def tables(self) -> dict[str, Table]:
        return self.spec.tables

    def measure_time(self, name: str) -> str:
        return self.time_of(self.measures[name])

    def time_of(self, m: Measure) -> str:
        """The date column that governs a measure: its own, else its table's."""
        if m.time:
            return m.time
        if m.table == ATTRIBUTION_TABLE:
            return "created_at"
        time = self.tables[m.table].time
        assert time, f"{m.table} has no time column"  # load() checks this
        return time

    def metric(self, name: str) -> Metric:
        """The metric by name or synonym. Raises UnknownName with the closest names."""
        key = _norm(name)
        found = self._metric_names().get(key)
        if found:
            return self.metrics[found]
        raise UnknownName(f"unknown metric {name!r}; closest: {', '.join(self.closest_metrics(name))}")

    def metric_name(self, name: str) -> str:
        self.metric(name)
        return self._metric_names()[_norm(name)]

    def dimension_name(self, name: str) -> str:
        """The dimension by name or synonym. Raises UnknownName with the closest names."""
        if "dimension_names" not in self._cache:
            index = {_norm(n): n for n in self.dimensions}
            index |= {_norm(s): n for n, d in self.dimensions.items() for s in d.synonyms}
            self._cache["dimension_names"] = index
        names = self._cache["dimension_names"]
        if _norm(name) in names:
            return names[_norm(name)]
        close = [m for m, _, _ in process.extract(_norm(name), list(names), scorer=fuzz.WRatio, limit=3)]
        raise UnknownName(f"unknown dimension {name!r}; closest: {', '.join(dict.fromkeys(names[c] for c in close))}")

    def closest_metrics(self, name: str, limit: int = 3) -> list[str]:
        names = self._metric_names()
        hits = process.extract(_norm(name), list(names), scorer=fuzz.WRatio, limit=limit * 3)
        return list(dict.fromkeys(names[h] for h, _, _ in hits))[:limit]

    def _metric_names(self) -> dict[str, str]:
        if "metric_names" not in self._cache:
            names = {_norm(n): n for n in self.metrics}
            for n, m in self.metrics.items():
                names.setdefault(_norm(m.label), n)
                for s in m.synonyms:
                    names.setdefault(_norm(s), n)
            self._cache["metric_names"] = names
        return self._cache["metric_names"]

    def mention_pattern(self) -> tuple[re.Pattern[str], dict[str, str]]:
        """One compiled regex finding any visible metric's phrase (longest alternative first, plurals allowed) and
        the map from a matched phrase, separators removed, to its metric."""
        if "mentions" not in self._cache:
            keys: dict[str, str] = {}
            alternatives = []
            for phrase, name in self.synonym_index():
                keys.setdefault(re.sub(r"[\s_-]+", "", phrase), name)
                alternatives.append(re.escape(phrase).replace(r"\ ", r"[\s_-]+").replace(r"\-", r"[\s_-]?"))
            pattern = re.compile(rf"(?<![\w-])(?P<p>{'|'.join(alternatives)})(?:e?s)?(?![\w-])", re.I)
            self._cache["mentions"] = (pattern, keys)
        return self._cache["mentions"]

    def synonym_index(self) -> list[tuple[str, str]]:
        """(phrase, metric) for every visible metric's name, label and synonyms, longest phrase first."""
        pairs = []
        for n, m in self.metrics.items():
            if m.hidden:
                continue
            for phrase in {n.replace("_", " "), m.label, *m.synonyms}:
                pairs.append((phrase.lower(), n))
        return sorted(set(pairs), key=lambda p: -len(p[0]))

    def metric_unit(self, name: str) -> str:
        m = self.metrics[name]
        if m.unit:
            return m.unit
        if m.type in ("simple", "cumulative"):
            return self.measures[m.measure].unit  # type: ignore[index]
        if m.type == "conversion":
            return "pct"
        return self.measures[m.numerator].unit  # type: ignore[index]

    def metric_measures(self, name: str) -> list[str]:
        """The measures a metric reads, derived metrics expanded."""
        m = self.metrics[name]
        if m.type in ("simple", "cumulative"):
            return [m.measure]  # type: ignore[list-item]
        if m.type == "ratio":
            return [m.numerator, m.denominator]  # type: ignore[list-item]
        if m.type == "conversion":
            return [m.base_measure]  # type: ignore[list-item]
        out: list[str] = []
        for ref in derived_refs(m.expr or ""):
            out += self.metric_measures(ref)
        return list(dict.fromkeys(out))

    def normalize_value(self, dimension: str, value: str) -> str:
        """A filter value in the dimension's spelling ("emea" -> "EMEA", "paid social" -> "paid_social").

        Closed dimensions refuse values outside their list (UnknownName); open ones keep the value as given.
        """
        allowed = self.dimensions[dimension].values
        if allowed is None:
            return value
        norm = {_norm(v): v for v in allowed}
        key = _norm(value)
        if key in norm:
            return norm[key]
        close = [c for c, _, _ in process.extract(key, list(norm), scorer=fuzz.WRatio, limit=3)]
        raise UnknownName(
            f"{value!r} is not a {dimension} value; allowed: {', '.join(allowed)} (closest: "
            f"{', '.join(norm[c] for c in close)})"
        )


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower().replace("->", " to "))


def _check(text: str, columns: frozenset[str] | None, where: str) -> None:
    try:
        check_sql(text, columns, where)
    except SqlCheckError as err:
        raise CatalogError(str(err)) from None


def derived_refs(expr: str) -> list[str]:
    """Metric names referenced by a derived metric's expression."""
    return list(dict.fromkeys(c.name for c in sqlglot.parse_one(expr, read="duckdb").find_all(exp.Column)))


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (a pydantic error location), or of its nearest parent."""
    node, line = root, None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def _entry_line(root: yaml.Node | None, *loc: str) -> str:
    line = _line_of(root, loc)
    return f"line {line}: " if line else ""


def load_catalog(path: Path, columns: dict[str, frozenset[str]] | None = None) -> Catalog:
    """Load and validate tools/metrics.yaml. With `columns` (table -> its columns, from the warehouse) every
    column reference is checked too. Raises CatalogError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: file not found") from None
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise CatalogError(f"{path}:{mark.line + 1 if mark else '?'}: {err.problem or err}") from None
    try:
        spec = CatalogFile.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(root, loc)
        where = ".".join(str(x) for x in loc)
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise CatalogError(f"{path}:{line or '?'}: {where}: {first['msg']}{more}") from None
    _check_references(spec, path, root, columns)
    return Catalog(spec, path, columns or {})


def _check_references(
    spec: CatalogFile, path: Path, root: yaml.Node | None, columns: dict[str, frozenset[str]] | None
) -> None:
    def err(msg: str, *loc: str) -> CatalogError:
        return CatalogError(f"{path}: {_entry_line(root, *loc)}{'.'.join(loc)}: {msg}")

    tables = set(spec.tables) | {ATTRIBUTION_TABLE}

    def cols(table: str) -> frozenset[str] | None:
        if table == ATTRIBUTION_TABLE:
            return ATTRIBUTION_COLUMNS
        return columns.get(table) if columns is not None else None

    for name, t in spec.tables.items():
        for target, fk in t.joins.items():
            if target not in spec.tables or not spec.tables[target].primary_key:
                raise err(f"joins {target}, which is not a table with a primary_key", "tables", name, "joins")
            if (c := cols(name)) is not None and fk not in c:
                raise err(f"join column {fk} is not a column of {name}", "tables", name, "joins")
    for name, m in spec.measures.items():
        where = ("measures", name)
        if m.table not in tables:
            raise err(f"unknown table {m.table}", *where)
        if m.table == ATTRIBUTION_TABLE and spec.attribution is None:
            raise err("attribution measures need the `attribution` section", *where)
        if m.model and m.model not in (*ATTRIBUTION_MODELS, "any_touch"):
            raise err(f"unknown attribution model {m.model}", *where)
        if m.agg == "sum_distinct" and not m.key:
            raise err("sum_distinct needs a key (the entity counted once per group)", *where)
        if not m.time and m.table != ATTRIBUTION_TABLE and not spec.tables[m.table].time:
            raise err(f"table {m.table} has no time column; give the measure a time", *where)
        if m.via and m.via not in spec.tables:
            raise err(f"via {m.via} is not a table", *where)
        loc = f"{path}: {_entry_line(root, *where)}measures.{name}"
        _check(m.expr, cols(m.table), f"{loc}.expr")
        if m.filter:
            _check(m.filter, cols(m.table), f"{loc}.filter")
        c = cols(m.table)
        if c is not None:
            for col in (m.time, m.key):
                if col and col not in c:
                    raise err(f"column {col} is not a column of {m.table}", *where)
    for name, met in spec.metrics.items():
        where = ("metrics", name)
        refs = [met.measure, met.numerator, met.denominator, met.base_measure]
        for ref in (r for r in refs if r):
            if ref not in spec.measures:
                raise err(f"unknown measure {ref}", *where)
        if met.type == "derived":
            _check(met.expr or "", None, f"{path}: {_entry_line(root, *where)}metrics.{name}.expr")
            for ref in derived_refs(met.expr or ""):
                if ref not in spec.metrics or ref == name:
                    raise err(f"derived expression names {ref!r}, which is not another metric", *where)
                if spec.metrics[ref].type == "derived":
                    raise err(f"derived metric uses derived metric {ref}; inline it instead", *where)
        if met.type == "conversion":
            base = spec.measures[met.base_measure]  # type: ignore[index]
            c = cols(base.table)
            if c is not None and met.step_at not in c:
                raise err(f"step_at {met.step_at} is not a column of {base.table}", *where)
    for name, d in spec.dimensions.items():
        for table, column in d.columns.items():
            if table not in tables:
                raise err(f"unknown table {table}", "dimensions", name)
            if (c := cols(table)) is not None and column not in c:
                raise err(f"column {column} is not a column of {table}", "dimensions", name)
