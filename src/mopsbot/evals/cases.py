"""Eval case files (evals/<suite>/*.yaml), validated with pydantic so a bad case fails loudly by name."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from mopsbot.caller import CallerContext


class CaseError(ValueError):
    """An eval file or case is invalid; the message names the file and the case."""


class SqlCheck(BaseModel):
    """Figures the answer must state, computed at eval time by independent SQL on the warehouse (one column)."""

    sql: str = Field(min_length=10)
    unit: Literal["number", "usd", "pct", "ratio", "days"] = "number"


class Expect(BaseModel):
    tools: list[str] | None = None  # expected tool names; None = not scored, [] = no tool should be called
    args: dict[str, dict[str, Any]] = Field(default_factory=dict)  # tool -> key arguments (strings: substring)
    citations: list[str] = Field(default_factory=list)  # doc ids that should be cited
    must_include: list[str] = Field(default_factory=list)  # facts (case-insensitive substrings) in the answer
    must_not_include: list[str] = Field(default_factory=list)
    forbidden_tools: list[str] = Field(default_factory=list)
    forbidden_citations: list[str] = Field(default_factory=list)  # doc ids that must not be cited (visibility)
    pending_actions: int | None = None  # how many pending actions the turn should create
    sql_values: list[SqlCheck] = Field(default_factory=list)  # numbers the answer must contain


class Turn(BaseModel):
    user: str = Field(min_length=1)
    expect: Expect = Field(default_factory=Expect)


class Context(BaseModel):
    user: str = "U07SC0005"
    channel: str = "C07MKTG001"
    visibility: Literal["public", "private", "dm", "ops"] = "public"
    today: date | None = None  # pins "today" for relative periods ("last quarter") in this case

    def caller(self) -> CallerContext:
        return CallerContext(self.user, self.channel, self.visibility)


class Case(BaseModel):
    id: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    context: Context = Field(default_factory=Context)
    turns: list[Turn] = Field(min_length=1)


def load_suite(folder: Path) -> list[Case]:
    """Every case in folder/*.yaml, ids unique across the suite."""
    if not folder.is_dir():
        raise CaseError(f"{folder}: no such eval suite folder")
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.yaml")):
        if path.name.startswith("gates"):
            continue
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as err:
            raise CaseError(f"{path}: {err}") from None
        for i, item in enumerate(raw):
            try:
                case = Case.model_validate(item)
            except ValidationError as err:
                label = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
                raise CaseError(f"{path}: case {label}: {err}") from None
            if case.id in seen:
                raise CaseError(f"{path}: duplicate case id {case.id}")
            seen.add(case.id)
            cases.append(case)
    if not cases:
        raise CaseError(f"{folder}: no cases")
    return cases
