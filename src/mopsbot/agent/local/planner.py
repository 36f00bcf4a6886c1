"""The `local` backend: a deterministic planner, not an LLM. It maps a message to the same tool calls an LLM
would make (intent routing, slot filling, thread follow-ups) and writes the answer from the tool results.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mopsbot.agent.backend import BackendOutput, ToolExecutor, ToolOutcome, TurnRequest
from mopsbot.agent.history import StoredMessage
from mopsbot.agent.local.compose import CAPABILITIES, knowledge_answer
from mopsbot.agent.local.router import IntentRouter
from mopsbot.knowledge.embeddings import Embedder
from mopsbot.tools.registry import ToolRegistry

# A short message that leans on the previous question: "and for EMEA?", "what about webinars?"
_FOLLOW_UP = re.compile(r"^\s*(and|also|what about|how about|same for|and for|ok and|then)\b[\s,:]*", re.I)

Filler = Callable[[str, dict[str, Any] | None], dict[str, Any]]
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


def _fill_knowledge(message: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The search query: the message itself, or, for a follow-up, the previous question adjusted by the fragment."""
    follow_up = _FOLLOW_UP.match(message)
    if previous and previous.get("tool") == "search_knowledge" and (follow_up or len(message.split()) <= 3):
        fragment = (message[follow_up.end() :] if follow_up else message).strip(" ?")
        last = previous["args"]["query"]
        return {"query": _substitute(last, fragment) or f"{last} {fragment}".strip()}
    return {"query": message.strip()}


def _compose_knowledge(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    return knowledge_answer(outcome.data.get("query", message), outcome.data, request.caller.channel_visibility)


FILLERS: dict[str, Filler] = {"search_knowledge": _fill_knowledge}
COMPOSERS: dict[str, Composer] = {"search_knowledge": _compose_knowledge}


def _previous_state(history: list[StoredMessage]) -> dict[str, Any] | None:
    for m in reversed(history):
        if m.role == "assistant" and m.data.get("planner"):
            return m.data["planner"]
    return None


class LocalPlanner:
    name = "local"

    def __init__(self, registry: ToolRegistry, embedder: Embedder) -> None:
        usable = {t.name: t.exemplars for t in registry if t.name in FILLERS and t.exemplars}
        self.router = IntentRouter(embedder, usable)

    def run(self, request: TurnRequest, executor: ToolExecutor) -> BackendOutput:
        previous = _previous_state(request.history)
        message = request.message.strip()
        route = self.router.route(message)
        intent = route.intent
        # a fragment in a thread that was about a tool continues that tool ("and for EMEA?")
        if previous and previous.get("tool") in FILLERS and _FOLLOW_UP.match(message):
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
        if intent == "unsure":
            intent = "search_knowledge"  # "how do we ..." questions the exemplars did not anticipate
        args = FILLERS[intent](message, previous)
        outcome = executor.call(intent, args)
        if not outcome.ok:
            answer = f"I couldn't run that: {outcome.error}"
        else:
            answer = COMPOSERS[intent](message, outcome, request)
        state = {"planner": {"intent": intent, "tool": intent, "args": args, "route_score": round(route.score, 3)}}
        return BackendOutput(answer, state=state)
