"""Bolt middleware: claim each question event (exactly once across replicas) and refuse events while draining.
Listeners find the claim and the question in the bolt context.

Store down while claiming: over HTTP, when Slack will still retry (no X-Slack-Retry-Num, or fewer than 3), the
event gets a 503 so Slack redelivers it later, when the store may be back; on Slack's last retry (or in Socket
Mode, which has no status to return) the listener tells the asker it cannot answer now, with a reference id. So
a question is answered once, or its asker is told why.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from sqlalchemy.exc import SQLAlchemyError

from mopsbot.errors import reference_id
from mopsbot.observability import metrics as obs
from mopsbot.slack.questions import question_of
from mopsbot.store.db import StoreUnavailable

if TYPE_CHECKING:
    from mopsbot.slack.app import SlackBot

log = logging.getLogger(__name__)
LAST_RETRY = 3  # Slack retries a failed event delivery three times
SEEN_IN_MEMORY = 10_000  # event ids decided per process, for the fast duplicate ack
STORE_ERRORS = (SQLAlchemyError, StoreUnavailable)


def retry_number(req: BoltRequest) -> int:
    values = req.headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return 0


class ClaimEvents(Middleware):
    """Claim each question event in the state store before the ack; duplicates are acked and dropped."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, event_id: str) -> None:
        with self._lock:
            self._seen[event_id] = None
            while len(self._seen) > SEEN_IN_MEMORY:
                self._seen.popitem(last=False)

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        body = req.body
        if body.get("type") != "event_callback":
            return next()
        kind = (body.get("event") or {}).get("type") or "unknown"
        if self.bot.lifecycle.draining.is_set():
            obs.EVENTS.labels(kind=kind, outcome="refused_draining").inc()
            return BoltResponse(status=503, body="draining: redeliver to another replica")
        event_id = body.get("event_id")
        if event_id:
            with self._lock:
                if event_id in self._seen:
                    obs.EVENTS.labels(kind=kind, outcome="duplicate").inc()
                    return BoltResponse(status=200, body="")
        try:
            question = question_of(body, req.context.bot_user_id, self.bot.bot_in_thread)
            if question is None:
                obs.EVENTS.labels(kind=kind, outcome="ignored").inc()
                return next()
            claim = self.bot.claims.claim(str(event_id), question.to_dict()) if event_id else None
        except STORE_ERRORS as err:
            ref = reference_id()
            obs.ERRORS.labels(kind="store").inc()
            retry = retry_number(req)
            log.error("cannot claim event %s (%s, retry %d): %s", event_id, ref, retry, type(err).__name__)
            if req.mode != "socket_mode" and retry < LAST_RETRY:
                obs.EVENTS.labels(kind=kind, outcome="store_down_retry").inc()
                return BoltResponse(status=503, body=f"state store unavailable ({ref}); please retry")
            obs.EVENTS.labels(kind=kind, outcome="store_down_told").inc()
            req.context["store_error"] = ref
            req.context["question"] = question_of(body, req.context.bot_user_id, lambda _c, _t: True)
            return next()
        if event_id:
            self._remember(str(event_id))
        if claim is not None and not claim.won:
            obs.EVENTS.labels(kind=kind, outcome="duplicate").inc()
            log.info("event %s already claimed or answered", event_id)
            return BoltResponse(status=200, body="")
        if claim is not None and claim.outcome == "takeover":
            obs.CLAIM_TAKEOVERS.inc()
            log.info("event %s taken over from an expired claim (attempt %d)", event_id, claim.attempts)
        obs.EVENTS.labels(kind=kind, outcome="accepted").inc()
        req.context["question"] = question
        req.context["claim"] = claim
        if event_id:
            self.bot.lifecycle.accept(str(event_id))
        return next()
