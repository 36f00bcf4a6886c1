"""Intent routing for the local planner: nearest exemplars by embedding, plus a few exact rules.

Intents are the registered tools (their exemplars) and three of the planner's own: help, thanks, out_of_scope.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from mopsbot.knowledge.embeddings import Embedder

HELP = (
    "what can you do?",
    "help",
    "what can you help me with?",
    "how do I use mopsbot?",
    "what kind of questions can I ask you?",
    "hi there",
    "hello mopsbot",
)
THANKS = ("thanks", "thank you!", "great, thanks", "perfect, cheers", "ok got it thanks")
OUT_OF_SCOPE = (
    "what's the weather tomorrow?",
    "tell me a joke",
    "write a poem about cats",
    "who won the football game last night?",
    "what's the capital of France?",
    "write a python script that sorts a list",
    "book me a flight to Paris",
    "what's Apple's stock price today?",
    "translate this paragraph into Spanish",
    "what should I cook for dinner?",
    "help me file my personal taxes",
    "what's a good movie to watch tonight?",
    "explain quantum physics to me",
    "who is the president of the United States?",
    "recommend a good laptop to buy",
    "where should the team go for lunch?",
    "recommend a restaurant near the office",
    "book a hotel room for my trip",
    "write a song about the weekend",
    "write a funny limerick",
    "what's a good recipe for pasta?",
    "how do I get rid of a cold?",
    "what's the score of the basketball game?",
    "plan my vacation itinerary",
    "fix the bug in my javascript code",
)
_GREETING = re.compile(r"^\s*(hi|hello|hey|yo|good (morning|afternoon|evening))\b[\s!.,]*(mopsbot)?[\s!.]*$", re.I)
_THANKS = re.compile(r"^\s*(thanks|thank you|thx|ty|cheers|great,? thanks|ok,? thanks)\b[\s!.]*$", re.I)
_HELP = re.compile(r"^\s*(/?help|what can you do\??|what do you do\??)\s*$", re.I)

TOOL_THRESHOLD = 0.30
OUT_OF_SCOPE_MARGIN = 0.04
CLEAR_MARGIN = 0.15


@dataclass(frozen=True)
class Route:
    intent: str  # a tool name, or help | thanks | out_of_scope | unsure
    score: float
    runner_up: str = ""


class IntentRouter:
    """Scores a message against every intent's exemplars (max cosine similarity)."""

    def __init__(self, embedder: Embedder, exemplars: dict[str, tuple[str, ...]]) -> None:
        self.embedder = embedder
        self.exemplars = {"help": HELP, "thanks": THANKS, "out_of_scope": OUT_OF_SCOPE, **exemplars}
        self._matrix: np.ndarray | None = None
        self._labels: list[str] = []
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        with self._lock:
            if self._matrix is None:
                texts, labels = [], []
                for intent, examples in self.exemplars.items():
                    texts += list(examples)
                    labels += [intent] * len(examples)
                self._matrix = self.embedder.embed(texts)
                self._labels = labels

    def scores(self, message: str) -> dict[str, float]:
        self._ensure()
        assert self._matrix is not None
        sims = self._matrix @ self.embedder.embed([message])[0]
        best: dict[str, float] = {}
        for label, sim in zip(self._labels, sims, strict=True):
            best[label] = max(best.get(label, -1.0), float(sim))
        return best

    def route(self, message: str) -> Route:
        if not message.strip() or _HELP.match(message) or _GREETING.match(message):
            return Route("help", 1.0)
        if _THANKS.match(message):
            return Route("thanks", 1.0)
        scores = self.scores(message)
        tools = {k: v for k, v in scores.items() if k not in ("help", "thanks", "out_of_scope")}
        best_tool = max(tools, key=tools.get) if tools else ""
        best_tool_score = tools.get(best_tool, -1.0)
        oos = scores["out_of_scope"]
        # clearly off-topic: close to an off-topic example, or much closer to one than to any tool
        if (oos > best_tool_score + OUT_OF_SCOPE_MARGIN and oos > 0.45) or (
            oos >= 0.30 and oos - best_tool_score >= CLEAR_MARGIN
        ):
            return Route("out_of_scope", oos, best_tool)
        if scores["help"] > best_tool_score + 0.1 and scores["help"] > 0.6:
            return Route("help", scores["help"], best_tool)
        if best_tool and best_tool_score >= TOOL_THRESHOLD:
            return Route(best_tool, best_tool_score)
        return Route("unsure", best_tool_score, best_tool)
