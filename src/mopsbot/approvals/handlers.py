"""What a write tool proposes, and what each action kind does when it is proposed, executed or closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
