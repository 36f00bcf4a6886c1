"""Event claims: who answers a Slack event, under a lease, and whether it was answered.

`claimed(owner, lease_until) -> answered | failed`. The first replica to see an event inserts its claim; a
redelivery (same event id, any replica) or another replica's sweeper takes over a claim whose lease ran out (its
owner crashed or was stopped before answering) with one conditional UPDATE, so exactly one of them wins. An
`answered` or `failed` (told why) event is never answered again. The claim keeps the event itself so a sweeper can
answer it without Slack redelivering (Slack does not retry an event it got a 200 for).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mopsbot.store.db import Store
from mopsbot.store.models import ProcessedEvent

Outcome = Literal["new", "takeover", "duplicate"]


def process_owner() -> str:
    """This process, as an owner name: host, pid and a random part (pids are reused across restarts)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    event_id: str
    outcome: Outcome
    attempts: int = 1
    request: dict[str, Any] | None = None

    @property
    def won(self) -> bool:
        return self.outcome != "duplicate"


class EventClaims:
    """Claims of one process (`owner`) in the state store. Store errors propagate (the caller decides what the
    user is told); nothing here swallows them."""

    def __init__(
        self,
        store: Store,
        owner: str | None = None,
        lease_s: float = 150.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner or process_owner()
        self.lease = timedelta(seconds=lease_s)
        self._clock = clock or (lambda: datetime.now(UTC))

    def claim(self, event_id: str, request: dict[str, Any] | None = None) -> Claim:
        """Claim `event_id` for this process: `new`, `takeover` (an expired lease), or `duplicate` (answered,
        failed, or held by a live owner)."""
        now = self._clock()
        try:
            with self.store.session() as s:
                s.add(
                    ProcessedEvent(
                        event_id=event_id, status="claimed", owner=self.owner, lease_until=now + self.lease,
                        request=request, received_at=now,
                    )
                )  # fmt: skip
            return Claim(event_id, "new", 1, request)
        except IntegrityError:
            pass
        return self._take_over(event_id, now) or Claim(event_id, "duplicate")

    def _take_over(self, event_id: str, now: datetime) -> Claim | None:
        with self.store.session() as s:
            won = s.execute(
                update(ProcessedEvent)
                .where(
                    ProcessedEvent.event_id == event_id,
                    ProcessedEvent.status == "claimed",
                    or_(ProcessedEvent.lease_until.is_(None), ProcessedEvent.lease_until < now),
                )
                .values(owner=self.owner, lease_until=now + self.lease, attempts=ProcessedEvent.attempts + 1)
            ).rowcount
            if not won:
                return None
            row = s.get(ProcessedEvent, event_id)
            return Claim(event_id, "takeover", row.attempts if row else 2, row.request if row else None)

    def finish(self, event_id: str, status: Literal["answered", "failed"], reference: str | None = None) -> bool:
        """Close this process's claim: answered, or failed (the user was told why, with `reference`)."""
        with self.store.session() as s:
            return bool(
                s.execute(
                    update(ProcessedEvent)
                    .where(ProcessedEvent.event_id == event_id, ProcessedEvent.owner == self.owner)
                    .values(status=status, reference=reference, finished_at=self._clock(), lease_until=None)
                ).rowcount
            )

    def release(self, event_ids: list[str]) -> int:
        """Give claims back at once (a draining process that will not answer them): the next taker need not wait."""
        if not event_ids:
            return 0
        with self.store.session() as s:
            return s.execute(
                update(ProcessedEvent)
                .where(
                    ProcessedEvent.event_id.in_(event_ids),
                    ProcessedEvent.owner == self.owner,
                    ProcessedEvent.status == "claimed",
                )
                .values(lease_until=self._clock() - timedelta(seconds=1))
            ).rowcount

    def renew(self, event_ids: list[str]) -> int:
        """Extend the lease of this process's open claims (events queued or being answered): a live replica whose
        work outlasts one lease keeps its events, so no sweeper answers them a second time."""
        if not event_ids:
            return 0
        now = self._clock()
        with self.store.session() as s:
            return s.execute(
                update(ProcessedEvent)
                .where(
                    ProcessedEvent.event_id.in_(event_ids),
                    ProcessedEvent.owner == self.owner,
                    ProcessedEvent.status == "claimed",
                )
                .values(lease_until=now + self.lease)
            ).rowcount

    def orphans(self, limit: int = 20) -> list[str]:
        """Claimed events whose lease ran out and that carry what is needed to answer them, oldest first."""
        now = self._clock()
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(ProcessedEvent.event_id)
                    .where(
                        and_(
                            ProcessedEvent.status == "claimed",
                            ProcessedEvent.lease_until < now,
                            ProcessedEvent.request.is_not(None),
                        )
                    )
                    .order_by(ProcessedEvent.received_at)
                    .limit(limit)
                )
            )

    def take_orphan(self, event_id: str) -> Claim | None:
        """Take over one orphan (None if another process was faster)."""
        return self._take_over(event_id, self._clock())

    def probe(self) -> None:
        """Prove the store takes a claim now (a write, rolled back); raises what the store raises."""
        with self.store.engine.connect() as conn:
            transaction = conn.begin()
            try:
                conn.execute(
                    insert(ProcessedEvent).values(
                        event_id=f"probe:{self.owner}"[:128], status="answered", received_at=self._clock(), attempts=1
                    )
                )
            finally:
                transaction.rollback()

    def once(self, key: str) -> bool:
        """Record a one-off key (e.g. an alert already posted) as answered; False if it was recorded before."""
        try:
            with self.store.session() as s:
                s.add(ProcessedEvent(event_id=key[:128], status="answered", owner=self.owner, request=None))
            return True
        except IntegrityError:
            return False
