"""Routing a change request from what it changes: the workspace taxonomy (tools/changes.yaml) and its rules.

The caller (local planner or LLM) fills structured fields; this policy derives the category, risk and approval kind
from the systems and fields the change touches, as named in its fields and text. Anything the caller says can
only make the route stricter. When consent cannot be ruled out, or nothing can be established, the change takes
the strictest route and the reasons say why.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mopsbot.workspace import WorkspaceError, load_yaml

RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def _pattern(aliases: list[str]) -> re.Pattern[str] | None:
    parts = []
    for alias in aliases:
        alias = str(alias).strip().lower()
        if not alias:
            continue
        stem, star = (alias[:-1], True) if alias.endswith("*") else (alias, False)
        body = r"[\s_-]*".join(re.escape(w) for w in re.split(r"[\s_]+", stem) if w)
        start = r"(?<![\w])" if stem[:1].isalnum() else ""
        end = r"[\w-]*" if star else (r"(?![\w])" if stem[-1:].isalnum() else "")
        parts.append(start + body + end)
    return re.compile("|".join(parts), re.I) if parts else None


def _counts(nouns: list[str]) -> re.Pattern[str] | None:
    """Numbers of records in a text: "14,500 leads", "~20k contacts"."""
    if not nouns:
        return None
    words = "|".join(re.escape(str(n)) for n in nouns)
    return re.compile(rf"(\d{{1,3}}(?:,\d{{3}})+|\d+)\s+(?:[A-Za-z-]+\s+){{0,2}}(?:{words})\b", re.I)


@dataclass(frozen=True)
class Term:
    name: str
    system: str | None
    category: str | None
    consent_possible: bool
    pattern: re.Pattern[str] | None


@dataclass(frozen=True)
class Route:
    """What the policy decided: category, risk, the approval kind, the fields it found and why."""

    category: str
    risk: str
    action_kind: str
    systems: tuple[str, ...]
    fields: tuple[str, ...]
    reasons: tuple[str, ...]
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangePolicy:
    categories: dict[str, dict[str, Any]]
    systems: dict[str, Term]
    fields: dict[str, Term]
    strictest: dict[str, str]
    records_medium: int = 10000
    several_systems_risk: str = "medium"
    emergency_risk: str = "medium"
    version: str = "none"
    default_kind: str = "change_request"
    _order: tuple[str, ...] = field(default=())
    record_count: re.Pattern[str] | None = None
    broad_scope: re.Pattern[str] | None = None

    @classmethod
    def load(cls, tools_dir: Path) -> ChangePolicy:
        """Read tools/changes.yaml; a missing file means every change takes the strictest route."""
        path = tools_dir / "changes.yaml"
        if not path.exists():
            return cls({"consent": {"risk": "high", "action_kind": "consent_change"}}, {}, {},
                       {"category": "consent", "risk": "high"})  # fmt: skip
        spec: dict[str, Any] = load_yaml(path)
        categories = {str(k): dict(v or {}) for k, v in (spec.get("categories") or {}).items()}
        for name, rule in categories.items():
            if rule.get("risk", "high") not in RISK_ORDER:
                raise WorkspaceError(f"{path}: categories.{name}.risk must be low, medium or high")
        systems = {
            str(name): Term(str(name), str(name), (v or {}).get("category"), False,
                            _pattern([str(name), *((v or {}).get("aliases") or [])]))
            for name, v in (spec.get("systems") or {}).items()
        }  # fmt: skip
        fields = {}
        for entry in spec.get("fields") or []:
            name = str(entry["name"])
            category = entry.get("category")
            if category is not None and category not in categories:
                raise WorkspaceError(f"{path}: field {name!r} names unknown category {category!r}")
            fields[name] = Term(
                name,
                entry.get("system"),
                category,
                entry.get("consent") == "possible",
                _pattern([name, *(entry.get("aliases") or [])]),
            )
        strictest = dict(spec.get("strictest") or {"category": "consent", "risk": "high"})
        return cls(
            categories,
            systems,
            fields,
            strictest,
            int(spec.get("records_medium", 10000)),
            str(spec.get("several_systems_risk", "medium")),
            str(spec.get("emergency_risk", "medium")),
            hashlib.sha256(path.read_bytes()).hexdigest(),
            _order=tuple(categories),
            record_count=_counts(spec.get("record_nouns") or []),
            broad_scope=_pattern(list(spec.get("broad_scope") or [])),
        )

    @property
    def system_names(self) -> tuple[str, ...]:
        return tuple(self.systems)

    def known_system(self, name: str) -> str | None:
        by_lower = {s.lower(): s for s in self.systems}
        return by_lower.get(name.strip().lower())

    def known_field(self, name: str) -> str | None:
        by_lower = {f.lower(): f for f in self.fields}
        return by_lower.get(name.strip().lower())

    def kind_of(self, category: str) -> str:
        return str(self.categories.get(category, {}).get("action_kind") or self.default_kind)

    def risk_of(self, category: str) -> str:
        return str(self.categories.get(category, {}).get("risk", "high"))

    def classify(
        self,
        *,
        text: str,
        systems: list[str] | tuple[str, ...] = (),
        fields: list[str] | tuple[str, ...] = (),
        category: str | None = None,
        change_type: str = "normal",
        records: int | None = None,
    ) -> Route:
        """The route of a change. `category` and `fields` from the caller are hints that can only add."""
        reasons: list[str] = []
        found_fields: dict[str, Term] = {}
        for name in fields:
            known = self.known_field(name)
            if known:
                found_fields[known] = self.fields[known]
        for name, term in self.fields.items():
            if term.pattern and term.pattern.search(text):
                found_fields.setdefault(name, term)
        found_systems = {s for s in (self.known_system(n) for n in systems) if s}
        for name, term in self.systems.items():
            if term.pattern and term.pattern.search(text):
                found_systems.add(name)
        found_systems |= {t.system for t in found_fields.values() if t.system and t.system in self.systems}

        cats: dict[str, str] = {}
        for term in found_fields.values():
            if term.category:
                cats.setdefault(term.category, f"touches {term.name}")
        for name in found_systems:
            sys_cat = self.systems[name].category
            if sys_cat:
                cats.setdefault(sys_cat, f"touches {name}")
        if category and category in self.categories:
            cats.setdefault(category, f"filed as {category}")

        strict_cat = self.strictest.get("category", "consent")
        possible = [t.name for t in found_fields.values() if t.consent_possible]
        if "consent" not in cats and possible:
            cats[strict_cat] = f"could not rule out a consent change: it changes {', '.join(possible)}"
        if not cats:
            what = f"for {', '.join(sorted(found_systems))}" if found_systems else "in the change"
            cats[strict_cat] = f"could not rule out a consent change: no field or category could be established {what}"
        ranked = sorted(cats, key=lambda c: (-RISK_ORDER[self.risk_of(c)], self._rank(c)))
        primary = ranked[0]
        risk = max((self.risk_of(c) for c in cats), key=RISK_ORDER.__getitem__)
        if primary == strict_cat and cats[primary].startswith("could not"):
            risk = max(risk, self.strictest.get("risk", "high"), key=RISK_ORDER.__getitem__)
        reasons += [f"{cats[c]}: {c} ({self.risk_of(c)} risk)" for c in ranked]
        bumps = []
        if change_type == "emergency" and RISK_ORDER[self.emergency_risk] > RISK_ORDER[risk]:
            bumps.append(("an emergency change", self.emergency_risk))
        if len(found_systems) > 1 and RISK_ORDER[self.several_systems_risk] > RISK_ORDER[risk]:
            bumps.append((f"it touches {len(found_systems)} systems", self.several_systems_risk))
        if records is None and self.record_count is not None:
            counts = [int(m.group(1).replace(",", "")) for m in self.record_count.finditer(text)]
            records = max(counts) if counts else None
        if self.broad_scope is not None and (wide := self.broad_scope.search(text)) and RISK_ORDER[risk] < 1:
            bumps.append((f"it affects several programs ({wide.group(0)})", "medium"))
        if records is not None and records > self.records_medium and RISK_ORDER["medium"] > RISK_ORDER[risk]:
            bumps.append((f"it affects {records:,} records", "medium"))
        for why, level in bumps:
            risk = max(risk, level, key=RISK_ORDER.__getitem__)
            reasons.append(f"{why}: at least {level} risk")
        kinds = [self.kind_of(c) for c in ranked]
        kind = next((k for k in kinds if k != self.default_kind), self.default_kind)
        return Route(
            category=primary,
            risk=risk,
            action_kind=kind,
            systems=tuple(sorted(found_systems)),
            fields=tuple(sorted(found_fields)),
            reasons=tuple(reasons),
            categories=tuple(ranked),
        )

    def _rank(self, category: str) -> int:
        return self._order.index(category) if category in self._order else len(self._order)
