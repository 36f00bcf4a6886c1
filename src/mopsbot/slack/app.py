"""The Slack app (bolt): answers in threads, approval cards with authorized buttons, never silent.

Slack gives 3 seconds: bolt acks first and runs the listeners after (process_before_response=False). A redelivered
event is answered once (event ids in the state store); a failure posts a short message with a reference id.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, Assistant, BoltContext, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mopsbot.agent.runner import Agent
from mopsbot.approvals.decide import AlreadyDecided, DecisionRefused
from mopsbot.caller import CallerContext
from mopsbot.config import Settings
from mopsbot.errors import UserFacingError, reference_id
from mopsbot.slack import blocks as ui
from mopsbot.store.models import Conversation, Feedback, Message, PendingAction, ProcessedEvent
from mopsbot.workspace import channel_visibility

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
# plain messages, thread replies also sent to the channel, and messages with a file are questions; edits, joins,
# deletions and bot messages are not
ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")
LISTENER_WORKERS = 3
SEEN_IN_MEMORY = 10_000  # event ids remembered per process for the fast duplicate ack
SUGGESTED_PROMPTS = (
    ("Webinar SOP", "What's our SOP for a webinar?"),
    ("CPL by channel", "CPL by channel last quarter vs the quarter before"),
    ("Explain a lead score", "Why is lead 4411 scored 82?"),
    ("CPL threshold check", "What's the CPL threshold for paid social in EMEA and did we breach it last month?"),
)


def web_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": [RateLimitErrorRetryHandler(max_retry_count=3)]}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url
    return WebClient(**kwargs)


class SlackBot:
    """Listeners over one agent; `app` is the bolt App to serve over HTTP or Socket Mode."""

    def __init__(self, settings: Settings, agent_factory: Callable[[], Agent], client: WebClient | None = None) -> None:
        self.settings = settings
        self._agent_factory = agent_factory
        self._agent: Agent | None = None
        self._agent_lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        self.app = App(
            client=client or web_client(settings),
            signing_secret=secret or "unsigned-socket-mode",
            token_verification_enabled=False,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
            # turns are CPU-bound Python; a few workers keep the GIL free enough for fast acks
            listener_executor=ThreadPoolExecutor(max_workers=LISTENER_WORKERS, thread_name_prefix="mopsbot-turn"),
        )
        self.app.use(self._dedupe)
        self.app.assistant(self._assistant())
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.action("mops_approve")(self._on_approve)
        self.app.action("mops_reject")(self._on_reject)
        self.app.view("mops_reject_modal")(self._on_reject_reason)
        self.app.action("mops_feedback_up")(self._on_feedback)
        self.app.action("mops_feedback_down")(self._on_feedback)
        self.app.action("mops_escalate")(self._on_escalate)
        self.app.action("mops_show_query")(self._on_show_query)
        self.app.command("/mops")(self._on_command)
        self.app.error(self._on_error)

    def _assistant(self) -> Assistant:
        """Slack's assistant view: suggested prompts when a thread opens, a "thinking…" status and a title."""
        assistant = Assistant()

        @assistant.thread_started
        def started(say: Callable, set_suggested_prompts: Callable) -> None:
            say("Hi! Ask me about our SOPs and stack, campaign metrics, lead scores, or ask me to draft a campaign.")
            set_suggested_prompts(prompts=[{"title": t, "message": m} for t, m in SUGGESTED_PROMPTS])

        @assistant.user_message
        def user_message(
            payload: dict[str, Any], client: WebClient, set_status: Callable, set_title: Callable, body: dict[str, Any]
        ) -> None:
            if payload.get("bot_id") or payload.get("subtype") not in ANSWERED_SUBTYPES:
                return
            text = _MENTION.sub("", payload.get("text", "")).strip()
            set_title(text[:60] or "mopsbot")
            set_status("thinking…")
            caller = self._caller(payload["user"], payload["channel"], "im", payload["thread_ts"])
            self._answer(client, caller, text, payload["thread_ts"], body.get("event_id"))

        return assistant

    @property
    def agent(self) -> Agent:
        """The agent, built once (under a lock: concurrent first events must not migrate the store twice)."""
        if self._agent is None:
            with self._agent_lock:
                if self._agent is None:
                    self._agent = self._agent_factory()
        return self._agent

    # --- middleware -----------------------------------------------------------------------------------------

    def _dedupe(self, body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Ack a redelivered event at once (same process); the listener's claim in the store covers restarts and
        other replicas. The store write is kept off the ack path, so acks stay fast under load."""
        event_id = body.get("event_id")
        if event_id:
            with self._seen_lock:
                if event_id in self._seen:
                    log.info("duplicate event %s dropped", event_id)
                    return BoltResponse(status=200, body="")  # acked (so Slack stops retrying), not answered again
                self._seen[event_id] = None
                while len(self._seen) > SEEN_IN_MEMORY:
                    self._seen.popitem(last=False)
        next()
        return None

    def _claim(self, event_id: str | None) -> bool:
        """True for the first handler of an event across processes and restarts (a row in the state store)."""
        if not event_id:
            return True
        try:
            with self.agent.store.session() as s:
                s.add(ProcessedEvent(event_id=str(event_id)))
        except IntegrityError:
            log.info("event %s already answered elsewhere", event_id)
            return False
        return True

    # --- conversations --------------------------------------------------------------------------------------

    def _caller(self, user: str, channel: str, channel_type: str | None, thread: str) -> CallerContext:
        visibility = "dm" if channel_type == "im" else channel_visibility(self.settings.tools_dir, channel)
        return CallerContext(user, channel, visibility, thread)  # type: ignore[arg-type]

    def _answer(
        self, client: WebClient, caller: CallerContext, text: str, thread: str, event_id: str | None = None
    ) -> None:
        """Run a turn and post the answer (or a reason) in the thread, once per event. Never silent."""
        if not self._claim(event_id):
            return
        try:
            record = self.agent.run_turn(text, caller, thread)
        except UserFacingError as err:
            client.chat_postMessage(channel=caller.channel_id, thread_ts=thread, text=f"Sorry: {err}")
            return
        except Exception:
            ref = reference_id()
            log.exception("turn failed (%s)", ref)
            client.chat_postMessage(
                channel=caller.channel_id,
                thread_ts=thread,
                text=f"Sorry, something went wrong on my side (reference {ref}). The details are in the logs.",
            )
            return
        private = bool(record.data.get("tables")) and not self._metrics_allowed(caller)
        try:
            for message in ui.answer_messages(record):
                if private:  # metric figures only to the asker in channels not configured for them
                    client.chat_postEphemeral(
                        channel=caller.channel_id, user=caller.user_id, thread_ts=thread, **message
                    )
                else:
                    client.chat_postMessage(channel=caller.channel_id, thread_ts=thread, **message)
            if not private:
                self._post_charts(client, caller.channel_id, thread, record)
            if private:
                client.chat_postMessage(
                    channel=caller.channel_id,
                    thread_ts=thread,
                    text="I sent the figures to you only: metric answers are shared in the channels the ops team "
                    "configured (tools/approvals.yaml, slack.metric_channels) and in DMs.",
                )
            for action in record.pending_actions:
                self._post_card(client, caller.channel_id, thread, action.id, record)
        except Exception:  # the answer or a card could not be posted: say so, with a reference
            ref = reference_id()
            log.exception("posting the answer failed (%s)", ref)
            client.chat_postMessage(
                channel=caller.channel_id,
                thread_ts=thread,
                text=f"Sorry, I could not post all of my answer (reference {ref}). Pending actions are listed by "
                "`mopsbot approvals list`.",
            )

    def _card(self, action_id: str) -> dict[str, Any]:
        """The approval card, always built from the stored action (so every update shows the same payload)."""
        with self.agent.store.session() as s:
            stored = s.get(PendingAction, action_id)
            if stored is None:
                raise UserFacingError(f"no pending action {action_id}")
            s.expunge(stored)
        return ui.approval_card(stored)

    def _post_card(self, client: WebClient, channel: str, thread: str, action_id: str, record: Any = None) -> None:
        client.chat_postMessage(channel=channel, thread_ts=thread, **self._card(action_id))

    def _on_mention(self, event: dict[str, Any], client: WebClient, body: dict[str, Any]) -> None:
        if event.get("bot_id"):
            return
        thread = event.get("thread_ts") or event["ts"]
        caller = self._caller(event["user"], event["channel"], event.get("channel_type"), thread)
        self._answer(client, caller, _MENTION.sub("", event.get("text", "")).strip(), thread, body.get("event_id"))

    def _on_message(self, event: dict[str, Any], client: WebClient, context: BoltContext, body: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") not in ANSWERED_SUBTYPES or not event.get("user"):
            return  # the bot's own and other bots' messages, edits, joins
        text = event.get("text", "")
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text and event.get("channel_type") != "im":
            return  # the app_mention event of the same message answers it (Slack sends none in DMs)
        channel, thread = event["channel"], event.get("thread_ts")
        if event.get("channel_type") == "im":
            thread = thread or event["ts"]
        elif not thread or not self._bot_in_thread(channel, thread):
            return  # channel chatter: only threads the bot is already in
        caller = self._caller(event["user"], channel, event.get("channel_type"), thread)
        self._answer(client, caller, _MENTION.sub("", text).strip(), thread, body.get("event_id"))

    def _post_charts(self, client: WebClient, channel: str, thread: str, record: Any) -> None:
        """A PNG per metric result with a trend or a breakdown (matplotlib), uploaded into the thread."""
        from mopsbot.metrics.present import render_chart

        for table in record.data.get("tables", [])[:2]:
            if table.get("rows") and (table.get("grain") or table.get("dimensions")) and len(table["rows"]) > 1:
                title = ", ".join(table["labels"].values()) + f", {table['period']['label']}"
                client.files_upload_v2(
                    channel=channel, thread_ts=thread, content=render_chart(table), filename="chart.png", title=title
                )

    def _slack_config(self) -> dict[str, Any]:
        from mopsbot.workspace import tool_file

        return tool_file(self.settings.tools_dir, "approvals").get("slack") or {}

    def _metrics_allowed(self, caller: CallerContext) -> bool:
        if caller.channel_visibility in ("dm", "ops"):
            return True
        return caller.channel_id in (self._slack_config().get("metric_channels") or [])

    def _on_escalate(self, ack: Callable, body: dict[str, Any], client: WebClient) -> None:
        ack()
        message = body["message"]
        thread = message.get("thread_ts") or message["ts"]
        handle = self._slack_config().get("ops_group_handle", "the ops team")
        client.chat_postMessage(
            channel=body["channel"]["id"],
            thread_ts=thread,
            text=f"{handle}: <@{body['user']['id']}> escalated this thread for a person to look at.",
        )

    def _on_show_query(self, ack: Callable, body: dict[str, Any], client: WebClient) -> None:
        ack()
        turn_id = body["actions"][0]["value"]
        with self.agent.store.session() as s:
            row = s.scalars(select(Message).where(Message.turn_id == turn_id, Message.role == "assistant")).first()
            sqls = list((row.data or {}).get("sql", [])) if row else []
        message = body["message"]
        text = "\n".join(f"```{sql[:2800]}```" for sql in sqls) or "No query was run for that answer."
        client.chat_postEphemeral(
            channel=body["channel"]["id"], user=body["user"]["id"], thread_ts=message.get("thread_ts"), text=text[:3900]
        )

    def _bot_in_thread(self, channel: str, thread: str) -> bool:
        with self.agent.store.session() as s:
            found = s.scalars(
                select(Conversation.id).where(Conversation.channel_id == channel, Conversation.thread_ts == thread)
            ).first()
        return found is not None

    def _on_command(self, ack: Callable, command: dict[str, Any], client: WebClient) -> None:
        ack()
        text = (command.get("text") or "").strip() or "help"
        posted = client.chat_postMessage(channel=command["channel_id"], text=f"<@{command['user_id']}> asked: {text}")
        thread = posted["ts"]
        caller = self._caller(command["user_id"], command["channel_id"], None, thread)
        self._answer(client, caller, text, thread)

    # --- approvals ------------------------------------------------------------------------------------------

    def _decide(self, action_id: str, user: str, decision: str, reason: str | None):
        return self.agent.approvals.decide(action_id, user, decision, reason=reason, via="slack")  # type: ignore[arg-type]

    def _on_approve(self, ack: Callable, body: dict[str, Any], client: WebClient) -> None:
        ack()
        action_id = body["actions"][0]["value"]
        channel, message = body["channel"]["id"], body["message"]
        thread = message.get("thread_ts") or message["ts"]
        user = body["user"]["id"]
        try:
            result = self._decide(action_id, user, "approve", None)
        except DecisionRefused as err:
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread, text=_refusal(err))
            if isinstance(err, AlreadyDecided) or "expired" in str(err):
                self._close_card(client, channel, message["ts"], action_id, str(err))
            return
        outcome = f"{result.message} ({result.decided_at:%Y-%m-%d %H:%M} UTC)"
        self._close_card(client, channel, message["ts"], action_id, outcome)
        detail = f"\n```{json.dumps(result.result, default=str)[:2800]}```" if result.result else ""
        client.chat_postMessage(channel=channel, thread_ts=thread, text=f"{outcome}{detail}")

    def _on_reject(self, ack: Callable, body: dict[str, Any], client: WebClient) -> None:
        ack()
        message = body["message"]
        view = ui.reject_modal(
            body["actions"][0]["value"], body["channel"]["id"], message["ts"], message.get("thread_ts") or message["ts"]
        )
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def _on_reject_reason(self, ack: Callable, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        reason = view["state"]["values"]["reason"]["value"]["value"]
        meta = json.loads(view["private_metadata"])
        user = body["user"]["id"]
        try:
            result = self._decide(meta["action_id"], user, "reject", reason)
        except DecisionRefused as err:
            ack(response_action="errors", errors={"reason": _refusal(err)})
            return
        ack()
        outcome = f"{result.message} Reason: {reason} ({result.decided_at:%Y-%m-%d %H:%M} UTC)"
        self._close_card(client, meta["channel"], meta["ts"], meta["action_id"], outcome)
        client.chat_postMessage(channel=meta["channel"], thread_ts=meta["thread_ts"], text=outcome)

    def _close_card(self, client: WebClient, channel: str, ts: str, action_id: str, outcome: str) -> None:
        """The card for everyone: the same summary and payload, the buttons replaced by the decision."""
        blocks = ui.decided_card(self._card(action_id)["blocks"], outcome)
        client.chat_update(channel=channel, ts=ts, text=outcome, blocks=blocks)

    def _on_feedback(self, ack: Callable, body: dict[str, Any], client: WebClient) -> None:
        ack()
        action = body["actions"][0]
        value = 1 if action["action_id"] == "mops_feedback_up" else -1
        with self.agent.store.session() as s:
            s.add(Feedback(turn_id=action["value"], user_id=body["user"]["id"], channel_id=body["channel"]["id"],
                           value=value))  # fmt: skip
        client.chat_postEphemeral(
            channel=body["channel"]["id"], user=body["user"]["id"], text="Thanks for the feedback."
        )

    def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        ref = reference_id()
        log.error("slack handler failed (%s): %s", ref, type(error).__name__, exc_info=error)


def _refusal(err: DecisionRefused) -> str:
    return f"Not done: {err}"
