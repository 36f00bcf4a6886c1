"""The model registry: cards from tools/models/, artifacts under the data dir, entities from the warehouse."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from rapidfuzz import fuzz, process

from mopsbot.errors import UserFacingError
from mopsbot.predictions import model as models
from mopsbot.predictions.card import ModelCard, UnknownModel, load_cards
from mopsbot.predictions.explain import Explanation, explain
from mopsbot.sqlcheck import check_sql
from mopsbot.warehouse import Session, Warehouse, session

Cursor = Callable[[], duckdb.DuckDBPyConnection]


class EntityNotFound(UserFacingError):
    """No entity with that id (or it is outside the model's population)."""


@dataclass
class WhatIf:
    before: Explanation
    after: Explanation
    changes: dict[str, Any]

    def moved(self) -> list[dict[str, Any]]:
        """Factors whose contribution changed, largest move first."""
        rows = []
        for b, a in zip(self.before.factors, self.after.factors, strict=True):
            if abs(a.contribution - b.contribution) > 1e-12:
                rows.append(
                    {
                        "feature": b.feature,
                        "business_name": b.business_name,
                        "from": b.value,
                        "to": a.value,
                        "contribution_before": b.contribution,
                        "contribution_after": a.contribution,
                        "points_before": b.points,
                        "points_after": a.points,
                    }
                )
        return sorted(rows, key=lambda r: -abs(r["contribution_after"] - r["contribution_before"]))


class Predictions:
    """Explain, what-if and batch-score with the workspace's models. Thread-safe; artifacts load once.

    Entities are read through `cursor`: a Warehouse (read per call, bounded by its timeout) or any function
    returning a new connection (closed after each call). Nothing reads the warehouse until a call needs it."""

    def __init__(self, cards_dir: Path, models_dir: Path, cursor: Cursor | Warehouse, ledger: Any = None) -> None:
        self.cards_dir = cards_dir
        self.models_dir = models_dir
        self.cursor = cursor
        # mopsbot.audit.artifacts.AuditLedger: artifact hashes recorded at training/registration, checked at load
        self.ledger = ledger
        self._cards: dict[str, ModelCard] | None = None
        self._loaded: dict[str, models.TrainedModel] = {}
        self._lock = threading.Lock()

    @property
    def cards(self) -> dict[str, ModelCard]:
        if self._cards is None:
            self._cards = load_cards(self.cards_dir) if self.cards_dir.exists() else {}
        return self._cards

    def card(self, name: str) -> ModelCard:
        """The card by name, or by a close match of its name or title. Raises UnknownModel."""
        if name in self.cards:
            return self.cards[name]
        by_title = {c.title.lower(): n for n, c in self.cards.items()} | {n.replace("_", " "): n for n in self.cards}
        hit = process.extractOne(name.lower().replace("_", " "), list(by_title), scorer=fuzz.WRatio)
        if hit and hit[1] >= 85:
            return self.cards[by_title[hit[0]]]
        raise UnknownModel(f"unknown model {name!r}; models: {', '.join(self.cards) or 'none in tools/models/'}")

    def model(self, name: str) -> models.TrainedModel:
        card = self.card(name)
        with self._lock:
            if card.name not in self._loaded:
                self._loaded[card.name] = models.load(card, self.models_dir, self.ledger)
            return self._loaded[card.name]

    def _session(self) -> Any:
        """One connection for one call, closed after; raises WarehouseUnavailable when it cannot open."""
        return self.cursor.session() if isinstance(self.cursor, Warehouse) else session(self.cursor)

    def _columns(self, s: Session, table: str) -> frozenset[str]:
        rows = s.read("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table])
        if not rows:
            raise UserFacingError(f"the warehouse has no table {table}")
        return frozenset(r[0] for r in rows)

    def _select(
        self, s: Session, card: ModelCard, where: str, params: list[Any], limit: int | None = None
    ) -> dict[str, np.ndarray]:
        columns = self._columns(s, card.entity_table)
        names = [f.name for f in card.features]
        missing = [c for c in [card.entity_key, *names] if c not in columns]
        if missing:
            raise UserFacingError(f"model {card.name}: {card.entity_table} has no column {', '.join(missing)}")
        population = card.population or "TRUE"
        check_sql(population, columns, f"model {card.name} population")
        sql = (
            f"SELECT {card.entity_key}, {', '.join(names)} FROM {card.entity_table} "  # noqa: S608
            f"WHERE ({population}) AND ({where}) ORDER BY {card.entity_key}"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        data = s.read(sql, params, fetch="numpy")
        return {
            k: (v.filled(np.nan) if hasattr(v, "filled") and v.dtype.kind == "f" else np.asarray(v))
            for k, v in data.items()
        }

    def entity(self, name: str, entity_id: int) -> dict[str, Any]:
        card = self.card(name)
        with self._session() as s:
            rows = self._select(s, card, f"{card.entity_key} = ?", [entity_id])
        if not len(rows[card.entity_key]):
            raise EntityNotFound(f"no {card.entity} {entity_id} among the {card.entity}s model {card.name} scores")
        return {k: v[0].item() if isinstance(v[0], np.generic) else v[0] for k, v in rows.items()}

    def explain(self, name: str, entity_id: int) -> Explanation:
        model = self.model(name)
        raw = self.entity(name, entity_id)
        return explain(model, entity_id, raw)

    def what_if(self, name: str, entity_id: int, changes: dict[str, Any]) -> WhatIf:
        """The prediction with some feature values changed ("what if they attended the webinar")."""
        model = self.model(name)
        raw = self.entity(name, entity_id)
        typed = {}
        for key, value in changes.items():
            feature = model.card.feature(key)
            if feature is None:
                names = ", ".join(f.name for f in model.card.features)
                raise UserFacingError(f"{key!r} is not an input of model {model.card.name}; inputs: {names}")
            typed[key] = _coerce(feature.type, value, model.spec.encoding.categories.get(key))
        before = explain(model, entity_id, raw)
        after = explain(model, entity_id, {**raw, **typed})
        return WhatIf(before, after, typed)

    def score(
        self,
        name: str,
        where: dict[str, list[Any]] | None = None,
        between: tuple[str, date, date] | None = None,
        limit: int = 10,
        min_score: float | None = None,
    ) -> dict[str, Any]:
        """Score every entity matching the filters (column -> values, and a date column range); the top `limit`."""
        model = self.model(name)
        card = model.card
        with self._session() as s:  # read, then release the warehouse before scoring
            rows, latest = self._matching(s, card, where, between)
        n = len(rows[card.entity_key])
        if not n:
            return {"model": card.name, "scored": 0, "rows": [], "tiers": {}, "data_through": latest}
        scores = (
            100 * model.predict(model.spec.encoding.encode(rows))
            if card.kind == "classifier"
            else model.predict(model.spec.encoding.encode(rows))
        )
        order = np.argsort(-scores, kind="stable")
        if min_score is not None:
            order = order[scores[order] >= min_score]
        top = order[:limit]
        out = []
        for i in top:
            score = float(scores[i])
            values = {f.name: _item(rows[f.name][i]) for f in card.features}
            out.append(
                {
                    card.entity_key: _item(rows[card.entity_key][i]),
                    "score": round(score, 2),
                    "tier": card.tier(round(score)),
                    **values,
                }
            )
        names, counts = np.unique(_tiers(card, scores), return_counts=True)
        tiers = {str(t): int(c) for t, c in zip(names, counts, strict=True)}
        return {"model": card.name, "scored": n, "rows": out, "tiers": tiers, "data_through": latest}

    def _matching(
        self,
        s: Session,
        card: ModelCard,
        where: dict[str, list[Any]] | None,
        between: tuple[str, date, date] | None,
    ) -> tuple[dict[str, np.ndarray], date | None]:
        """The entities matching the filters, and the latest date of the range's column."""
        columns = self._columns(s, card.entity_table)
        clauses, params = ["TRUE"], []
        for column, values in (where or {}).items():
            if column not in columns:
                raise UserFacingError(f"{card.entity_table} has no column {column!r} to filter on")
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
        if between:
            column, start, end = between
            if column not in columns:
                raise UserFacingError(f"{card.entity_table} has no column {column!r}")
            clauses.append(f"{column} >= ? AND {column} < ?")
            params += [start, end + timedelta(days=1)]
        rows = self._select(s, card, " AND ".join(clauses), params)
        latest = None
        if between:
            sql = f"SELECT max({between[0]})::DATE FROM {card.entity_table}"  # noqa: S608 - checked column name
            latest = s.read(sql, fetch="one")[0]
        return rows, latest

    def train(self, name: str) -> models.TrainedModel:
        """Fit a card's model on the warehouse and write its artifact (cards with a label only)."""
        card = self.card(name)
        if not card.label:
            raise UserFacingError(f"model {card.name} has no label in its card, so mopsbot cannot train it")
        with self._session() as s:  # read, then release the warehouse before fitting
            columns = self._columns(s, card.entity_table)
            for part in (card.label, card.training_filter or "TRUE"):
                check_sql(part, columns, f"model {card.name}")
            names = [f.name for f in card.features]
            population = card.population or "TRUE"
            sql = (
                f"SELECT {', '.join(names)}, ({card.label})::INT AS _label FROM {card.entity_table} "  # noqa: S608
                f"WHERE ({population}) AND ({card.training_filter or 'TRUE'}) ORDER BY {card.entity_key}"
            )
            data = s.read(sql, fetch="numpy")
        label = np.asarray(data.pop("_label"), dtype=float)
        if len(label) < 100 or label.min() == label.max():
            raise UserFacingError(f"model {card.name}: too little training data ({len(label)} rows, one class)")
        trained = models.fit(card, {k: np.asarray(v) for k, v in data.items()}, label)
        folder = models.save(trained, self.models_dir)
        if self.ledger is not None:
            self.ledger.record(card.name, card.version, models.file_hashes(folder), "mopsbot", "trained by mopsbot")
        with self._lock:
            self._loaded.pop(card.name, None)
        return trained


def _tiers(card: ModelCard, scores: np.ndarray) -> np.ndarray:
    """The tier of every score at once (the highest tier whose minimum the rounded score reaches)."""
    out = np.full(len(scores), "", dtype=object)
    rounded = np.round(scores)
    for name, tier in sorted(card.tiers.items(), key=lambda kv: kv[1].min):  # higher tiers overwrite lower ones
        out[rounded >= tier.min] = name
    return out


TRUE_WORDS = frozenset({"1", "true", "yes", "y", "attended", "did"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "not", "didn't", "did not"})


def _coerce(kind: str, value: Any, categories: list[str] | None) -> Any:
    """A what-if value in the feature's type. Raises UserFacingError for anything it cannot read for sure."""
    if kind == "binary":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise UserFacingError(f"{value!r} is not yes or no")
    if kind == "numeric":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserFacingError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise UserFacingError(f"{value!r} is not a finite number")
        return int(number) if number.is_integer() else number
    text = str(value).strip()
    if categories:
        exact = {c.lower(): c for c in categories}
        if text.lower() in exact:
            return exact[text.lower()]
        raise UserFacingError(f"{value!r} is not a known value; known: {', '.join(categories)}")
    return text


def _item(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
