"""The `openai` backend: any OpenAI-compatible chat endpoint with native tool calling."""

from __future__ import annotations

import logging
from typing import Any

import openai

from mopsbot.agent.backend import BackendOutput, ToolExecutor, ToolOutcome, TurnRequest
from mopsbot.agent.errors import BackendUnavailable
from mopsbot.agent.guardrails import strip_unsupported, unsupported_numbers
from mopsbot.agent.prompts import system_prompt

log = logging.getLogger(__name__)


def make_client(base_url: str | None, api_key: str | None, timeout_s: float, max_retries: int) -> openai.OpenAI:
    """The client; it retries 408/409/429/5xx and connection errors itself, with exponential backoff."""
    return openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries)


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        client: Any,
        model: str,
        max_rounds: int = 6,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        first_tool: str | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.max_rounds = max_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.first_tool = first_tool

    def messages(self, request: TurnRequest) -> list[dict[str, Any]]:
        """System prompt, the thread's history, then the new message."""
        out: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(request.registry, request.caller)}]
        for m in request.history:
            if m.role == "event":  # approval outcomes etc.: facts the model must know, not user instructions
                out.append({"role": "user", "content": f"[event recorded by mopsbot] {m.content}"})
            else:
                out.append({"role": m.role, "content": m.content})
        out.append({"role": "user", "content": request.message})
        return out

    def run(self, request: TurnRequest, executor: ToolExecutor) -> BackendOutput:
        messages = self.messages(request)
        tools = request.registry.schemas()
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "llm_calls": 0}
        outcomes: list[ToolOutcome] = []
        answer = ""
        for round_no in range(self.max_rounds):
            force = self.first_tool if round_no == 0 and request.registry.get(self.first_tool or "") else None
            response = self._complete(messages, tools, force)
            usage["llm_calls"] += 1
            if response.usage:
                for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    usage[key] += int(getattr(response.usage, key, 0) or 0)
            message = response.choices[0].message
            calls = message.tool_calls or []
            if not calls:
                answer = (message.content or "").strip()
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": message.content or "",
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.function.name, "arguments": c.function.arguments},
                        }
                        for c in calls
                    ],
                }
            )
            for call in calls:  # parallel calls from one round run in order; each gets its own tool message
                outcome = executor.call(call.function.name, call.function.arguments)
                outcomes.append(outcome)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.for_model()})
        else:
            answer = (
                f"I could not finish this within {self.max_rounds} tool rounds. Here is what I found so far: "
                + "; ".join(o.summary for o in outcomes if o.ok)
            )
        return self._guard(answer or "I have no answer to that.", request, outcomes, usage)

    def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], force: str | None) -> Any:
        choice: Any = {"type": "function", "function": {"name": force}} if force else "auto"
        try:
            return self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                tools=tools or openai.NOT_GIVEN,
                tool_choice=choice if tools else openai.NOT_GIVEN,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise BackendUnavailable("The language model endpoint cannot be reached right now.") from err
        except openai.RateLimitError as err:
            raise BackendUnavailable("The language model endpoint is rate-limiting us; try again in a minute.") from err
        except openai.APIStatusError as err:
            log.warning("LLM endpoint error status=%s", err.status_code)
            raise BackendUnavailable(f"The language model endpoint returned an error ({err.status_code}).") from err

    def _guard(
        self, answer: str, request: TurnRequest, outcomes: list[ToolOutcome], usage: dict[str, int]
    ) -> BackendOutput:
        evidence: list[Any] = [request.message] + [{"summary": o.summary, "data": o.data} for o in outcomes if o.ok]
        bad = unsupported_numbers(answer, evidence)
        notes = []
        if bad:
            answer = strip_unsupported(answer, bad)
            notes.append(f"removed numbers no tool result supports: {', '.join(sorted(set(bad)))}")
        return BackendOutput(answer=answer, usage=usage, guardrails=notes)
