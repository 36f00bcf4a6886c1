"""The outcome of a decision and the refusals it can meet (each with a message that says why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mopsbot.errors import UserFacingError

Decision = Literal["approve", "reject"]
Via = Literal["slack", "cli", "terminal", "mcp", "api"]


class DecisionRefused(UserFacingError):
    """The decision was not taken; the message says why."""


class ActionNotFound(DecisionRefused):
    pass


class AlreadyDecided(DecisionRefused):
    pass


class ActionExpired(DecisionRefused):
    pass


class SelfApprovalRefused(DecisionRefused):
    pass


class NotAuthorized(DecisionRefused):
    pass


class ReasonRequired(DecisionRefused):
    pass


class PayloadTampered(DecisionRefused):
    """The stored action no longer matches the envelope sealed at proposal; nothing is decided or executed."""


class PolicyChanged(NotAuthorized):
    """The approver groups the policy names now differ from those sealed at proposal."""


class NotApprovable(DecisionRefused):
    """The action may not be approved as it stands (e.g. its plans are missing)."""


class SurfaceNotAllowed(DecisionRefused):
    pass


@dataclass(frozen=True)
class DecisionResult:
    action_id: str
    status: str  # executed | failed | rejected
    decided_by: str
    decided_at: datetime
    result: dict[str, Any] | None = None
    error: str | None = None
    decided_by_name: str = ""

    @property
    def message(self) -> str:
        who = self.decided_by_name or self.decided_by
        if self.status == "rejected":
            return f"Rejected by {who}."
        if self.status == "executed":
            return f"Approved by {who} and executed once."
        return f"Approved by {who}, but execution failed: {self.error}"
