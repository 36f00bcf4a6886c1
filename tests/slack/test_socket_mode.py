"""Socket Mode through the real SocketModeHandler, against a local websocket server standing in for Slack."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from mopsbot.slack.server import socket_mode
from tests.slack.conftest import Harness
from tests.slack.fake_slack import BOT_USER


class SlackLink:
    """Says hello, sends the envelopes it is given, and collects the app's acks."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.server: Server = serve(self._session, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/link"

    def _session(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0MOPSBOT"}}))
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    self.acks.put(json.loads(ws.recv(timeout=0.05)))
                while not self.outbox.empty():
                    ws.send(json.dumps(self.outbox.get()))
        except ConnectionClosed:
            return

    def ack_for(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        try:
            while True:
                ack = self.acks.get(timeout=timeout)
                if ack.get("envelope_id") == envelope_id:
                    return ack
        except queue.Empty:
            return None


@pytest.fixture
def linked(make_bot: Callable[..., Harness]) -> Iterator[tuple[Harness, SlackLink]]:
    bot, link = make_bot(), SlackLink()
    handler = socket_mode(bot.bot, "xapp-test")
    handler.client.wss_uri = link.url  # skips apps.connections.open
    handler.client.default_auto_reconnect_enabled = False
    handler.connect()
    yield bot, link
    handler.close()
    link.server.shutdown()


def _envelope(envelope_id: str, body: dict[str, Any], retry: int = 0) -> dict[str, Any]:
    return {"envelope_id": envelope_id, "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": retry, "retry_reason": "timeout" if retry else "", "payload": body}  # fmt: skip


def test_a_mention_over_socket_mode_is_acked_and_answered_in_its_thread(linked: tuple[Harness, SlackLink]) -> None:
    bot, link = linked
    event = bot.user_message(f"<@{BOT_USER}> what's our SOP for a webinar?")
    link.outbox.put(_envelope("env-1", bot.event_body(event)))
    assert link.ack_for("env-1") == {"envelope_id": "env-1"}
    (posted,) = bot.fake.wait_for("chat.postMessage", 1)
    assert posted["thread_ts"] == event["ts"] and posted["blocks"]


def test_a_redelivered_envelope_is_acked_and_answered_once(linked: tuple[Harness, SlackLink]) -> None:
    bot, link = linked
    body = bot.event_body(bot.user_message(f"<@{BOT_USER}> what's our SOP for a webinar?"))
    link.outbox.put(_envelope("env-1", body))
    assert link.ack_for("env-1") is not None
    bot.fake.wait_for("chat.postMessage", 1)
    link.outbox.put(_envelope("env-2", body, retry=1))
    assert link.ack_for("env-2", timeout=3.0) is not None
    bot.fake.wait_idle()
    assert len(bot.fake.of("chat.postMessage")) == 1
