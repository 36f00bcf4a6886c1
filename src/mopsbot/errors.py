"""Errors whose message is shown to the person who asked. Anything else is logged and shown as a reference id."""

from __future__ import annotations

import uuid


class UserFacingError(Exception):
    """An error whose message is safe and useful to show to the user as is."""


def reference_id() -> str:
    """A short id to show the user and to find the full error in the logs."""
    return "ref-" + uuid.uuid4().hex[:10]


class DependencyUnavailable(UserFacingError):
    """A dependency (LLM, knowledge index, warehouse, state store) failed or did not answer in time.

    The message ends with `reference`, which is also in the log line holding the details.
    """

    def __init__(self, message: str, reference: str) -> None:
        super().__init__(message)
        self.reference = reference
