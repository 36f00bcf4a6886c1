"""The `local` backend: a deterministic planner, not an LLM. It maps a message to the same tool calls an LLM
would make (intent routing, slot filling, thread follow-ups) and writes the answer from the tool results.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mopsbot.agent.backend import BackendOutput, ToolExecutor, ToolOutcome, TurnRequest
from mopsbot.agent.history import StoredMessage
from mopsbot.agent.local import metrics as metric_slots
from mopsbot.agent.local import predictions as prediction_slots
from mopsbot.agent.local import writes
from mopsbot.agent.local.compose import CAPABILITIES, knowledge_answer
from mopsbot.agent.local.router import IntentRouter
from mopsbot.agent.local.writes import Clarify
from mopsbot.knowledge.embeddings import Embedder
from mopsbot.metrics.catalog import Catalog
from mopsbot.tools.registry import ToolRegistry

_CR_ID = re.compile(r"\bCR-\d{4,}\b", re.I)
# A short message that leans on the previous question: "and for EMEA?", "what about webinars?"
_FOLLOW_UP = re.compile(r"^\s*(and|also|what about|how about|same for|and for|ok and|then)\b[\s,:]*", re.I)

Filler = Callable[[str, dict[str, Any] | None, TurnRequest], "dict[str, Any] | Clarify"]
Composer = Callable[[str, ToolOutcome, TurnRequest], str]


# Values that replace each other in a follow-up: "CPL threshold for paid search in NA" + "and for EMEA?"
SLOT_VALUES = (
    ("NA", "EMEA", "APAC", "LATAM"),
    (
        "paid search",
        "paid social",
        "content syndication",
        "webinar",
        "webinars",
        "events",
        "event",
        "email",
        "nurture",
        "organic search",
        "direct",
        "referral",
    ),
)


def _substitute(previous: str, fragment: str) -> str | None:
    """The previous question with one slot value swapped for the fragment's, if both name one of the same kind."""
    for values in SLOT_VALUES:
        new = next((v for v in values if re.search(rf"\b{re.escape(v)}\b", fragment, re.I)), None)
        old = next((v for v in values if re.search(rf"\b{re.escape(v)}\b", previous, re.I)), None)
        if new and old and new.lower() != old.lower():
            return re.sub(rf"\b{re.escape(old)}\b", new, previous, count=1, flags=re.I)
    return None


def _fill_knowledge(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any]:
    """The search query: the message itself, or, for a follow-up, the previous question adjusted by the fragment."""
    follow_up = _FOLLOW_UP.match(message)
    if previous and previous.get("tool") == "search_knowledge" and (follow_up or len(message.split()) <= 3):
        fragment = (message[follow_up.end() :] if follow_up else message).strip(" ?")
        last = previous["args"]["query"]
        return {"query": _substitute(last, fragment) or f"{last} {fragment}".strip()}
    return {"query": message.strip()}


def _compose_knowledge(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    return knowledge_answer(outcome.data.get("query", message), outcome.data, request.caller.channel_visibility)


# Tools that change something, or that look things up by id, need the words that name them: embeddings alone
# confuse "how fast must SDRs follow up" with "which changes are waiting". Knowledge search needs no gate.
GATES = {
    "draft_campaign_config": re.compile(
        r"^\s*(please\s+|can you\s+|could you\s+|let'?s\s+|i need( you)? to\s+)?(draft|create|set ?up|build|plan|"
        r"spin up)\b.*\b(campaign|webinar|e-?mail|newsletter|event|program|nurture|syndication|paid social|"
        r"paid search|trade ?show|config)|\b(draft|create)\b.*\b(campaign|config)\b",
        re.I,
    ),
    "submit_campaign_config": re.compile(r"\bsubmit\b|\bsend (it|this|the draft|the config) (in |for )?approv", re.I),
    "file_change_request": re.compile(
        r"\b(file|raise|open|create|log|submit|request)\b.*\b(change request|change|cr)\b|\bemergency change\b"
        r"|\b(need|want|put in|get)\b.*\bchange request\b.*\b(filed|raised|opened|logged|to|for)\b",
        re.I,
    ),
    "add_change_plans": re.compile(
        r"^\s*(please\s+)?(add|here (are|is)|attach|adding)\b[^.]*\bplans?\b|^\s*(implementation|back-?out|roll-?back)"
        r"(?: plan)?\s*[:=-]",
        re.I,
    ),
    "list_change_requests": re.compile(r"\b(change requests?|changes|crs)\b", re.I),
    "get_change_request": _CR_ID,
    **prediction_slots.GATES,
}

WRITE_INTENTS = ("draft_campaign_config", "submit_campaign_config", "file_change_request", "add_change_plans")
_QUESTION = re.compile(
    r"^\s*(how|what|why|where|when|who|which|is|are|do|does|did|should|shall|may|can i|could i|can we|could we)\b",
    re.I,
)

FILLERS: dict[str, Filler] = {
    "search_knowledge": _fill_knowledge,
    "draft_campaign_config": writes.fill_draft,
    "submit_campaign_config": writes.fill_submit,
    "file_change_request": writes.fill_change,
    "add_change_plans": writes.fill_plans,
    "list_change_requests": writes.fill_list_changes,
    "get_change_request": writes.fill_get_change,
    "explain_prediction": prediction_slots.fill_explain,
    "what_if": prediction_slots.fill_what_if,
    "model_card": prediction_slots.fill_card,
    "score_leads": prediction_slots.fill_score,
}
COMPOSERS: dict[str, Composer] = {
    "search_knowledge": _compose_knowledge,
    "draft_campaign_config": writes.compose_draft,
    "submit_campaign_config": writes.compose_pending,
    "file_change_request": writes.compose_pending,
    "add_change_plans": writes.compose_pending,
    "list_change_requests": writes.compose_changes,
    "get_change_request": writes.compose_changes,
    "query_metrics": metric_slots.compose_metrics,
    "detect_anomalies": metric_slots.compose_anomalies,
    "list_metrics": metric_slots.compose_list,
    "describe_metric": metric_slots.compose_describe,
    "explain_prediction": prediction_slots.compose_explain,
    "what_if": prediction_slots.compose_what_if,
    "model_card": prediction_slots.compose_card,
    "score_leads": prediction_slots.compose_score,
}
METRIC_TOOLS = ("query_metrics", "detect_anomalies", "list_metrics", "describe_metric")
_LIST_METRICS = re.compile(
    r"\b(list|which|what)\b[^?]*\bmetrics\b[^?]*\b(can|do|available|report|know|there|have|support)"
    r"|^\s*list (the |all )?metrics",
    re.I,
)
_DESCRIBE_METRIC = re.compile(r"\b(metric|catalog|do you|you compute|you calculate|does mopsbot)\b", re.I)
_ANOMALY_ASK = re.compile(r"\b(any|detect|find|check for|were there|was there|is there|are there|flag|list)\b", re.I)
_HOW_TO = re.compile(r"^\s*(where|how|who|what should|what do|when)\b", re.I)


def _previous_state(history: list[StoredMessage]) -> dict[str, Any] | None:
    """The planner state of the last answer, plus the newest draft id seen in the thread."""
    state: dict[str, Any] | None = None
    draft_id = change_id = None
    for m in history:
        if m.role == "assistant" and m.data.get("planner"):
            state = dict(m.data["planner"])
            draft_id = m.data["planner"].get("draft_id") or draft_id
            change_id = m.data["planner"].get("change_id") or change_id
    if state is not None and draft_id:
        state["draft_id"] = draft_id
    if state is not None and change_id:
        state["change_id"] = change_id
    return state


class LocalPlanner:
    name = "local"

    def __init__(self, registry: ToolRegistry, embedder: Embedder, catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self.fillers = dict(FILLERS)
        if catalog is not None and registry.get("query_metrics"):
            self.fillers.update(
                {
                    "query_metrics": lambda m, p, r: metric_slots.fill_metric_query(catalog, m, p, r.today),
                    "detect_anomalies": lambda m, p, r: metric_slots.fill_anomalies(catalog, m, p),
                    "list_metrics": lambda m, p, r: {},
                    "describe_metric": lambda m, p, r: {"metric": metric_slots.find_metrics(catalog, m)[0]},
                }
            )
        usable = {t.name: t.exemplars for t in registry if t.name in FILLERS and t.exemplars}
        self.router = IntentRouter(embedder, usable)

    def _metric_intent(self, message: str) -> str | None:
        """The metric tool a message asks for, by the catalog's names and the words around them."""
        catalog = self.catalog
        if catalog is None or "query_metrics" not in self.fillers:
            return None
        if _LIST_METRICS.search(message):
            return "list_metrics"
        named = metric_slots.find_metrics(catalog, message)
        if not named:
            return None
        if metric_slots.ANOMALY.search(message) and _ANOMALY_ASK.search(message) and not _HOW_TO.match(message):
            return "detect_anomalies"
        if metric_slots.DESCRIBE.search(message) and _DESCRIBE_METRIC.search(message):
            return "describe_metric"
        if metric_slots.is_metric_question(catalog, message):
            return "query_metrics"
        return None

    def _gate(self, message: str, intent: str) -> str:
        """The tool whose naming words the message has (best embedding score among several); otherwise the
        routed intent, with gated tools and unsure routes falling back to knowledge search."""
        gated = [name for name, pattern in GATES.items() if pattern.search(message)]
        if _QUESTION.match(message):  # "how do I request a change ...?" asks how, it does not request
            gated = [g for g in gated if g not in WRITE_INTENTS]
        if not gated and (metric := self._metric_intent(message)):
            return metric
        if "add_change_plans" in gated:
            return "add_change_plans"
        if "get_change_request" in gated:
            return "get_change_request"
        if "what_if" in gated:  # "what if lead 4411 requested a demo?" is a what-if, not an explanation
            return "what_if"
        if "file_change_request" in gated and "list_change_requests" in gated:
            gated.remove("list_change_requests")
        if not gated:
            unrouted = intent in GATES or intent in METRIC_TOOLS or intent == "unsure"
            return "search_knowledge" if unrouted else intent
        if len(gated) == 1:
            return gated[0]
        scores = self.router.scores(message)
        return max(gated, key=lambda name: scores.get(name, 0.0))

    def run(self, request: TurnRequest, executor: ToolExecutor) -> BackendOutput:
        previous = _previous_state(request.history)
        message = request.message.strip()
        route = self.router.route(message)
        intent = self._gate(message, route.intent)
        # a fragment in a thread that was about a tool continues that tool ("and for EMEA?")
        if previous and previous.get("tool") in self.fillers and _FOLLOW_UP.match(message) and intent not in GATES:
            intent = previous["tool"]
        if intent == "help":
            return BackendOutput(CAPABILITIES, state={"planner": {"intent": "help"}})
        if intent == "thanks":
            return BackendOutput("You're welcome.", state={"planner": {"intent": "thanks"}})
        if intent == "out_of_scope":
            return BackendOutput(
                "That's outside what I do: I'm the marketing-ops copilot. " + CAPABILITIES,
                state={"planner": {"intent": "out_of_scope"}},
            )
        args = self.fillers[intent](message, previous, request)
        if isinstance(args, Clarify):
            return BackendOutput(str(args), state={"planner": {"intent": intent, "clarify": True}})
        policy = None
        if intent == "query_metrics" and metric_slots.POLICY_WORDS.search(message):
            # "what's the CPL threshold ... and did we breach it last month?": the rule, then the numbers
            policy = executor.call("search_knowledge", {"query": message.strip()})
        outcome = executor.call(intent, args)
        if not outcome.ok:
            answer = f"I couldn't do that: {outcome.error}"
        else:
            answer = COMPOSERS[intent](message, outcome, request)
        if policy is not None and policy.ok:
            answer = _compose_knowledge(message, policy, request) + "\n\n" + answer
        planner: dict[str, Any] = {"intent": intent, "tool": intent, "args": args, "route_score": round(route.score, 3)}
        if outcome.ok and outcome.data.get("draft_id"):
            planner["draft_id"] = outcome.data["draft_id"]
        change_id = (outcome.pending_action or {}).get("change_request") if outcome.ok else None
        if change_id:
            planner["change_id"] = change_id
        return BackendOutput(answer, state={"planner": planner})
