"""Readiness: each dependency's status, checked with a timeout, for /readyz and the operator.

Required: the state store (a write probe: a read-only file or a down database cannot claim events) and Slack auth.
Not required: the warehouse, the knowledge index and the LLM endpoint: without them the bot still answers what it
can and says what it cannot, so a load balancer should keep sending it events.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mopsbot.audit.recorder import redact_text as redact

if TYPE_CHECKING:
    from collections.abc import Callable

    from mopsbot.slack.app import SlackBot

log = logging.getLogger(__name__)
CACHE_S = 3.0  # a load balancer probing every second must not turn into a probe storm on the dependencies
SLACK_AUTH_CACHE_S = 60.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    required: bool


class Readiness:
    """Runs the checks of one bot (each in its own single thread, so one hung dependency delays only itself)."""

    def __init__(self, bot: SlackBot, timeout_s: float = 3.0) -> None:
        self.bot = bot
        self.timeout_s = timeout_s
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._slack_ok_at = 0.0

    def report(self) -> dict[str, Any]:
        """{"ready", "draining", "checks": {name: {ok, detail, required}}}; cached for a few seconds."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                cached = dict(self._cached[1])
                cached["draining"] = self.bot.lifecycle.draining.is_set()
                cached["ready"] = cached["ready"] and not cached["draining"]
                return cached
        checks = {
            "store": self._run("store", self._store, required=True),
            "slack": self._run("slack", self._slack, required=True),
            "warehouse": self._run("warehouse", self._warehouse, required=False),
            "index": self._run("index", self._index, required=False),
            "llm": self._run("llm", self._llm, required=False),
        }
        draining = self.bot.lifecycle.draining.is_set()
        ready = all(c.ok for c in checks.values() if c.required)
        report = {
            "ready": ready and not draining,
            "draining": draining,
            "checks": {k: asdict(v) for k, v in checks.items()},
        }
        with self._lock:
            self._cached = (time.monotonic(), {**report, "ready": ready})
        return report

    def _run(self, name: str, check: Callable[[], str], required: bool) -> Check:
        pool = self._pools.setdefault(name, ThreadPoolExecutor(1, thread_name_prefix=f"mopsbot-ready-{name}"))
        future = pool.submit(check)
        try:
            return Check(True, future.result(timeout=self.timeout_s), required)
        except FutureTimeout:
            return Check(False, f"no answer within {self.timeout_s:.0f} s", required)
        except Exception as err:  # any failure is the check's result; the detail never carries a secret
            return Check(False, redact(f"{type(err).__name__}: {err}")[:300], required)

    def _store(self) -> str:
        self.bot.claims.probe()
        return "writable"

    def _slack(self) -> str:
        if time.monotonic() - self._slack_ok_at < SLACK_AUTH_CACHE_S:
            return "auth ok"
        self.bot.app.client.auth_test()
        self._slack_ok_at = time.monotonic()
        return "auth ok"

    def _warehouse(self) -> str:
        return _ping(self.bot.agent.tool_deps.get("metrics"), "no metrics engine")

    def _index(self) -> str:
        retriever = self.bot.agent.knowledge
        return _ping(getattr(retriever, "index", None), "no knowledge index")

    def _llm(self) -> str:
        backend = self.bot.agent.backend
        client = getattr(backend, "client", None)
        if client is None:
            return f"{type(backend).__name__} (no LLM endpoint needed)"
        client.with_options(timeout=self.timeout_s, max_retries=0).models.list()
        return "endpoint answers"


def _ping(target: Any, missing: str) -> str:
    if target is None or not hasattr(target, "ping"):
        raise RuntimeError(missing)
    result = target.ping()
    if not result.get("ok"):
        raise RuntimeError(str(result.get("detail") or "not ok"))
    return str(result.get("detail") or "ok")
