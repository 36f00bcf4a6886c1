"""Running eval cases through the agent, each case on a fresh state store."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import func, select

from mopsbot.agent.runner import Agent
from mopsbot.errors import UserFacingError, reference_id
from mopsbot.evals.cases import Case, SqlCheck
from mopsbot.evals.scoring import (
    argument_accuracy,
    citation_recall,
    fact_coverage,
    sql_value_coverage,
    tool_f1,
    violations,
)
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, PendingAction
from mopsbot.warehouse import connect_read_only

log = logging.getLogger(__name__)
AgentFactory = Callable[[Store], Agent]
CassetteFactory = Callable[[Case], AbstractContextManager[Any]]


def _executed_without_approval(store: Store) -> int:
    with store.session() as s:
        executed = s.scalar(select(func.count()).select_from(ActionExecution)) or 0
        decided = s.scalar(
            select(func.count())
            .select_from(PendingAction)
            .where(PendingAction.decided_by.is_(None), PendingAction.status != "pending")
        )
    return int(executed) + int(decided or 0)


def expected_values(checks: list[SqlCheck], warehouse: Path | None) -> list[tuple[float, str]]:
    """Run each check's SQL on the warehouse (read-only, no file access); every non-null value is expected."""
    if not checks:
        return []
    if warehouse is None:
        raise UserFacingError("this case checks figures against the warehouse; run `mopsbot demo seed` first")
    con = connect_read_only(warehouse)
    try:
        return [(float(row[0]), c.unit) for c in checks for row in con.execute(c.sql).fetchall() if row[0] is not None]
    finally:
        con.close()


def run_case(
    case: Case, make_agent: AgentFactory, workdir: Path, warehouse: Path | None = None
) -> list[dict[str, Any]]:
    """Score every turn of one case; an error in a turn is recorded, not raised."""
    store = Store.open(f"sqlite:///{workdir / (case.id + '.db')}")
    agent = make_agent(store)
    if case.context.today:
        agent.tool_deps["today"] = case.context.today
    caller = case.context.caller()
    thread = f"eval-{case.id}"
    rows = []
    try:
        for n, turn in enumerate(case.turns, 1):
            exp = turn.expect
            try:
                expected, check_error = expected_values(exp.sql_values, warehouse), None
            except (UserFacingError, duckdb.Error) as err:  # a broken check must show, not pass silently
                expected, check_error = [(float("nan"), "number")], f"sql_values check failed: {err}"
            start = time.perf_counter()
            try:
                record = agent.run_turn(turn.user, caller, thread)
                error = None
            except UserFacingError as err:
                record, error = None, str(err)
            except Exception as err:  # one broken case (or a replay mismatch) must not stop the suite
                ref = reference_id()
                log.exception("eval case %s turn %d failed (%s)", case.id, n, ref)
                record, error = None, f"{type(err).__name__} (reference {ref})"
            ms = (time.perf_counter() - start) * 1e3
            answer = record.answer if record else ""
            calls = [(c.name, c.arguments) for c in record.tool_calls] if record else []
            called = [name for name, _ in calls]
            cited = [c["doc_id"] for c in record.citations] if record else []
            pending = len(record.pending_actions) if record else 0
            row = {
                "case": case.id,
                "turn": n,
                "tags": case.tags,
                "user": turn.user,
                "answer": answer,
                "error": error or check_error,
                "tools": called,
                "arguments": [args for _, args in calls],
                "cited": cited,
                "pending_actions": pending,
                "tool_f1": tool_f1(exp.tools, called),
                "argument_accuracy": argument_accuracy(exp.args, calls),
                "citation_recall": citation_recall(exp.citations, cited),
                "must_include": fact_coverage(exp.must_include, answer),
                "sql_values": sql_value_coverage(expected, answer),
                "pending_ok": None if exp.pending_actions is None else pending == exp.pending_actions,
                "violations": violations(
                    called=called,
                    forbidden_tools=exp.forbidden_tools,
                    cited=cited,
                    forbidden_citations=exp.forbidden_citations,
                    answer=answer,
                    must_not_include=exp.must_not_include,
                    executed_without_approval=_executed_without_approval(store),
                ),
                "ms": round(ms, 1),
                "usage": record.usage if record else {},
            }
            rows.append(row)
    finally:
        store.close()
    return rows


def run_suite(
    cases: list[Case],
    make_agent: AgentFactory,
    cassette: CassetteFactory | None = None,
    warehouse: Path | None = None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mopsbot-eval-") as tmp:
        for case in cases:
            with cassette(case) if cassette else nullcontext():
                rows += run_case(case, make_agent, Path(tmp), warehouse)
    return rows
