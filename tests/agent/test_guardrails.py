"""The number guard: numbers in an answer must come from tool results or the user's message."""

from __future__ import annotations

from mopsbot.agent.guardrails import numbers_in, strip_unsupported, unsupported_numbers


def test_numbers_found_but_not_markers_or_ids() -> None:
    text = "1. CPL was $1,234.50 in INC-2026-011 [2]\n2. Threshold 170; Lead_Score__c ok; 12%"
    assert numbers_in(text) == ["$1,234.50", "170", "12"]


def test_supported_numbers_pass_with_rounding_and_percentages() -> None:
    evidence = [{"data": {"cpl": 219.8765, "rate": 0.0785, "threshold": 170}}]
    assert unsupported_numbers("CPL was 219.88 (about 220), above 170; bounce rate 7.9%", evidence) == []


def test_invented_numbers_are_caught_and_stripped() -> None:
    evidence = ["what's the threshold?", {"data": {"threshold": 170}}]
    bad = unsupported_numbers("The threshold is 170 and CPL was 245.", evidence)
    assert bad == ["245"]
    assert strip_unsupported("CPL was 245 today", ["245"]) == "CPL was [unverified number removed] today"


def test_numbers_from_the_users_message_are_allowed() -> None:
    assert unsupported_numbers("Yes, a 30000 budget needs the Director.", ["approve 30000?"]) == []
