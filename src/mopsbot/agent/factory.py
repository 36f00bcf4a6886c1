"""Assembling an Agent from settings: state store, knowledge, tools, approval policy and the chosen backend."""

from __future__ import annotations

from datetime import date
from typing import Any

from mopsbot.agent.backend import Backend
from mopsbot.agent.local.planner import LocalPlanner
from mopsbot.agent.openai_backend import OpenAIBackend, make_client
from mopsbot.agent.runner import Agent
from mopsbot.approvals import Approvals
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit.artifacts import AuditLedger
from mopsbot.campaigns.policy import CampaignPolicy
from mopsbot.changes.policy import ChangePolicy
from mopsbot.config import Settings
from mopsbot.errors import UserFacingError
from mopsbot.knowledge.service import Knowledge, open_knowledge
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.service import Predictions
from mopsbot.store.db import Store
from mopsbot.tools.actions import build_approvals, ticketing
from mopsbot.tools.builtin import builtin_registry
from mopsbot.tools.registry import ToolRegistry


def choose_backend(settings: Settings, requested: str | None = None, have_client: bool = False) -> str:
    """`auto` means openai when an endpoint is configured, else local."""
    name = requested or settings.llm
    if name == "auto":
        return "openai" if settings.openai_configured or have_client else "local"
    if name == "openai" and not (settings.openai_configured or have_client):
        raise UserFacingError("MOPSBOT_LLM=openai needs OPENAI_BASE_URL (and OPENAI_API_KEY if the endpoint wants one)")
    return name


def make_backend(
    name: str,
    settings: Settings,
    registry: ToolRegistry,
    knowledge: Knowledge,
    client: Any = None,
    metrics: MetricsEngine | None = None,
) -> Backend:
    if name == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        client = client or make_client(settings.openai_base_url, key, settings.llm_timeout_s, settings.llm_max_retries)
        return OpenAIBackend(
            client,
            settings.model,
            max_rounds=settings.max_tool_rounds,
            max_tokens=settings.max_answer_tokens,
            first_tool=settings.first_tool,
        )
    return LocalPlanner(registry, knowledge.index.embedder, metrics.catalog if metrics else None)


def open_metrics(settings: Settings) -> MetricsEngine:
    """The semantic layer over the configured warehouse: nothing reads the warehouse until a question needs it,
    then each question opens it read-only, bounded by the tool timeout, and closes it."""
    return MetricsEngine(
        settings.tools_dir / "metrics.yaml",
        settings.resolved_warehouse_path,
        settings.today,
        timeout_s=settings.tool_timeout_s,
        lazy=True,
    )


def open_predictions(settings: Settings, metrics: MetricsEngine, store: Store | None = None) -> Predictions:
    """The model registry: cards in tools/models/, artifacts in <data_dir>/models, entities read through the
    metrics engine's warehouse (read-only, per call, with its timeout)."""
    ledger = AuditLedger(store) if store is not None else None
    return Predictions(settings.tools_dir / "models", settings.data_dir / "models", metrics.warehouse, ledger)


def open_approvals(settings: Settings, store: Store) -> Approvals:
    """The Approvals facade for these settings: policy, handlers, ticketing webhook, signing key, execution lease."""
    token = settings.ticketing_token.get_secret_value() if settings.ticketing_token else None
    key = settings.signing_key.get_secret_value() if settings.signing_key else None
    return build_approvals(
        store,
        ApprovalPolicy.load(settings.tools_dir),
        settings.data_dir,
        ticketing(settings.ticketing_webhook_url, token),
        key,
        execution_lease_s=settings.execution_lease_s,
    )


def build_agent(
    settings: Settings,
    *,
    backend: str | None = None,
    store: Store | None = None,
    knowledge: Knowledge | None = None,
    client: Any = None,
    metrics: MetricsEngine | None = None,
    approvals: Approvals | None = None,
) -> Agent:
    """An agent on the configured (or given) backend; migrations are applied to the store on open."""
    store = store or Store.open(settings.resolved_database_url, timeout_s=settings.store_timeout_s)
    knowledge = knowledge or open_knowledge(settings)
    registry = builtin_registry()
    chosen = choose_backend(settings, backend, have_client=client is not None)
    approvals = approvals or open_approvals(settings, store)
    metrics = metrics or open_metrics(settings)
    return Agent(
        store=store,
        registry=registry,
        backend=make_backend(chosen, settings, registry, knowledge, client, metrics),
        approvals=approvals,
        knowledge=knowledge.retriever,
        tool_deps={
            "campaign_policy": CampaignPolicy.load(settings.tools_dir),
            "change_policy": ChangePolicy.load(settings.tools_dir),
            "approval_policy": approvals.policy,
            "approvals": approvals,
            "metrics": metrics,
            "predictions": open_predictions(settings, metrics, store),
            "today": settings.today or date.today(),
        },
        turn_budget_s=settings.turn_budget_s,
        tool_timeout_s=settings.tool_timeout_s,
    )
