"""Prometheus metrics of one mopsbot process, in their own registry (tests read values from it directly).

The Slack layer counts events, acks, claim takeovers, approvals and in-flight turns; the agent counts turns,
tool calls, LLM requests, tokens and errors. Labels are bounded: tool names come from the registry (else
"unknown"), outcomes and kinds from short fixed lists.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

_FAST = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0)

EVENTS = Counter(
    "mopsbot_events", "Slack events received, by kind and what became of them.", ("kind", "outcome"), registry=REGISTRY
)
ACK_SECONDS = Histogram(
    "mopsbot_ack_seconds", "Time from receiving a Slack request to acknowledging it.", buckets=_FAST, registry=REGISTRY
)
TURNS = Counter("mopsbot_turns", "Agent turns, by backend and outcome.", ("backend", "outcome"), registry=REGISTRY)
TURN_SECONDS = Histogram(
    "mopsbot_turn_seconds", "Duration of one agent turn.", ("backend",), buckets=_SLOW, registry=REGISTRY
)
TOOL_CALLS = Counter("mopsbot_tool_calls", "Tool calls, by tool and outcome.", ("tool", "outcome"), registry=REGISTRY)
TOOL_SECONDS = Histogram(
    "mopsbot_tool_seconds", "Duration of one tool call as the turn saw it.", ("tool",), buckets=_SLOW, registry=REGISTRY
)
LLM_REQUEST_SECONDS = Histogram(
    "mopsbot_llm_request_seconds", "Duration of one LLM request (each attempt).", buckets=_SLOW, registry=REGISTRY
)
LLM_TOKENS = Counter("mopsbot_llm_tokens", "LLM tokens, prompt or completion.", ("kind",), registry=REGISTRY)
ERRORS = Counter(
    "mopsbot_errors", "Failures shown to users with a reference id, by kind.", ("kind",), registry=REGISTRY
)
CLAIM_TAKEOVERS = Counter(
    "mopsbot_claim_takeovers", "Event claims taken over after their lease ran out.", registry=REGISTRY
)
APPROVALS = Counter(
    "mopsbot_approvals", "Approval decisions, by decision and outcome.", ("decision", "outcome"), registry=REGISTRY
)
INFLIGHT_TURNS = Gauge("mopsbot_inflight_turns", "Turns being answered right now.", registry=REGISTRY)


def render() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type (for a /metrics endpoint)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def value(name: str, **labels: str) -> float:
    """The current value of one sample (0.0 if absent), e.g. value("mopsbot_turns_total", backend="local")."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
