"""Running one turn: history in, backend decides, the executor runs read tools and proposes writes, record out."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError

from mopsbot.agent.backend import Backend, BackendOutput, ToolOutcome, TurnRequest
from mopsbot.agent.history import ConversationStore
from mopsbot.agent.turn import PendingActionRecord, ToolCallRecord, TurnRecord
from mopsbot.approvals import Approvals
from mopsbot.audit import record
from mopsbot.caller import CallerContext
from mopsbot.errors import DependencyUnavailable, UserFacingError, reference_id
from mopsbot.injection import addresses_ai, asks_to_decide, flagged_strings
from mopsbot.observability import metrics
from mopsbot.observability.logs import log_context
from mopsbot.store.db import Store
from mopsbot.tools.base import ToolContext, ToolDeps, ToolResult, WriteProposal
from mopsbot.tools.registry import Tool, ToolRegistry, describe_validation_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# The dependency a tool waits on, by tool family (the module a tool is defined in: mopsbot.tools.<family>);
# families not listed use the bot's own state store. Each dependency gets its own small thread pool.
DEPENDENCY_OF_FAMILY = {"knowledge": "knowledge", "metrics": "warehouse", "predictions": "warehouse"}
DEPENDENCY_NAMES = {"knowledge": "the knowledge index", "warehouse": "the warehouse", "store": "the state store"}
BULKHEAD_WAIT_S = 0.5  # how long a call waits for a free thread of its dependency's pool before failing

APPROVAL_STATEMENT = (
    "I can't approve or run anything myself, and nobody can skip approval. What I will do: prepare the change "
    "(a draft or a change request) and post it in this thread as a pending action showing exactly what would run. "
    "What happens next is up to people: an approver from the group the policy names (never the person who asked, "
    "drafted or submitted it) clicks Approve or Reject in the thread, and only then does it run, once, exactly as "
    "shown. If you want a change, ask for the change itself and I'll file it for approval."
)


class _Saturated(Exception):
    """Every thread of a dependency's pool is busy, typically each stuck on the same hung dependency."""


class _Hung(Exception):
    """A call did not finish within its timeout; it keeps its pool thread until it returns."""


class Bulkhead:
    """A small thread pool for one dependency: when the dependency hangs it holds only these threads, and
    further calls to it fail within BULKHEAD_WAIT_S instead of queueing behind the stuck ones."""

    def __init__(self, name: str, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._pool = ThreadPoolExecutor(size, thread_name_prefix=f"mopsbot-{name}")

    def run(self, fn: Callable[[], T], timeout: float) -> T:
        """fn() on a pool thread, in the caller's log context. Raises _Saturated, _Hung or what fn raised."""
        if not self._slots.acquire(timeout=max(0.0, min(BULKHEAD_WAIT_S, timeout))):
            raise _Saturated
        try:
            future = self._pool.submit(contextvars.copy_context().run, fn)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            return future.result(timeout=max(0.0, timeout))
        except TimeoutError:
            if future.done():  # fn itself raised TimeoutError
                raise
            raise _Hung from None


@dataclass
class _Executor:
    """Runs the backend's tool calls for one turn and keeps the record of them."""

    agent: Agent
    caller: CallerContext
    conversation_id: str
    thread_id: str
    calls: list[ToolCallRecord] = field(default_factory=list)
    citations: list[dict[str, str]] = field(default_factory=list)
    pending: list[PendingActionRecord] = field(default_factory=list)
    tools_ms: float = 0.0
    turn_id: str = ""
    # where text addressing an AI was read in this turn; a write proposed after it carries these notes
    provenance: list[str] = field(default_factory=list)
    guardrails: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # metric results, for surfaces to show as tables
    deadline: float = math.inf  # time.monotonic() by which the turn must end
    references: list[str] = field(default_factory=list)  # reference ids shown to the user in this turn

    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolOutcome:
        start = time.perf_counter()
        outcome: ToolOutcome | None = None
        try:
            outcome = self._call(name, arguments)
            return outcome
        finally:
            seconds = time.perf_counter() - start
            self.tools_ms += seconds * 1e3
            metrics.TOOL_SECONDS.labels(self._label(name)).observe(seconds)
            self._audit(name, arguments, outcome)

    def _label(self, name: str) -> str:
        """The tool's name as a metric label; names the model made up are one label, not one each."""
        return name if self.agent.registry.get(name) else "unknown"

    def _count(self, name: str, outcome: str) -> None:
        metrics.TOOL_CALLS.labels(self._label(name), outcome).inc()

    def _audit(self, name: str, arguments: Any, outcome: ToolOutcome | None) -> None:
        """Every tool call goes into the audit chain: the tool, a hash of its arguments, ok or not, the turn."""
        digest = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()
        try:
            with self.agent.store.session() as s:
                record(
                    s,
                    actor=self.caller.user_id,
                    event="tool.call",
                    subject_type="turn",
                    subject_id=self.turn_id or None,
                    data={"tool": name, "args_sha256": digest, "ok": bool(outcome and outcome.ok),
                          "turn_id": self.turn_id, "channel_id": self.caller.channel_id},
                )  # fmt: skip
        except Exception:  # auditing must not hide the answer; the failure is logged for the operator
            log.exception("could not audit tool call %s", name)

    def note_source(self, source: str) -> None:
        note = f"proposed after reading {source}: text addressing an AI"
        if note not in self.provenance:
            self.provenance.append(note)

    def _fail(
        self, name: str, args: dict[str, Any], error: str, kind: str = "unknown", outcome: str = "error"
    ) -> ToolOutcome:
        self._count(name, outcome)
        self.calls.append(ToolCallRecord(name, args, False, error, kind, error))
        return ToolOutcome(name, False, error, error=error)

    def _referenced(self, outcome: str, what: str, extra: dict[str, Any]) -> str:
        """A reference id for a failure the user is told about: counted, logged with it, kept for the turn log."""
        ref = reference_id()
        self.references.append(ref)
        metrics.ERRORS.labels(f"tool_{outcome}").inc()
        log.warning("%s (%s)", what, ref, extra={"reference": ref, "error_kind": f"tool_{outcome}", **extra})
        return ref

    def _run(self, tool: Tool, ctx: ToolContext, args: Any) -> ToolResult | WriteProposal:
        """The tool in its dependency's bulkhead, with the smaller of the tool timeout and the turn's time left.
        Raises DependencyUnavailable (with a reference id) when the dependency does not answer in time."""
        dependency = self.agent.dependency_of(tool)
        timeout = min(self.agent.tool_timeout_s, self.deadline - time.monotonic())
        extra = {"tool": tool.name, "dependency": dependency, "timeout_s": round(timeout, 2)}
        if timeout <= 0:
            ref = self._referenced("no_time", f"no time left in the turn for {tool.name}", extra)
            raise DependencyUnavailable(
                f"there was no time left in this turn to run {tool.name} (reference {ref})", ref
            )
        try:
            return self.agent.bulkhead(dependency).run(lambda: tool.fn(ctx, args), timeout)
        except (_Saturated, _Hung) as err:
            failure = "busy" if isinstance(err, _Saturated) else "timeout"
            ref = self._referenced(failure, f"tool {tool.name}: {dependency} {failure}", extra)
            what = DEPENDENCY_NAMES.get(dependency, dependency)
            raise DependencyUnavailable(f"{what} is not answering (reference {ref})", ref) from None

    def _call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolOutcome:
        registry = self.agent.registry
        tool = registry.get(name)
        raw_args = arguments if isinstance(arguments, dict) else {"_raw": arguments}
        if tool is None:
            error = f"unknown tool {name!r}; available: {', '.join(registry.names())}"
            return self._fail(name, raw_args, error, outcome="invalid")
        try:
            args = tool.parse(arguments)
        except (ValidationError, ValueError) as err:
            error = f"invalid arguments: {describe_validation_error(err)}"
            return self._fail(name, raw_args, error, tool.kind, "invalid")
        shown = args.model_dump(mode="json")
        ctx = ToolContext(ToolDeps(caller=self.caller, knowledge=self.agent.knowledge, **self.agent.tool_deps))
        try:
            result = self._run(tool, ctx, args)
        except DependencyUnavailable as err:
            return self._fail(name, shown, str(err), tool.kind, "unavailable")
        except UserFacingError as err:
            return self._fail(name, shown, str(err), tool.kind)
        except Exception:
            ref = reference_id()
            self.references.append(ref)
            metrics.ERRORS.labels("tool_failed").inc()
            log.exception("tool %s failed (%s)", name, ref, extra={"reference": ref, "tool": name})
            return self._fail(
                name, shown, f"the {name} tool failed unexpectedly (reference {ref})", tool.kind, "failed"
            )
        if isinstance(result, WriteProposal):
            try:
                return self._propose(name, shown, result)
            except UserFacingError as err:  # e.g. the version being amended was decided meanwhile
                return self._fail(name, shown, str(err), "write")
            except Exception:
                ref = reference_id()
                self.references.append(ref)
                metrics.ERRORS.labels("proposal_failed").inc()
                log.exception("proposing %s failed (%s)", name, ref, extra={"reference": ref, "tool": name})
                error = f"the {name} proposal could not be stored (reference {ref})"
                return self._fail(name, shown, error, "write", "failed")
        assert isinstance(result, ToolResult)
        flagged = [p for p in result.data.get("passages", []) if p.get("contains_instruction_like_text")]
        for passage in flagged:
            self.note_source(f"the document {passage.get('title') or passage.get('doc_id') or 'a document'}")
        if not flagged and flagged_strings({k: v for k, v in result.data.items() if k != "passages"}):
            self.note_source(f"the {name} result")
            result.data["contains_instruction_like_text"] = True
        self.citations += [c for c in result.citations if c not in self.citations]
        if "rows" in result.data and "columns" in result.data:
            self.tables.append({"tool": name, **result.data})
        self.calls.append(ToolCallRecord(name, shown, result.ok, result.summary, "read"))
        self._count(name, "ok" if result.ok else "error")
        return ToolOutcome(name, result.ok, result.summary, result.data, result.citations)

    def _propose(self, name: str, args: dict[str, Any], proposal: WriteProposal) -> ToolOutcome:
        if flagged_strings(args) or flagged_strings(proposal.payload):
            self.note_source(f"the {name} request itself")
        shapers = tuple(p for p in (*proposal.requesters, self.caller.acting_for) if p)
        if shapers != proposal.requesters:
            proposal = WriteProposal(**{**proposal.__dict__, "requesters": shapers})
        action, linked = self.agent.approvals.propose(
            proposal,
            requester=self.caller.user_id,
            channel_id=self.caller.channel_id,
            thread_ts=self.thread_id,
            conversation_id=self.conversation_id,
            provenance=tuple(self.provenance),
        )
        groups = [g for g in (action.required_group or "").split(",") if g]
        waiting = (
            f"waiting for approval by {' or '.join(groups)}"
            if groups
            else "no approver group is configured for this action, so nobody can approve it"
        )
        summary = f"{proposal.summary}: pending action {action.id}, {waiting}. Nothing has been changed."
        if self.provenance:
            summary += " Note: " + "; ".join(self.provenance) + "."
        record = PendingActionRecord(
            action.id,
            action.kind,
            proposal.summary,
            action.status,
            action.risk,
            action.required_group,
            action.payload_hash,
            proposal.preview,
        )
        self.pending.append(record)
        self.calls.append(ToolCallRecord(name, args, True, summary, "write"))
        self._count(name, "proposed")
        pending = {
            "id": action.id,
            "status": "pending",
            "risk": action.risk,
            "kind": action.kind,
            "waiting_for": groups,
            "requesters": list(action.requesters or []),
            "routing_reasons": list(proposal.routing_reasons),
            "provenance": list(self.provenance),
            "payload_hash": action.payload_hash,
            **linked,
        }
        return ToolOutcome(name, True, summary, {"pending_action": pending}, pending_action=pending)


class Agent:
    """The loop every surface shares: `run_turn(message, caller, thread_id)` -> TurnRecord."""

    def __init__(
        self,
        *,
        store: Store,
        registry: ToolRegistry,
        backend: Backend,
        approvals: Approvals,
        knowledge: Any = None,
        tool_deps: dict[str, Any] | None = None,
        turn_budget_s: float = 90.0,
        tool_timeout_s: float = 20.0,
        pool_size: int = 4,
        dependencies: Mapping[str, str] | None = None,
    ) -> None:
        """`dependencies` maps tool families to the dependency they wait on (default DEPENDENCY_OF_FAMILY);
        each dependency's tools run in a pool of `pool_size` threads."""
        self.turn_budget_s = turn_budget_s
        self.tool_timeout_s = tool_timeout_s
        self.pool_size = pool_size
        self.dependencies = dict(DEPENDENCY_OF_FAMILY if dependencies is None else dependencies)
        self._bulkheads: dict[str, Bulkhead] = {}
        self._bulkheads_lock = threading.Lock()
        self.store = store
        self.tool_deps = {"store": store, **(tool_deps or {})}
        self.registry = registry
        self.backend = backend
        self.approvals = approvals
        self.approval_policy = approvals.policy
        self.knowledge = knowledge
        self.conversations = ConversationStore(store)

    def dependency_of(self, tool: Tool) -> str:
        """The dependency a tool waits on, from its family (the module it is defined in)."""
        return self.dependencies.get(tool.fn.__module__.rpartition(".")[2], "store")

    def bulkhead(self, dependency: str) -> Bulkhead:
        with self._bulkheads_lock:
            if dependency not in self._bulkheads:
                self._bulkheads[dependency] = Bulkhead(dependency, self.pool_size)
            return self._bulkheads[dependency]

    def run_tool(
        self, name: str, arguments: dict[str, Any], caller: CallerContext, thread_id: str, note: str
    ) -> TurnRecord:
        """One tool call on the caller's behalf, outside a conversation turn (scheduled checks propose fixes this way).

        It goes through the same executor as a turn (validation, write tools only propose, audit); `note` is what
        the thread's history records as the assistant's message.
        """
        turn_id = uuid.uuid4().hex
        conversation_id = self.conversations.conversation_id(caller, thread_id)
        deadline = time.monotonic() + self.turn_budget_s
        executor = _Executor(self, caller, conversation_id, thread_id, turn_id=turn_id, deadline=deadline)
        with log_context(turn_id=turn_id):
            outcome = executor.call(name, arguments)
        record = TurnRecord(
            turn_id=turn_id,
            conversation_id=conversation_id,
            thread_id=thread_id,
            backend="scheduled",
            answer=note if outcome.ok else f"{note} Could not propose it: {outcome.error}",
            tool_calls=executor.calls,
            pending_actions=executor.pending,
        )
        self._remember(conversation_id, record, executor, {})
        return record

    def run_turn(self, message: str, caller: CallerContext, thread_id: str | None = None) -> TurnRecord:
        """Answer one message in a thread within the turn budget. Raises UserFacingError (e.g. the LLM is down;
        a DependencyUnavailable carries a reference id) with a clear message."""
        start = time.perf_counter()
        turn_id = uuid.uuid4().hex
        thread_id = thread_id or f"local-{turn_id[:12]}"
        deadline = time.monotonic() + self.turn_budget_s
        executor = _Executor(self, caller, "", thread_id, turn_id=turn_id, deadline=deadline)
        outcome = "failed"
        with log_context(turn_id=turn_id):
            try:
                record, outcome = self._answer(message, executor, start)
                return record
            except DependencyUnavailable as err:
                outcome = "error"
                executor.references.append(err.reference)
                raise
            except UserFacingError:
                outcome = "error"
                raise
            finally:  # an unexpected exception stays "failed"; the surface logs and counts it with its reference
                self._observe(executor, outcome, time.perf_counter() - start)

    def _answer(self, message: str, executor: _Executor, start: float) -> tuple[TurnRecord, str]:
        caller, thread_id, turn_id = executor.caller, executor.thread_id, executor.turn_id
        conversation_id = executor.conversation_id = self.conversations.conversation_id(caller, thread_id)
        history = self.conversations.load(conversation_id)
        self.conversations.append(conversation_id, "user", message, user_id=caller.user_id, turn_id=turn_id)
        if addresses_ai(message):
            executor.note_source("the user's message")
        request = TurnRequest(
            message=message,
            history=history,
            registry=self.registry,
            caller=caller,
            today=self.tool_deps.get("today") or date.today(),
            deadline=executor.deadline,
        )
        if asks_to_decide(message):
            output = BackendOutput(APPROVAL_STATEMENT, guardrails=["asked to approve or bypass policy: explained"])
        else:
            output = self.backend.run(request, executor)
        record = TurnRecord(
            turn_id=turn_id,
            conversation_id=conversation_id,
            thread_id=thread_id,
            backend=self.backend.name,
            answer=output.answer,
            citations=executor.citations,
            tool_calls=executor.calls,
            pending_actions=executor.pending,
            data={
                **({"state": output.state} if output.state else {}),
                **({"tables": executor.tables} if executor.tables else {}),
            },
            usage=output.usage,
            guardrails=output.guardrails + executor.guardrails,
        )
        total = (time.perf_counter() - start) * 1e3
        record.timings_ms = {"total": round(total, 2), "tools": round(executor.tools_ms, 2)}
        self._remember(conversation_id, record, executor, output.state)
        return record, output.outcome

    def _observe(self, executor: _Executor, outcome: str, seconds: float) -> None:
        """Turn metrics and the turn's log line: ids, figures and outcomes, never the message or the answer."""
        metrics.TURNS.labels(self.backend.name, outcome).inc()
        metrics.TURN_SECONDS.labels(self.backend.name).observe(seconds)
        fields = {
            "turn_id": executor.turn_id,
            "conversation_id": executor.conversation_id or None,
            "thread_id": executor.thread_id,
            "channel_id": executor.caller.channel_id,
            "user_id": executor.caller.user_id,
            "backend": self.backend.name,
            "outcome": outcome,
            "latency_ms": round(seconds * 1e3, 1),
            "tools": [{"tool": c.name, "ok": c.ok} for c in executor.calls],
            "pending_actions": [p.id for p in executor.pending],
            "references": executor.references,
        }
        level = logging.INFO if outcome in ("ok", "partial") else logging.WARNING
        log.log(level, "turn %s %s in %.0f ms", executor.turn_id, outcome, seconds * 1e3, extra=fields)

    def _remember(self, conversation_id: str, record: TurnRecord, executor: _Executor, state: dict[str, Any]) -> None:
        """The assistant's message in the thread's history, with what the next turn needs to know."""
        self.conversations.append(
            conversation_id,
            "assistant",
            record.answer,
            turn_id=record.turn_id,
            data={
                **state,
                "tool_calls": [c.__dict__ for c in executor.calls],
                "pending_actions": [p.id for p in executor.pending],
                "sql": [t["sql"] for t in executor.tables if t.get("sql")],  # for "show query"
            },
        )
