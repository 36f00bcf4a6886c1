"""Class 5 - the audit log must be append-only and complete: direct edits are refused by the database, edits made
by the owner around the triggers are caught by `mopsbot audit verify`, refusals and tool calls are recorded, and a
PostgreSQL runtime role cannot rewrite history."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import JSON, create_engine, text

from tests.redteam.kit import (
    DANA,
    LENA,
    NINA,
    NO_PLANS,
    PRIYA,
    SAM,
    Rig,
    assert_intact,
    audit_guards_removed,
    campaign_args,
    rows,
    sha256,
    table,
    trigger_names,
    verify,
)


def _activity(rig: Rig) -> str:
    """A proposal, a refused probe and an approval: a log of several rows, verified intact."""
    aid = rig.propose_campaign(drafter=LENA)
    rig.refuse(aid, SAM)
    assert rig.decide(aid, PRIYA).status == "executed"
    assert len(rig.audit()) >= 5
    assert_intact(rig)
    return aid


def _snapshot(rig: Rig) -> str:
    return json.dumps(sorted(rows(rig.engine, "audit_events"), key=lambda r: r["id"]), default=str, sort_keys=True)


def _attempt(rig: Rig, sql: str, **params: Any) -> bool:
    """Run `sql` as the app's own database user; True if the database refused it."""
    try:
        with rig.engine.begin() as conn:
            conn.execute(text(sql), params)
    except sqlalchemy.exc.DBAPIError:
        return True
    return False


def _columns(rig: Rig) -> list[str]:
    return [c.name for c in table(rig.engine, "audit_events").columns]


DIRECT = {
    "update-one-row": "UPDATE audit_events SET actor = 'U07SC0005' WHERE id = :mid",
    "update-hash-column": "UPDATE audit_events SET prev_hash = row_hash WHERE id = :mid",
    "delete-one-row": "DELETE FROM audit_events WHERE id = :mid",
    "delete-everything": "DELETE FROM audit_events",
}


@pytest.mark.parametrize("sql", DIRECT.values(), ids=DIRECT.keys())
def test_direct_update_and_delete_are_refused(db_rig: Rig, sql: str) -> None:
    """Class 5: UPDATE / DELETE audit_events as the app's database user."""
    _activity(db_rig)
    before = _snapshot(db_rig)
    mid = db_rig.audit()[len(db_rig.audit()) // 2]["id"]
    assert _attempt(db_rig, sql, mid=mid) if ":mid" in sql else _attempt(db_rig, sql)
    assert _snapshot(db_rig) == before
    assert_intact(db_rig)


def test_truncate_is_refused(db_rig: Rig) -> None:
    """Class 5: TRUNCATE audit_events (PostgreSQL) / unqualified DELETE (SQLite's truncate optimisation)."""
    _activity(db_rig)
    before = _snapshot(db_rig)
    sql = "TRUNCATE audit_events" if db_rig.dialect == "postgresql" else "DELETE FROM audit_events WHERE 1"
    assert _attempt(db_rig, sql)
    assert _snapshot(db_rig) == before


def test_upsert_over_an_existing_row_is_refused(db_rig: Rig) -> None:
    """Class 5: INSERT ... ON CONFLICT (id) DO UPDATE rewrites an existing audit row."""
    _activity(db_rig)
    before = _snapshot(db_rig)
    cols = ", ".join(_columns(db_rig))
    mid = db_rig.audit()[2]["id"]
    _attempt(db_rig, f"INSERT INTO audit_events ({cols}) SELECT {cols} FROM audit_events WHERE id = :mid "
                     "ON CONFLICT (id) DO UPDATE SET actor = 'attacker'", mid=mid)  # fmt: skip
    assert _snapshot(db_rig) == before


@pytest.mark.parametrize("verb", ["INSERT OR REPLACE", "REPLACE"])
def test_sqlite_insert_or_replace_over_a_row_is_refused(rig: Rig, verb: str) -> None:
    """Class 5: SQLite INSERT OR REPLACE / REPLACE deletes-and-reinserts a row without firing DELETE triggers."""
    _activity(rig)
    before = _snapshot(rig)
    cols = _columns(rig)
    select = ", ".join("'U07SC0005'" if c == "actor" else c for c in cols)
    mid = rig.audit()[2]["id"]
    _attempt(rig, f"{verb} INTO audit_events ({', '.join(cols)}) SELECT {select} FROM audit_events WHERE id = :mid",
             mid=mid)  # fmt: skip
    assert _snapshot(rig) == before
    assert_intact(rig)


def _gone(rig: Rig, ids: list[int]) -> bool:
    left = {r["id"] for r in rig.audit()}
    return not (set(ids) & left)


def test_owner_deletes_a_middle_row_around_the_triggers(db_rig: Rig) -> None:
    """Class 5: drop the triggers, delete one row in the middle, recreate the triggers; verify must name the row."""
    _activity(db_rig)
    ids = [r["id"] for r in db_rig.audit()]
    k, nxt = ids[len(ids) // 2], ids[len(ids) // 2 + 1]
    with audit_guards_removed(db_rig.engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :k"), {"k": k})
    if not _gone(db_rig, [k]):
        return  # even the owner could not delete: the attack failed
    result = verify(db_rig)
    assert result.exit_code == 1 and re.search(rf"row {k}\b|row {nxt}\b", result.output), result.output


def test_owner_deletes_the_newest_rows(db_rig: Rig) -> None:
    """Class 5: drop the triggers, cut the newest rows off the tail (the approval and execution), restore triggers."""
    _activity(db_rig)
    ids = [r["id"] for r in db_rig.audit()]
    with audit_guards_removed(db_rig.engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id >= :k"), {"k": ids[-2]})
    if not _gone(db_rig, ids[-2:]):
        return
    assert verify(db_rig).exit_code == 1


def test_owner_edits_who_approved(db_rig: Rig) -> None:
    """Class 5: drop the triggers, rewrite the actor and data of the approval row to blame someone else."""
    aid = _activity(db_rig)
    target = next(r for r in db_rig.audit(subject=aid) if r["actor"] == PRIYA and r["event"] != "decision.refused")
    with audit_guards_removed(db_rig.engine) as conn:
        conn.execute(text("UPDATE audit_events SET actor = :a WHERE id = :k"), {"a": DANA, "k": target["id"]})
    ids = [r["id"] for r in db_rig.audit()]
    nxt = ids[ids.index(target["id"]) + 1] if target["id"] != ids[-1] else target["id"]
    result = verify(db_rig)
    assert result.exit_code == 1 and re.search(rf"row ({target['id']}|{nxt})\b", result.output), result.output


def test_owner_truncates_the_log(db_rig: Rig) -> None:
    """Class 5: drop the triggers, empty audit_events, restore the triggers."""
    _activity(db_rig)
    with audit_guards_removed(db_rig.engine) as conn:
        conn.execute(text("DELETE FROM audit_events"))
    if db_rig.audit():
        return
    assert verify(db_rig).exit_code == 1


def test_owner_drops_the_triggers(db_rig: Rig) -> None:
    """Class 5: drop the audit triggers and leave them dropped; verify must name the missing trigger."""
    _activity(db_rig)
    assert trigger_names(db_rig.engine), "precondition: audit_events has triggers"
    with db_rig.engine.begin() as conn:
        for name in trigger_names(db_rig.engine):
            drop = f'DROP TRIGGER "{name}"' + (" ON audit_events" if db_rig.dialect == "postgresql" else "")
            conn.execute(text(drop))
    result = verify(db_rig)
    assert result.exit_code == 1 and "trigger" in result.output.lower(), result.output


def test_owner_deletes_a_row_and_renumbers_the_rest(db_rig: Rig) -> None:
    """Class 5: delete a row, then shift the later ids down so no id is missing."""
    _activity(db_rig)
    ids = [r["id"] for r in db_rig.audit()]
    k = ids[len(ids) // 2]
    with audit_guards_removed(db_rig.engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :k"), {"k": k})
        conn.execute(text("UPDATE audit_events SET id = -(id - 1) WHERE id > :k"), {"k": k})
        conn.execute(text("UPDATE audit_events SET id = -id WHERE id < 0"))
    assert [r["id"] for r in db_rig.audit()] == ids[:-1]
    assert verify(db_rig).exit_code == 1


# --- what must be recorded ----------------------------------------------------------------------------------------


def _plain_change(rig: Rig, **over: Any) -> str:
    return rig.file_change(SAM, **over)


REFUSALS: dict[str, Callable[[Rig], tuple[str, str, str, str | None]]] = {
    "requester": lambda r: (r.propose_campaign(drafter=PRIYA, submitter=SAM), PRIYA, "approve", None),
    "outsider": lambda r: (_plain_change(r), NINA, "approve", None),
    "missing-plans": lambda r: (_plain_change(r, **NO_PLANS), DANA, "approve", None),
    "reject-without-reason": lambda r: (_plain_change(r), DANA, "reject", "   "),
    "consent-by-director": lambda r: (_plain_change(
        r, description="Stop honouring the global unsubscribe list for webinar reminders.",
        affected_systems=["Marketo"]), DANA, "approve", None),
}  # fmt: skip


@pytest.mark.parametrize("make", REFUSALS.values(), ids=REFUSALS.keys())
def test_every_refused_decision_is_audited(rig: Rig, make: Callable[[Rig], tuple]) -> None:
    """Class 5: an attacker's probing decision is refused but leaves no trace in the audit log."""
    aid, actor, decision, reason = make(rig)
    rig.refuse(aid, actor, decision, reason=reason, via="terminal")
    (row,) = [r for r in rig.audit("decision.refused", aid) if r["actor"] == actor]
    assert row["data"].get("via") == "terminal" and row["data"].get("reason"), row
    rig.assert_untouched(aid)


def test_a_decision_on_an_executed_action_is_audited_as_refused(db_rig: Rig) -> None:
    """Class 5: a late second approval of an executed action is refused without an audit row."""
    aid = db_rig.propose_campaign(drafter=LENA)
    db_rig.decide(aid, PRIYA)
    db_rig.refuse(aid, DANA)
    assert [r["actor"] for r in db_rig.audit("decision.refused", aid)] == [DANA]
    assert db_rig.executions(aid) == 1


@pytest.mark.parametrize(
    ("args", "ok"),
    [(campaign_args(), True), (campaign_args(region="MARS", program_type="carrier_pigeon"), False)],
    ids=["ok", "failing"],
)
def test_tool_calls_are_audited_ok_or_not(rig: Rig, args: dict, ok: bool) -> None:
    """Class 5: a tool call (succeeding or failing) that leaves no tool.call audit row."""
    try:
        rig.tool("draft_campaign_config", args, LENA)
    except Exception:
        assert not ok
    calls = [r for r in rig.audit("tool.call") if r["data"].get("tool") == "draft_campaign_config"]
    assert len(calls) == 1, calls
    data = calls[0]["data"]
    assert data["ok"] is ok and re.fullmatch(r"[0-9a-f]{64}", str(data["args_sha256"])) and data.get("turn_id")
    assert calls[0]["actor"] == LENA


def test_a_conversational_turn_audits_its_tool_calls(rig: Rig) -> None:
    """Class 5: tool calls the planner makes in a natural-language turn are not audited."""
    rec = rig.turn("what's our SOP for a webinar?", SAM)
    names = [dig_name(c) for c in rec.tool_calls]
    assert names, "precondition: the turn called a tool"
    audited = [r["data"].get("tool") for r in rig.audit("tool.call")]
    assert sorted(audited) == sorted(names)


def dig_name(call: Any) -> str:
    return call["name"] if isinstance(call, dict) else call.name


def test_the_proposal_approval_and_execution_are_all_recorded(db_rig: Rig) -> None:
    """Class 5: an approved action whose proposal envelope, approval (with via) or execution is missing from the log."""
    rig = db_rig
    aid = rig.propose_campaign(drafter=LENA)
    (proposed,) = rig.audit("action.proposed", aid)
    assert proposed["data"].get("envelope") and re.fullmatch(
        r"(sha256:)?[0-9a-f]{64}", str(proposed["data"].get("envelope_hash"))
    )
    rig.decide(aid, PRIYA, via="slack")
    assert any(r["actor"] == PRIYA and r["data"].get("via") == "slack" for r in rig.audit(subject=aid))
    assert len(rig.audit("action.executed", aid)) == 1


# --- PostgreSQL runtime role ---------------------------------------------------------------------------------------


def _trigger_function(engine: Any) -> str:
    with engine.connect() as conn:
        fn = conn.execute(text(
            "SELECT p.oid::regprocedure::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = 'audit_events'::regclass AND NOT t.tgisinternal LIMIT 1")).scalar()  # fmt: skip
    assert fn, "precondition: audit_events has a trigger function"
    return fn.split("(")[0]


RUNTIME_ATTACKS = {
    "truncate": "TRUNCATE audit_events",
    "delete": "DELETE FROM audit_events",
    "update": "UPDATE audit_events SET actor = 'attacker'",
    "drop-trigger": "DROP TRIGGER {trigger} ON audit_events",
    "disable-triggers": "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "drop-table": "DROP TABLE audit_events CASCADE",
    "rename-table": "ALTER TABLE audit_events RENAME TO audit_events_old",
    "replace-trigger-function": (
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
    ),
}


@pytest.mark.parametrize("sql", RUNTIME_ATTACKS.values(), ids=RUNTIME_ATTACKS.keys())
def test_postgres_runtime_role_cannot_rewrite_the_log(make_rig: Callable[..., Rig], postgres_url: str,
                                                      runtime_role: tuple[str, str], sql: str) -> None:  # fmt: skip
    """Class 5: connected as the role from `mopsbot db grant-runtime ROLE`, rewrite or disarm audit_events."""
    role, role_url = runtime_role
    rig = make_rig(postgres_url)
    _activity(rig)
    granted = rig.cli("db", "grant-runtime", role)
    assert granted.exit_code == 0, granted.output
    before = _snapshot(rig)
    statement = sql.format(trigger=f'"{trigger_names(rig.engine)[0]}"', function=_trigger_function(rig.engine))
    runtime = create_engine(role_url)
    try:
        with runtime.connect() as conn:  # the grant works: the runtime role reads the log
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == len(rig.audit())
        with pytest.raises(sqlalchemy.exc.DBAPIError), runtime.begin() as conn:
            conn.execute(text(statement))
    finally:
        runtime.dispose()
    assert _snapshot(rig) == before
    assert_intact(rig)


def test_postgres_runtime_role_forged_row_is_detected(make_rig: Callable[..., Rig], postgres_url: str,
                                                      runtime_role: tuple[str, str]) -> None:  # fmt: skip
    """Class 5: the runtime role may INSERT; it appends a forged "approved by Dana" row chained to the last hash."""
    role, role_url = runtime_role
    rig = make_rig(postgres_url)
    aid = _activity(rig)
    assert rig.cli("db", "grant-runtime", role).exit_code == 0
    last = rig.audit()[-1]
    runtime = create_engine(role_url)
    try:
        with runtime.begin() as conn:
            t = table(conn, "audit_events")
            data = {"via": "slack", "decision": "approve"}
            values = {
                "at": datetime.now(UTC), "actor": DANA, "event": "action.approved", "subject_type": "pending_action",
                "subject_id": aid, "data": data if isinstance(t.c.data.type, JSON) else json.dumps(data),
                "prev_hash": last["row_hash"], "row_hash": sha256(f"{last['row_hash']}forged"),
            }  # fmt: skip
            conn.execute(t.insert().values(**{k: v for k, v in values.items() if k in t.c}))
    except sqlalchemy.exc.DBAPIError:
        return  # could not even append: attack failed
    finally:
        runtime.dispose()
    assert verify(rig).exit_code == 1
