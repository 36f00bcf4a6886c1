"""Guardrails on answers: every number must come from a tool result (or the user's own message)."""

from __future__ import annotations

import json
import re
from typing import Any

# 12 | 12.5 | 12,000 | $12,000 | 12% | 2.6x | -3.4 ; not parts of words or ids (INC-2026-011, Lead_Score__c)
_NUMBER = re.compile(r"(?<![\w.\-/])[-+]?\$?\d[\d,]*(?:\.\d+)?(?![\w-]*[A-Za-z_])")
_LIST_MARKER = re.compile(r"^\s*(\d{1,2})[.)]\s", re.M)
_CITATION_MARKER = re.compile(r"\[(\d{1,2})\]")


def _value(token: str) -> tuple[float, int] | None:
    """(value, decimals) of a number token, or None if it is not a number."""
    raw = token.replace("$", "").replace(",", "").lstrip("+")
    try:
        value = float(raw)
    except ValueError:
        return None
    decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
    return value, decimals


def numbers_in(text: str) -> list[str]:
    """Number tokens in prose, leaving out list markers ("1.") and citation markers ("[1]")."""
    skip = {m.start(1) for m in _LIST_MARKER.finditer(text)} | {m.start(1) for m in _CITATION_MARKER.finditer(text)}
    return [m.group(0) for m in _NUMBER.finditer(text) if m.start() not in skip and m.start() - 1 not in skip]


def evidence_values(evidence: list[Any]) -> list[float]:
    """Every number in the tool results and the user's message (JSON structures included)."""
    values: list[float] = []
    for item in evidence:
        text = item if isinstance(item, str) else json.dumps(item, default=str)
        for token in _NUMBER.findall(text):
            parsed = _value(token)
            if parsed:
                values.append(parsed[0])
        for token in re.findall(r"\d[\d,]*(?:\.\d+)?", text):  # numbers glued to words in the evidence count too
            parsed = _value(token)
            if parsed:
                values.append(parsed[0])
    return values


def _supported(value: float, decimals: int, known: list[float]) -> bool:
    tolerance = 0.5 * 10 ** (-decimals) + 1e-9
    # the answer may round a figure, or show a ratio as a percentage
    return any(abs(value - k) <= tolerance or abs(value - 100 * k) <= tolerance for k in known)


def unsupported_numbers(answer: str, evidence: list[Any]) -> list[str]:
    """Numbers in `answer` that no tool result (or the user's message) supports."""
    known = evidence_values(evidence)
    out = []
    for token in numbers_in(answer):
        parsed = _value(token)
        if parsed and not _supported(parsed[0], parsed[1], known):
            out.append(token)
    return out


def strip_unsupported(answer: str, tokens: list[str]) -> str:
    """The answer with unsupported numbers replaced by a visible marker."""
    for token in sorted(set(tokens), key=len, reverse=True):
        answer = re.sub(rf"(?<![\w.]){re.escape(token)}(?![\w])", "[unverified number removed]", answer)
    return answer
