"""A scripted OpenAI-compatible chat client for tests: it replays the completions you give it, in order.

    client = ScriptedChatClient([tool_call("search_knowledge", {"query": "MQL SLA"}), reply("It is 24 hours.")])
    backend = OpenAIBackend(client, "scripted")

Each create() call records its keyword arguments in `client.requests`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from openai.types.chat import ChatCompletion


def reply(content: str, prompt_tokens: int = 100, completion_tokens: int = 20) -> dict[str, Any]:
    """A completion whose message is a final answer."""
    return _completion({"role": "assistant", "content": content}, "stop", prompt_tokens, completion_tokens)


def tool_call(name: str, arguments: dict[str, Any] | str, *more: tuple[str, dict[str, Any] | str]) -> dict[str, Any]:
    """A completion asking for one or more (parallel) tool calls; arguments may be a raw (even broken) string."""
    calls = []
    for i, (n, a) in enumerate(((name, arguments), *more)):
        args = a if isinstance(a, str) else json.dumps(a)
        calls.append({"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": args}})
    return _completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls", 120, 15)


def _completion(message: dict[str, Any], finish: str, prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": "scripted",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


class _Completions:
    def __init__(self, owner: ScriptedChatClient) -> None:
        self._owner = owner

    def create(self, **kwargs: Any) -> ChatCompletion:
        self._owner.requests.append(copy.deepcopy(kwargs))  # the backend keeps appending to its messages list
        if not self._owner.script:
            raise AssertionError("the scripted client ran out of completions")
        item = self._owner.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return ChatCompletion.model_validate(item)


class _Chat:
    def __init__(self, owner: ScriptedChatClient) -> None:
        self.completions = _Completions(owner)


class ScriptedChatClient:
    def __init__(self, script: list[dict[str, Any] | Exception]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.chat = _Chat(self)
