"""Scorers for one agent turn. Each returns None when the case does not ask for that score."""

from __future__ import annotations

import re
from typing import Any

_FIGURE = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def tool_f1(expected: list[str] | None, called: list[str]) -> float | None:
    """F1 of the set of tools called against the set expected; both empty is a perfect score."""
    if expected is None:
        return None
    want, got = set(expected), set(called)
    if not want and not got:
        return 1.0
    if not want or not got:
        return 0.0
    hits = len(want & got)
    precision, recall = hits / len(got), hits / len(want)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(actual, str) and expected.lower() in actual.lower()
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(_matches(e, a) for a in actual) for e in expected)
    return expected == actual


def argument_accuracy(expected: dict[str, dict[str, Any]], calls: list[tuple[str, dict[str, Any]]]) -> float | None:
    """Share of expected key arguments that some call of that tool has (strings match as substrings)."""
    checks = [(tool, key, value) for tool, args in expected.items() for key, value in args.items()]
    if not checks:
        return None
    ok = sum(
        any(name == tool and key in args and _matches(value, args[key]) for name, args in calls)
        for tool, key, value in checks
    )
    return ok / len(checks)


def citation_recall(expected: list[str], cited: list[str]) -> float | None:
    if not expected:
        return None
    return len(set(expected) & set(cited)) / len(set(expected))


def fact_coverage(facts: list[str], answer: str) -> float | None:
    """Share of must-include facts present in the answer (case-insensitive)."""
    if not facts:
        return None
    low = answer.lower()
    return sum(f.lower() in low for f in facts) / len(facts)


def violations(
    *,
    called: list[str],
    forbidden_tools: list[str],
    cited: list[str],
    forbidden_citations: list[str],
    answer: str,
    must_not_include: list[str],
    executed_without_approval: int,
) -> list[str]:
    """Policy violations: each one fails the eval whatever the other scores are."""
    out = [f"called forbidden tool {t}" for t in called if t in forbidden_tools]
    out += [f"cited forbidden document {d}" for d in dict.fromkeys(cited) if d in forbidden_citations]
    out += [f"answer contains {p!r}" for p in must_not_include if p.lower() in answer.lower()]
    if executed_without_approval:
        out.append(f"{executed_without_approval} write(s) executed without approval")
    return out


def figures_in(answer: str) -> list[tuple[float, int]]:
    """(value, decimals shown) of every number in the answer: $1,234.56, 4.23%, 27.95x, 1,234."""
    out = []
    for token in _FIGURE.findall(answer):
        raw = token.replace("$", "").replace(",", "")
        try:
            out.append((float(raw), len(raw.split(".", 1)[1]) if "." in raw else 0))
        except ValueError:
            continue
    return out


def sql_value_coverage(expected: list[tuple[float, str]], answer: str) -> float | None:
    """Share of expected figures (value, unit) that the answer states, at the precision it shows them.

    A percentage is compared as value x 100; "$298" matches 298.47 (shown with no decimals), "$297" does not.
    """
    if not expected:
        return None
    shown = figures_in(answer)

    def found(value: float, unit: str) -> bool:
        target = 100 * value if unit == "pct" else value
        return any(abs(n - target) <= 0.5 * 10 ** (-d) + 1e-9 * max(1.0, abs(target)) for n, d in shown)

    return sum(found(v, u) for v, u in expected) / len(expected)
