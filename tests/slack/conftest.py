"""A SlackBot served over HTTP on 127.0.0.1 against a fake Slack Web API, and helpers that send signed requests."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from mopsbot.agent.factory import build_agent
from mopsbot.agent.runner import Agent
from mopsbot.config import Settings, load_settings
from mopsbot.knowledge.service import Knowledge, open_knowledge
from mopsbot.slack.app import SlackBot
from mopsbot.slack.server import http_server
from tests.conftest import copy_trained_models
from tests.slack.fake_slack import BOT_USER, TEAM, FakeSlack

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-secret"
MKTG = "C07MKTG001"
LENA, PRIYA, SAM, DANA = "U07LV0004", "U07PR0002", "U07SC0005", "U07DW0001"


@dataclass
class Response:
    status: int
    body: str
    seconds: float


@dataclass
class Harness:
    """The bot behind its HTTP server, the fake Slack it talks to, and ways to act as Slack and its users."""

    fake: FakeSlack
    bot: SlackBot
    base: str

    @property
    def agent(self) -> Agent:
        return self.bot.agent

    def post(self, body: str, content_type: str, headers: dict[str, str] | None = None, secret: str = SECRET,
             path: str = "/slack/events") -> Response:  # fmt: skip
        stamp = str(int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
        request = urllib.request.Request(self.base + path, body.encode(), {**sent, **(headers or {})}, method="POST")
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return Response(r.status, r.read().decode(), time.monotonic() - start)
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read().decode(), time.monotonic() - start)

    def get(self, path: str) -> Response:
        start = time.monotonic()
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return Response(r.status, r.read().decode(), time.monotonic() - start)
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read().decode(), time.monotonic() - start)

    # --- Events API -----------------------------------------------------------------------------------------

    @staticmethod
    def event_body(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """An event_callback envelope; the event id defaults to one per (ts, event type)."""
        return {
            "token": "unused", "team_id": TEAM, "api_app_id": "A0MOPSBOT", "type": "event_callback",
            "event": event, "event_id": event_id or f"Ev{event['ts'].replace('.', '')}{event['type'][:3]}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }  # fmt: skip

    def event(self, event: dict[str, Any], event_id: str | None = None, retry: int | None = None,
              secret: str = SECRET) -> Response:  # fmt: skip
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return self.post(json.dumps(self.event_body(event, event_id)), "application/json", headers, secret)

    def user_message(self, text: str, user: str = LENA, channel: str = MKTG, thread_ts: str | None = None,
                     kind: str = "app_mention", **extra: Any) -> dict[str, Any]:  # fmt: skip
        """A message as Slack holds it (the fake learns it, so history answers like Slack) and its event."""
        ts = self.fake.new_ts()
        self.fake.add_user_message(channel, ts, user, text, thread_ts)
        event = {"type": kind, "user": user, "text": text, "ts": ts, "event_ts": ts, "channel": channel, **extra}
        if thread_ts:
            event["thread_ts"] = thread_ts
        if kind == "message":
            event.setdefault("channel_type", "im" if channel.startswith("D") else "channel")
        return event

    def mention(self, text: str, user: str = LENA, channel: str = MKTG, thread_ts: str | None = None) -> str:
        """Sends `<@UBOT> text` as an app_mention; returns the message ts."""
        event = self.user_message(f"<@{BOT_USER}> {text}", user, channel, thread_ts)
        assert self.event(event).status == 200
        return event["ts"]

    def say(self, text: str, user: str = LENA, channel: str = MKTG, thread_ts: str | None = None) -> str:
        """Sends a plain `message` event (no mention); returns its ts."""
        event = self.user_message(text, user, channel, thread_ts, kind="message")
        assert self.event(event).status == 200
        return event["ts"]

    # --- interactivity --------------------------------------------------------------------------------------

    def interact(self, payload: dict[str, Any]) -> Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def click(self, user: str, action_id: str, card: dict[str, Any], channel: str = MKTG) -> Response:
        """A button press on `card` (a message as the fake holds it)."""
        button = next(
            (e, b["block_id"]) for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == action_id
        )  # fmt: skip
        payload = {
            "type": "block_actions", "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0MOPSBOT",
            "team": {"id": TEAM}, "trigger_id": f"trigger-{user}-{time.monotonic_ns()}",
            "channel": {"id": channel}, "message": card,
            "container": {"type": "message", "message_ts": card["ts"], "channel_id": channel,
                          "thread_ts": card.get("thread_ts")},
            "actions": [{"type": "button", "action_id": action_id, "block_id": button[1],
                         "value": button[0]["value"], "action_ts": str(time.time())}],
        }  # fmt: skip
        return self.interact(payload)

    def submit_view(self, user: str, view: dict[str, Any], reason: str | None) -> Response:
        """Submits a modal that views.open opened, with `reason` typed into its reason input."""
        values = {"reason": {"value": {"type": "plain_text_input", "value": reason}}}
        payload = {
            "type": "view_submission", "user": {"id": user, "team_id": TEAM}, "team": {"id": TEAM},
            "api_app_id": "A0MOPSBOT", "trigger_id": f"trigger-{time.monotonic_ns()}",
            "view": {**view, "id": "V0MODAL", "team_id": TEAM, "state": {"values": values}},
        }  # fmt: skip
        return self.interact(payload)


@pytest.fixture(scope="session")
def knowledge(knowledge_index_dir: Path) -> Knowledge:
    return open_knowledge(load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO))


@pytest.fixture
def slack_settings(
    knowledge_index_dir: Path, warehouse: Path, trained_data_dir: Path, tmp_path: Path
) -> Callable[[str], Settings]:
    def make(api_url: str) -> Settings:
        data_dir = tmp_path / "var"
        if not (data_dir / "models").exists():
            copy_trained_models(trained_data_dir, data_dir)
        return load_settings(
            env_file=None, chroma_path=knowledge_index_dir, workspace=REPO, data_dir=data_dir,
            warehouse_path=warehouse, today=date(2026, 11, 16), slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET, slack_api_url=api_url,
        )  # fmt: skip

    return make


@pytest.fixture
def make_bot(slack_settings: Callable[[str], Settings], knowledge: Knowledge) -> Iterator[Callable[..., Harness]]:
    """make_bot(wrap=None, rate_limit_once=()): a served bot; `wrap` may alter the agent the factory builds."""
    stop: list[Callable[[], None]] = []

    def make(wrap: Callable[[Agent], Agent] | None = None, rate_limit_once: tuple[str, ...] = ()) -> Harness:
        fake = FakeSlack(rate_limit_once=set(rate_limit_once)).start()
        settings = slack_settings(fake.url)

        def factory() -> Agent:
            agent = build_agent(settings, backend="local", knowledge=knowledge)
            return wrap(agent) if wrap else agent

        bot = SlackBot(settings, factory)
        server = http_server(bot, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        stop.extend([fake.stop, server.server_close, server.shutdown])
        return Harness(fake, bot, f"http://127.0.0.1:{server.server_port}")

    yield make
    for fn in reversed(stop):
        fn()


@pytest.fixture
def bot(make_bot: Callable[..., Harness]) -> Harness:
    return make_bot()


def sections(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message.get("blocks") or [] if b["type"] == "section"]


def contexts(message: dict[str, Any]) -> list[str]:
    return [e["text"] for b in message.get("blocks") or [] if b["type"] == "context" for e in b["elements"]]
