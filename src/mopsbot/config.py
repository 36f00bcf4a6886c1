"""Settings: the only module that reads the environment and `.env`.

Precedence, highest first: values passed to `load_settings(**overrides)`, environment variables, the `.env`
file, defaults. Invalid values raise `ConfigError`, whose message names the environment variable.
"""

from __future__ import annotations

import difflib
import logging
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

ENV_PREFIX = "MOPSBOT_"
# Prefixed variables that are read by the test suite or CI, not by the application.
_NOT_SETTINGS = ("MOPSBOT_TEST_",)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


def _alias(name: str, description: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name), description=description)


class Settings(BaseSettings):
    """Everything mopsbot can be configured with. Field docs become the README configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # Storage
    data_dir: Path = Field(Path("var"), description="Where the bot keeps its state, index and warehouse.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the bot state store. Default: SQLite file `<data_dir>/mopsbot.db`."
    )
    warehouse_path: Path | None = Field(
        None, description="duckdb file of the metrics warehouse. Default: `<data_dir>/warehouse.duckdb`."
    )
    chroma_path: Path | None = Field(
        None, description="Local Chroma directory (PersistentClient). Default: `<data_dir>/chroma`."
    )
    chroma_url: str | None = Field(None, description="Chroma server URL; when set, used instead of chroma_path.")
    embeddings: Literal["minilm", "static", "openai"] = Field(
        "minilm", description="Embedding backend of the knowledge index (see docs/embeddings.md)."
    )
    embedding_model: str = Field(
        "text-embedding-3-small", description="Embedding model name when MOPSBOT_EMBEDDINGS=openai."
    )
    embedding_dimension: int = Field(1536, ge=8, description="Vector size of that embedding model.")
    workspace: Path = Field(Path(), description="Folder holding the workspace's knowledge/ and tools/.")

    # Agent
    llm: Literal["auto", "openai", "local"] = Field(
        "auto", description="Agent backend: `local` planner, `openai`-compatible LLM, or `auto` (openai if configured)."
    )
    model: str = Field("gpt-4o-mini", description="Model name sent to the OpenAI-compatible endpoint.")
    llm_timeout_s: float = Field(30.0, gt=0, description="Timeout of one LLM request, seconds.")
    llm_max_retries: int = Field(
        2, ge=0, le=10, description="Retries on 429 / 5xx, with backoff (within the turn budget)."
    )
    max_tool_rounds: int = Field(6, ge=1, le=20, description="Tool-calling rounds allowed in one turn.")
    max_answer_tokens: int = Field(1024, ge=16, le=16384, description="Completion token limit per LLM call.")
    first_tool: str | None = Field(
        None,
        description="Force this tool in the first round (for small models that do not call tools on their own), "
        "e.g. search_knowledge.",
    )
    openai_base_url: str | None = _alias(
        "OPENAI_BASE_URL", "OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp server)."
    )
    openai_api_key: SecretStr | None = _alias("OPENAI_API_KEY", "API key for that endpoint (never logged).")
    today: date | None = Field(
        None, description="Pins 'today' for relative periods (evals, demos). Default: the real date."
    )
    local_user: str = Field("U07SC0005", description="Slack user id the terminal chat acts as.")
    ticketing_webhook_url: str | None = Field(
        None, description="Webhook (Jira/ServiceNow style) that approved change requests are POSTed to. Off if unset."
    )
    ticketing_token: SecretStr | None = Field(None, description="Bearer token for that webhook (never logged).")
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key that signs every proposed action's sealed envelope; never stored in the database. "
        "When set, an action whose envelope is not signed with it cannot be decided.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per log line (ids and figures, never message text or secrets)."
    )

    # Reliability: every dependency call is bounded; a turn has a total budget
    turn_budget_s: float = Field(90.0, gt=0, description="Total time one turn may take (all LLM rounds and tools).")
    tool_timeout_s: float = Field(20.0, gt=0, description="Timeout of one tool call (knowledge index, warehouse).")
    store_timeout_s: float = Field(5.0, gt=0, description="Connect and statement timeout of the state store.")
    chroma_timeout_s: float = Field(5.0, gt=0, description="Timeout of one request to a Chroma server.")
    slack_timeout_s: float = Field(10.0, gt=0, description="Timeout of one Slack Web API call.")
    claim_lease_s: float = Field(
        150.0,
        gt=0,
        description="How long a replica owns an event it started answering; a claim left longer "
        "(a crash) is taken over by a redelivery or another replica. Keep it above MOPSBOT_TURN_BUDGET_S.",
    )
    execution_lease_s: float = Field(
        300.0,
        gt=0,
        description="How long an approved action may run; one left `running` longer was interrupted "
        "and is resumed (`mopsbot approvals resume`) or failed visibly by the sweeper.",
    )
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM/SIGINT: how long `serve` waits for in-flight turns before exiting."
    )
    sweep_interval_s: float = Field(
        15.0, gt=0, description="How often `serve` looks for orphaned event claims, stuck executions and expiries."
    )
    event_retention_days: float = Field(
        7.0, gt=0, description="Processed Slack events are pruned after this many days (Slack retries for minutes)."
    )
    conversation_retention_days: float = Field(
        180.0,
        ge=0,
        description="Conversations and messages idle longer are pruned; 0 keeps them. The audit log is always kept.",
    )
    prune_interval_h: float = Field(24.0, gt=0, description="How often `serve` prunes (see the retention settings).")

    # Slack
    slack_bot_token: SecretStr | None = _alias("SLACK_BOT_TOKEN", "Bot token (xoxb-...) of the Slack app.")
    slack_app_token: SecretStr | None = _alias("SLACK_APP_TOKEN", "App-level token (xapp-...) for Socket Mode.")
    slack_signing_secret: SecretStr | None = _alias(
        "SLACK_SIGNING_SECRET", "Verifies Slack's signed requests in HTTP mode."
    )
    slack_api_url: str | None = _alias(
        "SLACK_API_URL", "Override of the Slack Web API base URL (tests point it at a fake server)."
    )
    port: int = Field(3000, ge=1, le=65535, description="Port of `mopsbot serve --http`.")

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        if self.slack_api_url and not self.slack_api_url.endswith("/"):
            object.__setattr__(self, "slack_api_url", self.slack_api_url + "/")
        if self.database_url is not None and "://" not in self.database_url:
            raise ValueError("database_url must be a SQLAlchemy URL such as sqlite:///var/mopsbot.db")
        return self

    # Derived locations -------------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'mopsbot.db').resolve()}"

    @property
    def resolved_warehouse_path(self) -> Path:
        return (self.warehouse_path or self.data_dir / "warehouse.duckdb").resolve()

    @property
    def resolved_chroma_path(self) -> Path:
        return (self.chroma_path or self.data_dir / "chroma").resolve()

    @property
    def knowledge_dir(self) -> Path:
        return (self.workspace / "knowledge").resolve()

    @property
    def tools_dir(self) -> Path:
        return (self.workspace / "tools").resolve()

    @property
    def openai_configured(self) -> bool:
        return bool(self.openai_base_url or self.openai_api_key)


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return ENV_PREFIX + field.upper()


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = e["loc"][0] if e["loc"] else ""
        field = str(loc)
        name = env_name(field) if field in Settings.model_fields else field.upper() or "configuration"
        shown = "" if "secret" in field or "token" in field or "key" in field else f" (got {e.get('input')!r})"
        lines.append(f"{name}: {e['msg']}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Prefixed variables that match no setting, each with the closest real name (typos are common)."""
    environ = dict(os.environ) if environ is None else environ
    known = {env_name(f) for f in Settings.model_fields}
    out = []
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX) and key not in known and not key.startswith(_NOT_SETTINGS):
            close = difflib.get_close_matches(key, known, n=1)
            out.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return out


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read settings from overrides, the environment and `env_file`. Raises ConfigError naming the variable."""
    for name in unknown_variables():
        log.warning("ignoring unknown setting %s", name)
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
