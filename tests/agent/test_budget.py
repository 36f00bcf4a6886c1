"""Turn budget, per-dependency bulkheads and LLM failures: a hung or failing dependency is told with a reference id,
within the budget, and does not take the other dependencies down with it."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mopsbot.agent.errors import BackendUnavailable
from mopsbot.agent.openai_backend import LLMUnavailable, make_client
from mopsbot.agent.runner import Agent
from mopsbot.agent.testing import ScriptedChatClient, reply, tool_call
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.observability import metrics

from .conftest import REPO

MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
REF = re.compile(r"ref-[0-9a-f]{10}")


class HungRetriever:
    """A knowledge index that accepts the query and never answers (until the test ends)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.release.wait(60)
        raise ConnectionError("the index went away")


@pytest.fixture
def hung() -> Iterator[HungRetriever]:
    retriever = HungRetriever()
    yield retriever
    retriever.release.set()


@pytest.fixture
def scripted(make_agent: Callable[..., Agent], hung: HungRetriever) -> Callable[..., Agent]:
    """An openai-backend agent on a scripted model whose knowledge index hangs; 1 s tool timeout, 2 threads each."""

    def make(script: list) -> Agent:
        agent = make_agent("openai", ScriptedChatClient(script))
        agent.knowledge, agent.tool_timeout_s, agent.pool_size = hung, 1.0, 2
        return agent

    return make


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    return fn(), time.monotonic() - start


def test_build_agent_takes_the_budget_from_settings(knowledge_index_dir, tmp_path, knowledge) -> None:
    from mopsbot.agent.factory import build_agent

    settings = load_settings(
        env_file=None,
        chroma_path=knowledge_index_dir,
        workspace=REPO,
        data_dir=tmp_path / "var",
        turn_budget_s=42,
        tool_timeout_s=7,
    )
    agent = build_agent(settings, backend="local", knowledge=knowledge)
    assert (agent.turn_budget_s, agent.tool_timeout_s) == (42, 7)
    assert {agent.dependency_of(agent.registry.get(n)) for n in ("search_knowledge",)} == {"knowledge"}
    assert {agent.dependency_of(agent.registry.get(n)) for n in ("query_metrics", "score_leads")} == {"warehouse"}
    assert agent.dependency_of(agent.registry.get("file_change_request")) == "store"


def test_a_hung_knowledge_index_fails_its_calls_and_spares_the_other_dependencies(scripted, hung, caplog) -> None:
    ask_docs = [tool_call("search_knowledge", {"query": "webinar SOP"}), reply("The index is not answering.")]
    agent = scripted(ask_docs * 3 + [tool_call("list_metrics", {}), reply("Here are the metrics."), reply("Hi.")])
    caplog.set_level(logging.WARNING)
    timings = []
    for _ in range(3):  # two calls time out and keep both knowledge threads; the third fails at once
        record, seconds = timed(lambda: agent.run_turn("what's our webinar SOP?", MARKETER))
        (call,) = record.tool_calls
        assert not call.ok and call.error.startswith("the knowledge index is not answering (reference ref-")
        assert REF.search(call.error).group() in caplog.text
        timings.append(seconds)
    assert 0.9 < timings[0] < 3 and 0.9 < timings[1] < 3 and timings[2] < 0.9, timings
    assert hung.calls == 2  # the third never reached the index

    # the warehouse family and answers without tools do not wait for the knowledge index
    record, seconds = timed(lambda: agent.run_turn("which metrics are there?", MARKETER))
    assert record.tool_calls[0].name == "list_metrics" and record.tool_calls[0].ok and seconds < 2
    record, seconds = timed(lambda: agent.run_turn("hello", MARKETER))
    assert record.answer == "Hi." and seconds < 1


def test_a_metric_turn_runs_while_a_knowledge_turn_hangs(scripted) -> None:
    # the model's requests in arrival order: the docs turn's first, then the metric turn's two, then the docs turn's
    agent = scripted(
        [tool_call("search_knowledge", {"query": "SOP"}), tool_call("list_metrics", {}), reply("Metrics."), reply("-")]
    )
    agent.tool_timeout_s = 3.0
    waiting = threading.Thread(target=agent.run_turn, args=("what's our webinar SOP?", MARKETER))
    waiting.start()
    try:
        time.sleep(0.3)
        record, seconds = timed(lambda: agent.run_turn("which metrics are there?", MARKETER))
        assert record.answer == "Metrics." and record.tool_calls[0].ok and seconds < 1.5 and waiting.is_alive()
    finally:
        waiting.join(10)


def test_the_turn_budget_bounds_tools_and_starts_no_round_after_it(scripted, caplog) -> None:
    caplog.set_level(logging.INFO)
    agent = scripted([tool_call("search_knowledge", {"query": "webinar SOP"}), reply("never asked")])
    agent.tool_timeout_s, agent.turn_budget_s = 20.0, 1.5
    record, seconds = timed(lambda: agent.run_turn("what's our webinar SOP?", MARKETER))
    assert 1.4 < seconds < 2.5, seconds
    assert record.answer.startswith("I ran out of time before finishing this.")
    assert record.tool_calls[0].error.startswith("the knowledge index is not answering (reference ref-")
    assert agent.backend.client.script == [reply("never asked")]  # no second LLM round past the deadline
    (line,) = [r for r in caplog.records if getattr(r, "outcome", None)]
    assert line.outcome == "partial" and line.references and line.references[0] in record.tool_calls[0].error


# --- LLM failures, against a local OpenAI-compatible server that misbehaves on purpose ---


class FakeLLM:
    """http.server on 127.0.0.1 answering /v1/chat/completions by plan: one mode per request, the last repeated."""

    def __init__(self) -> None:
        self.plan: list[str] = ["ok"]
        self.requests = 0
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                mode = owner.plan.pop(0) if len(owner.plan) > 1 else owner.plan[0]
                getattr(self, f"answer_{mode}")()

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int = 0) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(length or len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def answer_ok(self) -> None:
                self.send(200, json.dumps(reply("Webinars need a dry run.")).encode())

            def answer_500(self) -> None:
                self.send(500, b'{"error": {"message": "internal"}}', {"Retry-After": "0"})

            def answer_429(self) -> None:
                self.send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})

            def answer_hang(self) -> None:
                owner.release.wait(30)

            def answer_cut(self) -> None:  # headers and half a body, then the connection drops
                body = json.dumps(reply("Webinars need a dry run.")).encode()
                self.send(200, body[: len(body) // 2], length=len(body))
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

            def answer_garbage(self) -> None:
                self.send(200, b"<html>502 upstream</html>")

            def answer_empty(self) -> None:
                self.send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def llm_agent(make_agent: Callable[..., Agent], llm: FakeLLM) -> Callable[..., Agent]:
    def make(timeout_s: float = 30, max_retries: int = 2) -> Agent:
        agent = make_agent("openai", make_client(llm.url, "sk-test", timeout_s, max_retries))
        agent.backend.max_rounds = 1
        return agent

    return make


@pytest.mark.parametrize(
    ("plan", "retries", "message", "requests"),
    [
        (["500"], 2, "endpoint returned an error (500, 3 attempts)", 3),
        (["429"], 2, "endpoint is rate-limiting us (429, 3 attempts); try again in a minute", 3),
        (["hang"], 0, "did not answer (timeout after 1 s)", 1),
        (["cut"], 1, "endpoint cannot be reached right now (connection failed or cut, 2 attempts)", 2),
        (["garbage"], 2, "sent a response mopsbot cannot read (not a chat completion)", 1),
        (["empty"], 2, "sent a response mopsbot cannot read (not a chat completion)", 1),
    ],
)
def test_llm_failures_reach_the_user_with_a_reference_that_is_in_the_log(
    llm: FakeLLM, llm_agent, caplog, plan: list[str], retries: int, message: str, requests: int
) -> None:
    llm.plan = plan
    agent = llm_agent(timeout_s=1, max_retries=retries)
    kind = {"500": "status", "429": "rate_limited", "hang": "timeout", "cut": "connection"}.get(plan[0], "malformed")
    before = metrics.value("mopsbot_errors_total", kind=f"llm_{kind}")
    with pytest.raises(LLMUnavailable) as caught:
        agent.run_turn("what's our webinar SOP?", MARKETER)
    err = caught.value
    assert isinstance(err, BackendUnavailable)
    assert str(err) == f"The language model {message}; reference {err.reference}"
    assert llm.requests == requests
    told = [r for r in caplog.records if err.reference in r.getMessage()]  # the failure, with its details
    turn = [r for r in caplog.records if err.reference in getattr(r, "references", ())]  # the turn's line
    assert [r.name for r in told] == ["mopsbot.agent.openai_backend"] and told[0].status in (None, 500, 429)
    assert len(turn) == 1 and turn[0].outcome == "error" and turn[0].turn_id
    assert "what's our webinar SOP" not in caplog.text
    assert metrics.value("mopsbot_errors_total", kind=f"llm_{kind}") == before + 1


def test_a_retry_that_succeeds_is_invisible_to_the_user(llm: FakeLLM, llm_agent) -> None:
    llm.plan = ["500", "429", "ok"]
    record = llm_agent(max_retries=2).run_turn("what's our webinar SOP?", MARKETER)
    assert record.answer == "Webinars need a dry run." and llm.requests == 3


def test_a_hung_llm_is_cut_at_the_turn_budget_not_the_request_timeout(llm: FakeLLM, llm_agent, caplog) -> None:
    llm.plan = ["hang"]
    agent = llm_agent(timeout_s=30, max_retries=2)
    agent.turn_budget_s = 2.0
    start = time.monotonic()
    with pytest.raises(LLMUnavailable, match=r"did not answer \(timeout after (1\.\d|2) s\); reference ref-") as caught:
        agent.run_turn("what's our webinar SOP?", MARKETER)
    assert 1.8 < time.monotonic() - start < 3.0
    assert caught.value.reference in caplog.text
    assert llm.requests == 1  # no retry: less than a round's minimum was left
