"""A Chroma server that is down or hung: knowledge questions say so, metric questions go on, recovery is seen."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.conftest import (
    BIN,
    KNOWLEDGE_Q,
    METRIC_Q,
    UNAVAILABLE,
    Replica,
    Replicas,
    Slack,
    assert_reference,
    free_port,
    has_reference,
    http,
    wait_until,
)  # fmt: skip

pytestmark = pytest.mark.faults

CHROMA_TIMEOUT_S = 2.0


@dataclass
class ChromaServer:
    """`chroma run` on a copy of the seeded index; stop/start/pause/resume break and mend it."""

    path: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(BIN / "chroma"),
            "run",
            "--path",
            str(self.path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        wait_until(lambda: http(f"{self.url}/api/v2/heartbeat", timeout=2).status == 200, 60, "chroma heartbeat")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def chroma(tmp_path: Path, seeded_dir: Path) -> Iterator[ChromaServer]:
    """A Chroma server (not started) holding the seeded knowledge index; always continued and stopped after."""
    server = ChromaServer(shutil.copytree(seeded_dir / "chroma", tmp_path / "chroma-server"), free_port(),
                          tmp_path / "chroma.log")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def start_replica(replicas: Replicas, data_copy: Callable[[str], Path], chroma: ChromaServer) -> Callable[[], Replica]:
    def start() -> Replica:
        data = data_copy("a")
        shutil.rmtree(data / "chroma")  # the index is only on the server
        env = {"MOPSBOT_CHROMA_URL": chroma.url, "MOPSBOT_CHROMA_TIMEOUT_S": str(CHROMA_TIMEOUT_S)}
        return replicas.start("a", data, env=env)

    return start


def _answer(slack: Slack, replica: Replica, question: str, timeout: float = 30) -> str:
    body, ack = slack.ask(replica, question)
    assert ack.status == 200, ack
    thread = body["event"]["ts"]
    slack.wait_answered([thread], timeout=timeout)
    (reply,) = slack.replies(thread)
    return reply


def _assert_unavailable(reply: str, replica: Replica) -> None:
    assert UNAVAILABLE.search(reply), f"no clear 'unavailable' in: {reply!r}"
    if has_reference(reply):
        assert_reference(reply, [replica])


def _assert_answered(reply: str) -> None:
    assert not UNAVAILABLE.search(reply) and not has_reference(reply), reply


def test_chroma_down_at_start_then_up_then_stopped(
    chroma: ChromaServer, start_replica: Callable[[], Replica], slack: Slack
) -> None:
    replica = start_replica()  # the index server is down: the replica starts anyway
    ready = replica.wait_readyz(200)
    assert ready["checks"]["index"]["ok"] is False and ready["checks"]["index"]["required"] is False, ready
    _assert_unavailable(_answer(slack, replica, KNOWLEDGE_Q), replica)
    _assert_answered(_answer(slack, replica, METRIC_Q))

    chroma.start()
    wait_until(lambda: replica.readyz()[1].get("checks", {}).get("index", {}).get("ok"), 30, "index ok on /readyz")
    _assert_answered(_answer(slack, replica, KNOWLEDGE_Q))

    chroma.stop()
    wait_until(lambda: replica.readyz()[1].get("checks", {}).get("index", {}).get("ok") is False, 30, "index down")
    assert replica.readyz()[0] == 200
    _assert_unavailable(_answer(slack, replica, KNOWLEDGE_Q), replica)
    _assert_answered(_answer(slack, replica, METRIC_Q))


def test_a_hung_chroma_costs_knowledge_answers_a_timeout_not_the_bot(
    chroma: ChromaServer, start_replica: Callable[[], Replica], slack: Slack
) -> None:
    chroma.start()
    replica = start_replica()
    _assert_answered(_answer(slack, replica, KNOWLEDGE_Q))

    chroma.pause()  # SIGSTOP: connections are accepted by the kernel, nothing answers
    knowledge, ack = slack.ask(replica, KNOWLEDGE_Q)
    assert ack.status == 200 and ack.seconds < 3, ack
    _assert_answered(_answer(slack, replica, METRIC_Q, timeout=15))  # in the meantime
    slack.wait_answered([knowledge["event"]["ts"]], timeout=30)
    (reply,) = slack.replies(knowledge["event"]["ts"])
    _assert_unavailable(reply, replica)
    health = replica.get("/readyz", timeout=10)
    assert health.status == 200 and health.json()["checks"]["index"]["ok"] is False, health

    chroma.resume()
    wait_until(lambda: replica.readyz()[1].get("checks", {}).get("index", {}).get("ok"), 30, "index ok again")
    _assert_answered(_answer(slack, replica, KNOWLEDGE_Q))
