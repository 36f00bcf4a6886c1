"""What a write tool proposes, and what each action kind does when it is proposed, executed or closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from mopsbot.approvals.envelope import SealedAction
from mopsbot.store.models import PendingAction

Risk = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class Proposal:
    """A write a tool asks for: the exact payload an approver will see, and the route the policy computed.

    `requesters` are the people who shaped it besides the caller (a draft's author, a config's owner, the person
    it is filed for); the caller is always added. `supersedes` replaces a pending action (e.g. plans added).
    """

    action_kind: str
    payload: dict[str, Any]
    summary: str
    risk: Risk = "medium"
    preview: str = ""
    category: str | None = None
    routing_reasons: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()
    supersedes: str | None = None
    links: dict[str, Any] = field(default_factory=dict)


class NotReady(Exception):
    """The action cannot be approved yet (e.g. plans are missing); the message says what to add."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class ActionHandler(Protocol):
    """One action kind's effects. Implemented in the domain packages (campaigns/, changes/)."""

    def on_proposed(self, session: Session, action: PendingAction, proposal: Proposal) -> dict[str, Any]:
        """Link domain records to the new action, in the proposal's transaction; returns what to show."""
        ...

    def check(self, action: SealedAction) -> None:
        """Raise NotReady when the sealed action may not be approved as it stands."""
        ...

    def execute(self, action: SealedAction) -> dict[str, Any]:
        """Carry out the verified action (its payload exactly); returns the result to record."""
        ...

    def on_closed(self, action: SealedAction, status: str, actor: str, reason: str | None) -> None:
        """Keep domain records in step with a rejected, expired or superseded action."""
        ...


@runtime_checkable
class IdempotentHandler(ActionHandler, Protocol):
    """A handler whose `execute` also takes the execution's idempotency key: run again with the same key (a resume
    after a crash), it returns the first run's result and writes nothing twice. Declaring `resumable` (True or
    False) is what marks it; True lets the sweeper re-run an interrupted execution without a person.
    """

    resumable: bool

    def execute(self, action: SealedAction, key: str | None = None) -> dict[str, Any]:
        """Carry out the verified action once per `key`; a repeat with the same key returns the first result."""
        ...


def run_executor(handler: ActionHandler, action: SealedAction, key: str) -> dict[str, Any]:
    """Execute `action`, passing the idempotency key to a handler that takes one (older handlers do not)."""
    if isinstance(handler, IdempotentHandler):
        return handler.execute(action, key)
    return handler.execute(action)


def is_resumable(handler: ActionHandler | None) -> bool:
    """True when the handler says an interrupted execution may be re-run with its key without a person."""
    return isinstance(handler, IdempotentHandler) and handler.resumable is True
