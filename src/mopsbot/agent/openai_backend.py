"""The `openai` backend: any OpenAI-compatible chat endpoint with native tool calling."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import replace
from typing import Any

import openai

from mopsbot.agent.backend import BackendOutput, ToolExecutor, ToolOutcome, TurnRequest
from mopsbot.agent.errors import BackendUnavailable
from mopsbot.agent.guardrails import strip_unsupported, unsupported_numbers
from mopsbot.agent.prompts import system_prompt
from mopsbot.errors import DependencyUnavailable, reference_id
from mopsbot.observability import metrics

log = logging.getLogger(__name__)

MIN_ROUND_S = 1.0  # a round (or a retry) is not started with less time than this left in the turn
MAX_BACKOFF_S = 8.0
_FAILURES = {  # what the user reads after "The language model ", by kind of failure
    "timeout": "did not answer (timeout after {timeout:g} s{tries})",
    "connection": "endpoint cannot be reached right now (connection failed or cut{tries})",
    "rate_limited": "endpoint is rate-limiting us (429{tries}); try again in a minute",
    "status": "endpoint returned an error ({status}{tries})",
    "malformed": "sent a response mopsbot cannot read (not a chat completion)",
    "no_time": "did not answer in time (the turn's time budget is used up{tries})",
}


class LLMUnavailable(BackendUnavailable, DependencyUnavailable):
    """The LLM failed, timed out, rate-limited us past our retries or sent an unreadable response."""


def make_client(base_url: str | None, api_key: str | None, timeout_s: float, max_retries: int) -> openai.OpenAI:
    """The client, holding the per-request timeout and retry count (from settings) that OpenAIBackend applies:
    one attempt per client call, retried by the backend with backoff within the turn's budget."""
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
        timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.max_rounds = max_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.first_tool = first_tool
        # by default the client's own settings (make_client takes them from MOPSBOT_LLM_TIMEOUT_S / _MAX_RETRIES);
        # retries happen here, one attempt per client call, so that they fit in the turn budget
        timeout = getattr(client, "timeout", None)
        self.timeout_s = timeout_s or (float(timeout) if isinstance(timeout, int | float) else 60.0)
        self.max_retries = max_retries if max_retries is not None else int(getattr(client, "max_retries", 0) or 0)

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
            if round_no and request.time_left() < MIN_ROUND_S:
                log.warning("turn budget used up after %d LLM rounds; answering with what was found", round_no)
                found = "; ".join(o.summary for o in outcomes if o.ok) or "nothing yet"
                answer = f"I ran out of time before finishing this. Here is what I found so far: {found}"
                return replace(self._guard(answer, request, outcomes, usage), outcome="partial")
            force = self.first_tool if round_no == 0 and request.registry.get(self.first_tool or "") else None
            response, message = self._complete(messages, tools, force, request)
            usage["llm_calls"] += 1
            if response.usage:
                for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    usage[key] += int(getattr(response.usage, key, 0) or 0)
                metrics.LLM_TOKENS.labels("prompt").inc(int(getattr(response.usage, "prompt_tokens", 0) or 0))
                metrics.LLM_TOKENS.labels("completion").inc(int(getattr(response.usage, "completion_tokens", 0) or 0))
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

    def _complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], force: str | None, request: TurnRequest
    ) -> tuple[Any, Any]:
        """One completion (response, its message), retried on 408/409/429/5xx and connection errors with
        backoff while the turn has time. Raises LLMUnavailable with a reference id."""
        choice: Any = {"type": "function", "function": {"name": force}} if force else "auto"
        kwargs = {
            "model": self.model,
            "messages": messages,
            "tools": tools or openai.NOT_GIVEN,
            "tool_choice": choice if tools else openai.NOT_GIVEN,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        attempts = 0
        while True:
            left = request.time_left()
            if left < MIN_ROUND_S:
                raise self._unavailable("no_time", attempts)
            timeout = min(self.timeout_s, left)
            attempts += 1
            start = time.perf_counter()
            try:
                response = self._create(kwargs, timeout)
            except openai.APITimeoutError as err:
                kind, failed = "timeout", err
            except openai.APIConnectionError as err:
                kind, failed = "connection", err
            except openai.APIStatusError as err:
                kind, failed = ("rate_limited" if err.status_code == 429 else "status"), err
                if err.status_code not in (408, 409, 429) and err.status_code < 500:
                    raise self._unavailable(kind, attempts, err.status_code) from err
            except ValueError as err:  # a 200 whose body is not JSON
                raise self._unavailable("malformed", attempts) from err
            else:
                message = _message_of(response)
                if message is None:
                    raise self._unavailable("malformed", attempts)
                return response, message
            finally:
                metrics.LLM_REQUEST_SECONDS.observe(time.perf_counter() - start)
            status = getattr(failed, "status_code", None)
            wait = self._backoff(attempts, failed)
            if attempts > self.max_retries or request.time_left() - wait < MIN_ROUND_S:
                raise self._unavailable(kind, attempts, status, timeout) from failed
            log.info("LLM request failed (%s); retry %d in %.1f s", kind, attempts, wait)
            time.sleep(wait)

    def _create(self, kwargs: dict[str, Any], timeout: float) -> Any:
        """One attempt; a real client gets this request's timeout and no retries of its own."""
        if hasattr(self.client, "with_options"):
            return self.client.with_options(timeout=timeout, max_retries=0).chat.completions.create(**kwargs)
        return self.client.chat.completions.create(**kwargs)  # scripted test clients

    @staticmethod
    def _backoff(attempt: int, err: Exception) -> float:
        """Seconds before the next attempt: the server's Retry-After if it sent one, else exponential + jitter."""
        headers = getattr(getattr(err, "response", None), "headers", None) or {}
        for header, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
            try:
                return max(0.0, float(headers[header]) * scale)
            except (KeyError, TypeError, ValueError):
                continue
        return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_S) * (1 - 0.25 * random.random())

    def _unavailable(self, kind: str, attempts: int, status: int | None = None, timeout: float = 0.0) -> LLMUnavailable:
        """The error to raise, counted and logged under a fresh reference id that its message ends with."""
        ref = reference_id()
        metrics.ERRORS.labels(f"llm_{kind}").inc()
        log.warning(
            "LLM request failed: %s after %d attempt(s) (%s)",
            kind,
            attempts,
            ref,
            extra={"reference": ref, "error_kind": f"llm_{kind}", "status": status, "attempts": attempts},
        )
        tries = f", {attempts} attempts" if attempts > 1 else ""
        what = _FAILURES[kind].format(tries=tries, status=status, timeout=round(timeout, 1))
        return LLMUnavailable(f"The language model {what}; reference {ref}", ref)

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


def _message_of(response: Any) -> Any:
    """The first choice's message of a chat completion, or None if the response is not one."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return None
    return message if hasattr(message, "tool_calls") and hasattr(message, "content") else None
