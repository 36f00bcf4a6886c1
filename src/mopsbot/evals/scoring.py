"""Scorers for one agent turn. Each returns None when the case does not ask for that score."""

from __future__ import annotations

from typing import Any


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
