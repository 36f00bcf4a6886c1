"""Agents over the demo knowledge index (built once per session) with a fresh state store per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from mopsbot.agent.factory import build_agent
from mopsbot.agent.runner import Agent
from mopsbot.config import Settings, load_settings
from mopsbot.knowledge.service import Knowledge, open_knowledge
from mopsbot.store.db import Store
from mopsbot.tools.base import ToolContext, ToolResult, WriteProposal
from mopsbot.tools.registry import tool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(knowledge_index_dir: Path, tmp_path: Path) -> Settings:
    return load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO, data_dir=tmp_path / "var")


@pytest.fixture(scope="session")
def knowledge(knowledge_index_dir: Path) -> Knowledge:
    return open_knowledge(load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO))


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store.open(settings.resolved_database_url)


@pytest.fixture
def make_agent(settings: Settings, store: Store, knowledge: Knowledge) -> Callable[..., Agent]:
    def make(backend: str = "local", client: object = None) -> Agent:
        return build_agent(settings, backend=backend, store=store, knowledge=knowledge, client=client)

    return make


class PauseCampaignArgs(BaseModel):
    campaign: str
    reason: str


@tool("write", action_kind="change_request", exemplars=("pause the campaign",))
def pause_campaign(ctx: ToolContext, args: PauseCampaignArgs) -> WriteProposal:
    """Use to propose pausing a campaign; an approver must confirm it."""
    return WriteProposal(
        "change_request",
        {"campaign": args.campaign, "reason": args.reason},
        f"Pause {args.campaign}",
        risk="medium",
        preview=f"pause {args.campaign}",
    )


@tool("read")
def explode(ctx: ToolContext, args: PauseCampaignArgs) -> ToolResult:
    """Use never: fails on purpose."""
    raise RuntimeError("boom with a secret-looking detail")
