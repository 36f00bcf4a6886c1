"""`mopsbot audit verify|tail|show`: the hash-chained audit log, for operators."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from mopsbot.cli.common import console, fail, load

audit_app = typer.Typer(help="Verify and read the tamper-evident audit log.", no_args_is_help=True)
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store():  # type: ignore[no-untyped-def]
    from mopsbot.store.db import Store, StoreUnavailable

    try:
        return Store.open(load().resolved_database_url)
    except StoreUnavailable as err:
        fail(str(err))


def _row(e: Any) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "actor": e.actor, "event": e.event, "subject_type": e.subject_type,
            "subject_id": e.subject_id, "data": e.data, "prev_hash": e.prev_hash, "row_hash": e.row_hash}  # fmt: skip


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the chain; exit 1 naming the first broken or missing row, or a missing trigger."""
    from mopsbot.audit.verify import verify

    verdict = verify(_store())
    if not verdict.ok:
        fail(verdict.message)
    console.print(verdict.message, markup=False)


@audit_app.command("tail")
def audit_tail(
    n: Annotated[int, typer.Option("-n", help="How many of the newest rows.")] = 20, json_out: JsonOut = False
) -> None:
    """The newest audit rows, oldest first."""
    from sqlalchemy import select

    from mopsbot.store.models import AuditEvent

    with _store().session() as s:
        rows = [_row(e) for e in reversed(list(s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(n))))]
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    for r in rows:
        subject = f"{r['subject_type']}:{r['subject_id']}" if r["subject_id"] else "-"
        console.print(f"{r['id']:>6}  {r['at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<12} {r['event']:<28} {subject}",
                      markup=False, highlight=False)  # fmt: skip


@audit_app.command("show")
def audit_show(row_id: Annotated[int, typer.Argument(help="Audit row id.")], json_out: JsonOut = False) -> None:
    """One audit row with its data and hashes."""
    from mopsbot.store.models import AuditEvent

    with _store().session() as s:
        event = s.get(AuditEvent, row_id)
        if event is None:
            fail(f"no audit row {row_id}")
        row = _row(event)
    text = json.dumps(row, indent=2, default=str)
    if json_out:
        sys.stdout.write(text + "\n")
    else:
        console.print(text, markup=False, highlight=False)
