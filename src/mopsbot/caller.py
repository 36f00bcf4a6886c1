"""Who is asking and where: the caller context that retrieval and metric answers respect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChannelVisibility = Literal["public", "private", "dm", "ops"]
DocVisibility = Literal["public", "ops", "restricted"]


@dataclass(frozen=True)
class CallerContext:
    """The user id, channel id, how visible the channel is, and the thread, for one request."""

    user_id: str
    channel_id: str = "local"
    channel_visibility: ChannelVisibility = "dm"
    thread_id: str | None = None
    # an agent acting for a person: that person counts as a requester of anything it proposes
    acting_for: str | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """Which users and channels may see `restricted` documents (tools/knowledge.yaml)."""

    restricted_users: frozenset[str] = frozenset()
    restricted_channels: frozenset[str] = frozenset()

    def visible(self, caller: CallerContext) -> frozenset[DocVisibility]:
        """Document visibilities this caller may see, failing closed.

        Public and private channels see public documents only; DMs and ops channels also see ops documents.
        Restricted documents need a restricted channel, or a DM with a user on the restricted list: an answer in a
        shared channel would show them to everyone there.
        """
        seen: set[DocVisibility] = {"public"}
        if caller.channel_visibility in ("dm", "ops"):
            seen.add("ops")
        if caller.channel_id in self.restricted_channels or (
            caller.channel_visibility == "dm" and caller.user_id in self.restricted_users
        ):
            seen.update(("ops", "restricted"))
        return frozenset(seen)
