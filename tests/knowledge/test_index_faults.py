"""A knowledge index whose Chroma server is down, hung or comes back: a clear error for that call, never a hang.

The fault tests start a real `chroma run` server and stop (SIGSTOP) or restart it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mopsbot.agent.factory import build_agent
from mopsbot.caller import CallerContext
from mopsbot.config import Settings, load_settings
from mopsbot.knowledge import index as index_module
from mopsbot.knowledge.index import IndexUnavailable, KnowledgeIndex, open_client
from mopsbot.knowledge.service import open_knowledge

from .conftest import HashingEmbedder
from .test_index import write_doc

REPO = Path(__file__).resolve().parents[2]
LENA = CallerContext("U07LV0004", "C07MKTG001", "public")
SOP_QUESTION = "what's our SOP for a webinar?"
SOP_ANSWER = "dry run two days before the live date"
TIMEOUT_S = 1.5
MARGIN_S = 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connecting() -> int:
    return sum(t.name == "chroma-connect" for t in threading.enumerate())


def _eventually(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


class ChromaServer:
    """A `chroma run` process on a fixed port that can be started late, paused (SIGSTOP) and resumed."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        chroma = str(Path(sys.executable).with_name("chroma"))
        args = [chroma, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def beating() -> bool:
            try:
                return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).is_success
            except httpx.HTTPError:
                return False

        if not _eventually(beating, 60):
            pytest.fail("the Chroma server did not answer its heartbeat within 60 s")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()  # a stopped process does not act on SIGTERM until continued
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server, not started yet; always killed afterwards (continued first if it was paused)."""
    server = ChromaServer(tmp_path / "chroma-server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_doc(folder, "webinars", "public", f"Webinar SOP: every webinar needs a {SOP_ANSWER}.")
    return folder


def _settings(tmp_path: Path, warehouse: Path, url: str) -> Settings:
    return load_settings(
        env_file=None,
        workspace=REPO,
        data_dir=tmp_path / "var",
        warehouse_path=warehouse,
        chroma_url=url,
        chroma_timeout_s=TIMEOUT_S,
    )


# -- without a server: connection on first use, back-off, one attempt at a time --------------------------


def test_opening_the_knowledge_side_does_not_connect(tmp_path: Path, warehouse: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    before = _connecting()
    knowledge = open_knowledge(_settings(tmp_path, warehouse, url), embedder=HashingEmbedder())
    assert _connecting() == before
    with pytest.raises(IndexUnavailable, match=f"the knowledge index at {url} is unavailable \\(cannot connect\\)"):
        knowledge.index.count()
    ping = knowledge.index.ping()
    assert ping["ok"] is False and url in ping["detail"] and "tries again in" in ping["detail"]


def test_a_failed_connection_is_retried_after_a_back_off_not_on_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "RETRY_FIRST_S", 0.3)
    attempts: list[float] = []

    def opener() -> object:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise IndexUnavailable("cannot open the knowledge index at test: down")
        return open_client(None, tmp_path / "chroma")

    index = KnowledgeIndex(opener, HashingEmbedder(), where="test", timeout_s=1.0)
    for _ in range(5):  # the first attempt fails; the other calls fall inside the back-off
        with pytest.raises(IndexUnavailable, match="the knowledge index at test is unavailable"):
            index.count()
    assert len(attempts) == 1
    assert _eventually(lambda: index.ping()["ok"], 5)
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= 2 * 0.3 - 0.05  # the back-off doubled after the second failure
    assert index.ping() == {"ok": True, "detail": "0 chunks at test"}


def test_concurrent_callers_share_one_attempt_on_a_hung_server(tmp_path: Path) -> None:
    answering = threading.Event()
    attempts: list[int] = []

    def hung_opener() -> object:
        attempts.append(1)
        answering.wait(30)
        return open_client(None, tmp_path / "chroma")

    index = KnowledgeIndex(hung_opener, HashingEmbedder(), where="test", timeout_s=0.5)
    errors: list[tuple[str, float]] = []

    def ask() -> None:
        started = time.monotonic()
        try:
            index.count()
        except IndexUnavailable as err:
            errors.append((str(err), time.monotonic() - started))

    callers = [threading.Thread(target=ask) for _ in range(6)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(5)
    assert len(errors) == 6 and len(attempts) == 1
    assert all(msg == "the knowledge index at test did not answer within 0.5 s" for msg, _ in errors)
    assert max(waited for _, waited in errors) < 0.5 + 0.5
    late = time.monotonic()
    assert index.ping()["ok"] is False and time.monotonic() - late < 0.2  # the attempt is still hung: fail fast
    answering.set()  # the server answers again: the same attempt completes
    assert _eventually(lambda: index.ping()["ok"], 5) and len(attempts) == 1


def test_ping_counts_a_local_index(tmp_path: Path, docs: Path) -> None:
    index = KnowledgeIndex(open_client(None, tmp_path / "chroma"), HashingEmbedder(), where="local")
    index.ingest([docs])
    assert index.ping() == {"ok": True, "detail": "1 chunks at local"}


# -- with a real Chroma server ----------------------------------------------------------------------------


@pytest.mark.faults
def test_a_replica_starts_while_the_server_is_down_and_answers_once_it_is_up(
    tmp_path: Path, warehouse: Path, docs: Path, chroma_server: ChromaServer
) -> None:
    settings = _settings(tmp_path, warehouse, chroma_server.url)
    knowledge = open_knowledge(settings, embedder=HashingEmbedder())
    agent = build_agent(settings, backend="local", knowledge=knowledge)

    turn = agent.run_turn(SOP_QUESTION, LENA, "T1")
    assert f"the knowledge index at {chroma_server.url} is unavailable (cannot connect)" in turn.answer
    assert "Traceback" not in turn.answer

    chroma_server.start()
    # documents are ingested by another process (`mopsbot knowledge ingest`), as in a deployment
    assert open_knowledge(settings, embedder=HashingEmbedder()).index.ingest([docs]).added == ["webinars"]
    assert _eventually(lambda: knowledge.index.ping()["ok"], 10)  # the back-off has passed; reconnected
    assert SOP_ANSWER in agent.run_turn(SOP_QUESTION, LENA, "T2").answer


@pytest.mark.faults
def test_a_hung_server_costs_one_timeout_and_leaves_metrics_alone(
    tmp_path: Path, warehouse: Path, docs: Path, chroma_server: ChromaServer
) -> None:
    chroma_server.start()
    settings = _settings(tmp_path, warehouse, chroma_server.url)
    knowledge = open_knowledge(settings, embedder=HashingEmbedder())
    knowledge.index.ingest([docs])
    agent = build_agent(settings, backend="local", knowledge=knowledge)
    assert SOP_ANSWER in agent.run_turn(SOP_QUESTION, LENA, "T1").answer

    chroma_server.pause()
    started = time.monotonic()
    turn = agent.run_turn(SOP_QUESTION, LENA, "T2")
    assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
    assert f"the knowledge index at {chroma_server.url} is unavailable (no answer within 1.5 s)" in turn.answer

    started = time.monotonic()
    metric = agent.run_turn("how many MQLs did we get in October 2026?", LENA, "T3")
    assert "MQLs" in metric.answer and "knowledge index" not in metric.answer
    assert time.monotonic() - started < TIMEOUT_S

    # After the back-off, concurrent questions share one reconnection attempt, bounded by the timeout.
    time.sleep(index_module.RETRY_FIRST_S + 0.1)
    waits: list[float] = []
    before = _connecting()

    def search() -> None:
        begun = time.monotonic()
        with pytest.raises(IndexUnavailable, match=chroma_server.url):
            knowledge.retriever.search(SOP_QUESTION, LENA)
        waits.append(time.monotonic() - begun)

    callers = [threading.Thread(target=search) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(TIMEOUT_S + 5)
    assert len(waits) == 4 and max(waits) < TIMEOUT_S + MARGIN_S
    assert _connecting() == before + 1
    started = time.monotonic()
    assert knowledge.index.ping()["ok"] is False and time.monotonic() - started < TIMEOUT_S + MARGIN_S

    chroma_server.resume()
    assert _eventually(lambda: knowledge.index.ping()["ok"], 15)
    assert SOP_ANSWER in agent.run_turn(SOP_QUESTION, LENA, "T4").answer
