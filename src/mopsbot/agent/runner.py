"""Running one turn: history in, backend decides, the executor runs read tools and proposes writes, record out."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from mopsbot.agent.backend import Backend, BackendOutput, ToolOutcome, TurnRequest
from mopsbot.agent.history import ConversationStore
from mopsbot.agent.turn import PendingActionRecord, ToolCallRecord, TurnRecord
from mopsbot.approvals import Approvals
from mopsbot.audit import record
from mopsbot.caller import CallerContext
from mopsbot.errors import UserFacingError, reference_id
from mopsbot.injection import addresses_ai, asks_to_decide, flagged_strings
from mopsbot.store.db import Store
from mopsbot.tools.base import ToolContext, ToolDeps, ToolResult, WriteProposal
from mopsbot.tools.registry import ToolRegistry, describe_validation_error

log = logging.getLogger(__name__)

APPROVAL_STATEMENT = (
    "I can't approve or run anything myself, and nobody can skip approval. What I will do: prepare the change "
    "(a draft or a change request) and post it in this thread as a pending action showing exactly what would run. "
    "What happens next is up to people: an approver from the group the policy names (never the person who asked, "
    "drafted or submitted it) clicks Approve or Reject in the thread, and only then does it run, once, exactly as "
    "shown. If you want a change, ask for the change itself and I'll file it for approval."
)


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

    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolOutcome:
        start = time.perf_counter()
        outcome: ToolOutcome | None = None
        try:
            outcome = self._call(name, arguments)
            return outcome
        finally:
            self.tools_ms += (time.perf_counter() - start) * 1e3
            self._audit(name, arguments, outcome)

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

    def _fail(self, name: str, args: dict[str, Any], error: str, kind: str = "unknown") -> ToolOutcome:
        self.calls.append(ToolCallRecord(name, args, False, error, kind, error))
        return ToolOutcome(name, False, error, error=error)

    def _call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolOutcome:
        registry = self.agent.registry
        tool = registry.get(name)
        raw_args = arguments if isinstance(arguments, dict) else {"_raw": arguments}
        if tool is None:
            return self._fail(name, raw_args, f"unknown tool {name!r}; available: {', '.join(registry.names())}")
        try:
            args = tool.parse(arguments)
        except (ValidationError, ValueError) as err:
            return self._fail(name, raw_args, f"invalid arguments: {describe_validation_error(err)}", tool.kind)
        shown = args.model_dump(mode="json")
        ctx = ToolContext(ToolDeps(caller=self.caller, knowledge=self.agent.knowledge, **self.agent.tool_deps))
        try:
            result = tool.fn(ctx, args)
        except UserFacingError as err:
            return self._fail(name, shown, str(err), tool.kind)
        except Exception:
            ref = reference_id()
            log.exception("tool %s failed (%s)", name, ref)
            return self._fail(name, shown, f"the {name} tool failed unexpectedly (reference {ref})", tool.kind)
        if isinstance(result, WriteProposal):
            try:
                return self._propose(name, shown, result)
            except UserFacingError as err:  # e.g. the version being amended was decided meanwhile
                return self._fail(name, shown, str(err), "write")
            except Exception:
                ref = reference_id()
                log.exception("proposing %s failed (%s)", name, ref)
                return self._fail(name, shown, f"the {name} proposal could not be stored (reference {ref})", "write")
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
    ) -> None:
        self.store = store
        self.tool_deps = {"store": store, **(tool_deps or {})}
        self.registry = registry
        self.backend = backend
        self.approvals = approvals
        self.approval_policy = approvals.policy
        self.knowledge = knowledge
        self.conversations = ConversationStore(store)

    def run_tool(
        self, name: str, arguments: dict[str, Any], caller: CallerContext, thread_id: str, note: str
    ) -> TurnRecord:
        """One tool call on the caller's behalf, outside a conversation turn (scheduled checks propose fixes this way).

        It goes through the same executor as a turn (validation, write tools only propose, audit); `note` is what
        the thread's history records as the assistant's message.
        """
        turn_id = uuid.uuid4().hex
        conversation_id = self.conversations.conversation_id(caller, thread_id)
        executor = _Executor(self, caller, conversation_id, thread_id, turn_id=turn_id)
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
        """Answer one message in a thread. Raises UserFacingError (e.g. the LLM is down) with a clear message."""
        start = time.perf_counter()
        turn_id = uuid.uuid4().hex
        thread_id = thread_id or f"local-{turn_id[:12]}"
        conversation_id = self.conversations.conversation_id(caller, thread_id)
        history = self.conversations.load(conversation_id)
        self.conversations.append(conversation_id, "user", message, user_id=caller.user_id, turn_id=turn_id)
        executor = _Executor(self, caller, conversation_id, thread_id, turn_id=turn_id)
        if addresses_ai(message):
            executor.note_source("the user's message")
        request = TurnRequest(
            message=message,
            history=history,
            registry=self.registry,
            caller=caller,
            today=self.tool_deps.get("today") or date.today(),
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
        return record

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
