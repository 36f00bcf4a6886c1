"""Agent errors shown to users."""

from __future__ import annotations

from mopsbot.errors import UserFacingError


class BackendUnavailable(UserFacingError):
    """The configured LLM endpoint cannot be reached or keeps failing."""
