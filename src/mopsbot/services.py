"""The one composition root: the store, the workspace's policies, the agent, Approvals and Changes, built once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mopsbot.agent.factory import build_agent, open_approvals
from mopsbot.agent.runner import Agent
from mopsbot.approvals import Approvals
from mopsbot.config import Settings
from mopsbot.store.db import Store
from mopsbot.tools.actions import Changes


@dataclass
class Services:
    settings: Settings
    store: Store
    approvals: Approvals
    changes: Changes
    _agent: Agent | None = None
    _agent_args: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, backend: str | None = None, **agent_args: Any) -> Services:
        """Open the store (migrated) and the approvals; the agent (knowledge, warehouse) is built on first use."""
        store = agent_args.pop("store", None) or Store.open(
            settings.resolved_database_url, timeout_s=settings.store_timeout_s
        )
        approvals = open_approvals(settings, store)
        return cls(
            settings, store, approvals, Changes(store, approvals.policy), None, {"backend": backend, **agent_args}
        )

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            self._agent = build_agent(
                self.settings, store=self.store, approvals=self.approvals, **(self._agent_args or {})
            )
        return self._agent

    def close(self) -> None:
        self.store.close()
