"""The Slack app (bolt): answers in threads, approval cards with authorized buttons, never silent.

Slack gives 3 seconds: the ClaimEvents middleware claims a question in the state store, bolt acks, and the
listeners run after (process_before_response=False). Each question is answered once across replicas, restarts
and redeliveries (store/claims.py), or its asker is told why with a reference id that is also in the logs.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, Assistant, BoltContext
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import select

from mopsbot.agent.runner import Agent
from mopsbot.approvals.decide import AlreadyDecided, DecisionRefused
from mopsbot.caller import CallerContext
from mopsbot.config import Settings
from mopsbot.errors import UserFacingError, reference_id
from mopsbot.observability import metrics as obs
from mopsbot.observability.logs import log_context
from mopsbot.slack import blocks as ui
from mopsbot.slack.lifecycle import Lifecycle
from mopsbot.slack.middleware import STORE_ERRORS, ClaimEvents
from mopsbot.slack.questions import Question
from mopsbot.store.claims import Claim, EventClaims
from mopsbot.store.models import Conversation, Feedback, Message, PendingAction
from mopsbot.workspace import channel_visibility

log = logging.getLogger(__name__)
LISTENER_WORKERS = 3
MAX_POST_ATTEMPTS = 3  # an answer Slack would not take is retried by the sweeper this many times in all
DECISION_STORE_DOWN = (
    "I couldn't reach my state store, so I could not record that (reference {ref}). If the card still shows its "
    "buttons, nothing was decided or run: try again in a minute."
)
STORE_DOWN = (
    "Sorry, I can't reach my state store right now, so I can't answer safely (reference {ref}). "
    "Please ask again in a few minutes."
)
SUGGESTED_PROMPTS = (
    ("Webinar SOP", "What's our SOP for a webinar?"),
    ("CPL by channel", "CPL by channel last quarter vs the quarter before"),
    ("Explain a lead score", "Why is lead 4411 scored 82?"),
    ("CPL threshold check", "What's the CPL threshold for paid social in EMEA and did we breach it last month?"),
)


def web_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    kwargs: dict[str, Any] = {
        "token": token,
        "timeout": max(1, round(settings.slack_timeout_s)),
        "retry_handlers": [RateLimitErrorRetryHandler(max_retry_count=3)],
    }
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
        self._claims: EventClaims | None = None
        self.lifecycle = Lifecycle()
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        # turns are CPU-bound Python; a few workers keep the GIL free enough for fast acks
        self.executor = ThreadPoolExecutor(max_workers=LISTENER_WORKERS, thread_name_prefix="mopsbot-turn")
        self.app = App(
            client=client or web_client(settings),
            signing_secret=secret or "unsigned-socket-mode",
            token_verification_enabled=False,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
            listener_executor=self.executor,
        )
        self.app.use(ClaimEvents(self))
        self.app.assistant(self._assistant())
        self.app.event("app_mention")(self._on_question)
        self.app.event("message")(self._on_question)
        self.app.action("mops_approve")(self._reported(self._on_approve))
        self.app.action("mops_reject")(self._reported(self._on_reject))
        self.app.view("mops_reject_modal")(self._reported(self._on_reject_reason))
        self.app.action("mops_feedback_up")(self._reported(self._on_feedback))
        self.app.action("mops_feedback_down")(self._reported(self._on_feedback))
        self.app.action("mops_escalate")(self._reported(self._on_escalate))
        self.app.action("mops_show_query")(self._reported(self._on_show_query))
        self.app.command("/mops")(self._reported(self._on_command))
        self.app.error(self._on_error)

    def _reported(self, listener: Callable[..., None]) -> Callable[..., None]:
        """The listener, its failures reported to the person who clicked or typed (with a reference) instead of
        raised: bolt answers Slack with an error when an already-acked listener raises."""

        @functools.wraps(listener)
        def run(**kwargs: Any) -> None:
            try:
                listener(**kwargs)
            except Exception as err:
                self._on_error(err, kwargs.get("body") or {})

        return run

    def _assistant(self) -> Assistant:
        """Slack's assistant view: suggested prompts when a thread opens, a "thinking…" status and a title."""
        assistant = Assistant()

        @assistant.thread_started
        def started(say: Callable, set_suggested_prompts: Callable) -> None:
            say("Hi! Ask me about our SOPs and stack, campaign metrics, lead scores, or ask me to draft a campaign.")
            set_suggested_prompts(prompts=[{"title": t, "message": m} for t, m in SUGGESTED_PROMPTS])

        @assistant.user_message
        def user_message(client: WebClient, context: BoltContext, set_status: Callable, set_title: Callable) -> None:
            question: Question | None = context.get("question")
            if question is None:
                return
            if not context.get("store_error"):
                set_title(question.text[:60] or "mopsbot")
                set_status("thinking…")
            self._answer(client, question, context.get("claim"), context.get("store_error"))

        return assistant

    @property
    def agent(self) -> Agent:
        """The agent, built once (under a lock: concurrent first events must not migrate the store twice)."""
        if self._agent is None:
            with self._agent_lock:
                if self._agent is None:
                    self._agent = self._agent_factory()
        return self._agent

    @property
    def claims(self) -> EventClaims:
        if self._claims is None:
            self._claims = EventClaims(self.agent.store, lease_s=self.settings.claim_lease_s)
        return self._claims

    # --- questions ------------------------------------------------------------------------------------------

    def _caller(self, user: str, channel: str, channel_type: str | None, thread: str) -> CallerContext:
        visibility = "dm" if channel_type == "im" else channel_visibility(self.settings.tools_dir, channel)
        return CallerContext(user, channel, visibility, thread)  # type: ignore[arg-type]

    def _on_question(self, client: WebClient, context: BoltContext) -> None:
        question: Question | None = context.get("question")
        if question is not None:
            self._answer(client, question, context.get("claim"), context.get("store_error"))

    def _answer(
        self, client: WebClient, question: Question, claim: Claim | None = None, store_error: str | None = None
    ) -> None:
        """Run a turn and post the answer (or a reason) in the thread, then close the claim. Never silent."""
        channel, thread = question.channel, question.thread
        with (
            self.lifecycle.turn(question.event_id),
            obs.INFLIGHT_TURNS.track_inprogress(),
            log_context(event_id=question.event_id, channel=channel, thread=thread),
        ):
            if store_error:
                client.chat_postMessage(channel=channel, thread_ts=thread, text=STORE_DOWN.format(ref=store_error))
                return
            if claim is not None and claim.outcome == "takeover" and self._already_answered(client, question):
                self._finish(claim, "answered")
                return
            caller = self._caller(question.user, channel, question.channel_type, thread)
            try:
                record = self.agent.run_turn(question.text, caller, thread)
            except UserFacingError as err:
                self._tell(client, question, claim, f"Sorry: {err}", getattr(err, "reference", None))
                return
            except STORE_ERRORS as err:
                ref = reference_id()
                obs.ERRORS.labels(kind="store").inc()
                log.error("turn failed, state store unavailable (%s): %s", ref, type(err).__name__)
                self._tell(client, question, claim, STORE_DOWN.format(ref=ref), ref)
                return
            except Exception:
                ref = reference_id()
                obs.ERRORS.labels(kind="turn").inc()
                log.exception("turn failed (%s)", ref)
                text = f"Sorry, something went wrong on my side (reference {ref}). The details are in the logs."
                self._tell(client, question, claim, text, ref)
                return
            self._post_answer(client, question, claim, record)

    def _post_answer(self, client: WebClient, question: Question, claim: Claim | None, record: Any) -> None:
        caller = self._caller(question.user, question.channel, question.channel_type, question.thread)
        channel, thread = question.channel, question.thread
        private = bool(record.data.get("tables")) and not self._metrics_allowed(caller)
        posted = False
        try:
            for message in ui.answer_messages(record):
                if private:  # metric figures only to the asker in channels not configured for them
                    client.chat_postEphemeral(channel=channel, user=caller.user_id, thread_ts=thread, **message)
                else:
                    client.chat_postMessage(channel=channel, thread_ts=thread, **message)
                posted = True
            if not private:
                self._post_charts(client, channel, thread, record)
            if private:
                client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread,
                    text="I sent the figures to you only: metric answers are shared in the channels the ops team "
                    "configured (tools/approvals.yaml, slack.metric_channels) and in DMs.",
                )
            for action in record.pending_actions:
                self._post_card(client, channel, thread, action.id, record)
        except Exception as err:  # the answer or a card could not be posted: say so, with a reference
            ref = reference_id()
            obs.ERRORS.labels(kind="slack").inc()
            log.error("posting the answer failed (%s): %s", ref, type(err).__name__, exc_info=err)
            if not posted and claim is not None and claim.attempts < MAX_POST_ATTEMPTS:
                self._release(claim)  # nothing reached the thread: the sweeper tries again shortly
                return
            text = (
                f"Sorry, I could not post all of my answer (reference {ref}). Pending actions are listed by "
                "`mopsbot approvals list`."
            )
            self._tell(client, question, claim, text, ref)
            return
        self._finish(claim, "answered")

    def _tell(self, client: WebClient, question: Question, claim: Claim | None, text: str, ref: str | None) -> None:
        """Post a reason in the thread and close the claim as failed (told why)."""
        try:
            client.chat_postMessage(channel=question.channel, thread_ts=question.thread, text=text)
        except Exception as err:
            log.error("could not tell the asker (%s): %s", ref, type(err).__name__)
        self._finish(claim, "failed", ref)

    def _finish(self, claim: Claim | None, status: str, ref: str | None = None) -> None:
        if claim is None:
            return
        log.info(
            "event %s %s", claim.event_id, status,
            extra={"event_id": claim.event_id, "outcome": status, "reference": ref, "attempt": claim.attempts},
        )  # fmt: skip
        try:
            self.claims.finish(claim.event_id, status, ref)  # type: ignore[arg-type]
        except STORE_ERRORS as err:  # the lease runs out and a taker checks the thread before answering again
            log.error("could not close the claim of event %s: %s", claim.event_id, type(err).__name__)

    def _release(self, claim: Claim) -> None:
        try:
            self.claims.release([claim.event_id])
        except STORE_ERRORS as err:
            log.error("could not release the claim of event %s: %s", claim.event_id, type(err).__name__)

    def _already_answered(self, client: WebClient, question: Question) -> bool:
        """A taken-over event whose first owner posted before it died: the bot already spoke after the question."""
        try:
            replies = client.conversations_replies(channel=question.channel, ts=question.thread, oldest=question.ts)
        except Exception as err:  # cannot tell: answer (a rare second answer beats silence)
            log.warning("could not read thread %s before a takeover: %s", question.thread, type(err).__name__)
            return False
        return any(m.get("bot_id") and float(m["ts"]) > float(question.ts) for m in replies.get("messages") or [])

    def answer_orphans(self) -> int:
        """Take over questions whose claim expired (their replica died or drained) and answer them. Returns how
        many were taken. Called by the sweeper; takes no more than there are workers, so live events go first."""
        taken = 0
        mine = set(self.lifecycle.in_flight)
        for event_id in self.claims.orphans(limit=LISTENER_WORKERS):
            if self.lifecycle.draining.is_set():
                break
            if event_id in mine:  # still being answered here; its lease renewal failed or is late
                continue
            claim = self.claims.take_orphan(event_id)
            if claim is None or not claim.request:
                continue
            obs.CLAIM_TAKEOVERS.inc()
            log.info("answering orphaned event %s (attempt %d)", event_id, claim.attempts)
            self.lifecycle.accept(event_id)
            self.executor.submit(self._answer, self.app.client, Question.from_dict(claim.request), claim)
            taken += 1
        return taken

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

    def bot_in_thread(self, channel: str, thread: str) -> bool:
        with self.agent.store.session() as s:
            found = s.scalars(
                select(Conversation.id).where(Conversation.channel_id == channel, Conversation.thread_ts == thread)
            ).first()
        return found is not None

    def _on_command(self, ack: Callable, command: dict[str, Any], client: WebClient, body: dict[str, Any]) -> None:
        ack()
        text = (command.get("text") or "").strip() or "help"
        posted = client.chat_postMessage(channel=command["channel_id"], text=f"<@{command['user_id']}> asked: {text}")
        thread = posted["ts"]
        self._answer(client, Question(command["user_id"], command["channel_id"], None, thread, thread, text))

    # --- approvals ------------------------------------------------------------------------------------------

    def _decide(self, action_id: str, user: str, decision: str, reason: str | None):
        try:
            result = self.agent.approvals.decide(action_id, user, decision, reason=reason, via="slack")  # type: ignore[arg-type]
        except DecisionRefused:
            obs.APPROVALS.labels(decision=decision, outcome="refused").inc()
            raise
        obs.APPROVALS.labels(decision=decision, outcome=result.status).inc()
        return result

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
        except STORE_ERRORS as err:
            ref = reference_id()
            log.error(
                "reject of %s failed, state store unavailable (%s): %s", meta["action_id"], ref, type(err).__name__
            )
            ack(response_action="errors", errors={"reason": DECISION_STORE_DOWN.format(ref=ref)})
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
        """A listener failed: log it with a reference and tell the person who clicked or typed, never silent."""
        ref = reference_id()
        store_down = isinstance(error, STORE_ERRORS)
        obs.ERRORS.labels(kind="store" if store_down else "listener").inc()
        log.error("slack handler failed (%s): %s", ref, type(error).__name__, exc_info=error)
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if not (user and channel):
            return  # events tell their asker in _answer; other payloads have nobody to tell
        message = body.get("message") or {}
        text = (
            DECISION_STORE_DOWN.format(ref=ref)
            if store_down
            else f"Sorry, something went wrong handling that (reference {ref}). The details are in the logs."
        )
        try:
            self.app.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=message.get("thread_ts") or message.get("ts"), text=text
            )
        except Exception as err:
            log.error("could not tell %s about %s: %s", user, ref, type(err).__name__)


def _refusal(err: DecisionRefused) -> str:
    return f"Not done: {err}"
