"""The attacker's kit: people, proposals made through the agent's own tool path, and end-state probes of the store.

Everything here talks to the system only through the interface in docs/governance-contract.md (the Services
facade, the CLI, Slack) or, for the tampering attacks, through raw SQL on the state store as an insider would.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, Table, inspect, text
from sqlalchemy.engine import Connection, Engine

# --- people (tools/approvals.yaml) ------------------------------------------------------------------------------
DANA = "U07DW0001"  # mops-directors
PRIYA = "U07PR0002"  # mops-managers
MARCUS = "U07MO0003"  # mops-managers, revops-admins
LENA = "U07LV0004"  # no group
SAM = "U07SC0005"  # no group
RACHEL = "U07RK0009"  # marketing-vps
TOM = "U07TR0010"  # privacy
NINA = "U07NP0011"  # no group
NAMES = {DANA: "Dana", PRIYA: "Priya", MARCUS: "Marcus", LENA: "Lena", SAM: "Sam", RACHEL: "Rachel", TOM: "Tom"}

OPS = "C07MOPS001"
CAMPAIGN_NAME = "2027-Q1_WBN_AI-Ops_EMEA"
PLANS = {
    "implementation_plan": "Apply the change in the admin UI during the Tuesday change window; log the time.",
    "backout_plan": "Restore the previous setting from the exported snapshot taken before the change.",
    "test_plan": "Run the smoke list of ten test records through and compare with the expected outcome.",
}
NO_PLANS = {"implementation_plan": "", "backout_plan": "", "test_plan": ""}
# a low-risk change (one asset's copy): ops managers and the director may approve it
LOW = {
    "change_type": "standard",
    "title": "Copy fix on the AI Ops webinar page",
    "description": "Fix a typo in the headline of the AI Ops webinar landing page copy.",
    "affected_systems": ["Website"],
}
MQL = {
    "title": "Lower the MQL threshold",
    "description": "Lower the MQL threshold in Marketo from 65 to 60.",
    "affected_systems": ["Marketo"],
}


def campaign_args(**over: Any) -> dict[str, Any]:
    """A lint-clean EMEA webinar brief (the README's example) as draft_campaign_config arguments."""
    args: dict[str, Any] = {
        "program_type": "webinar",
        "topic": "AI Ops",
        "region": "EMEA",
        "start_date": "2027-01-20",
        "budget": 8000,
        "audience": "emea-prospects",
        "kpis": [{"metric": "mqls", "target": 150}],
        "extra": {"speakers": ["Dana Whitfield"], "registration_form": "rf-ai-ops"},
    }
    args.update(over)
    return {k: v for k, v in args.items() if v is not None}


def change_args(**over: Any) -> dict[str, Any]:
    """A plain change request (arguments of file_change_request) with all three plans filled."""
    args: dict[str, Any] = {
        "change_type": "normal",
        "title": "Rename the stage labels on the Looker funnel dashboard",
        "description": "Rename the stage labels on the Looker funnel dashboard to the new lifecycle names.",
        "affected_systems": ["Looker"],
        **PLANS,
    }
    args.update(over)
    return {k: v for k, v in args.items() if v is not None}


def new_thread() -> str:
    return f"rt-{uuid.uuid4().hex[:10]}"


# --- reading records whose exact shape the contract leaves open --------------------------------------------------


def dig(obj: Any, key: str, depth: int = 0) -> Any:
    """The first non-empty value named `key` anywhere inside a record (dicts, lists, dataclasses, pydantic models)."""
    if obj is None or depth > 8 or isinstance(obj, str | bytes | int | float | bool):
        return None
    if isinstance(obj, dict):
        if obj.get(key) not in (None, "", [], {}):
            return obj[key]
        items = list(obj.values())
    elif isinstance(obj, list | tuple | set):
        items = list(obj)
    else:
        value = getattr(obj, key, None)
        if value not in (None, "", [], {}) and not callable(value):
            return value
        if hasattr(obj, "model_dump"):
            items = [obj.model_dump()]
        elif hasattr(obj, "__dict__"):
            items = list(vars(obj).values())
        else:
            return None
    for item in items:
        found = dig(item, key, depth + 1)
        if found is not None:
            return found
    return None


def action_ids(rec: Any) -> list[str]:
    """Ids of the pending actions a turn record proposed."""
    out = []
    for action in getattr(rec, "pending_actions", None) or []:
        out.append(str(action["id"] if isinstance(action, dict) else action.id))
    return out


def only_action(rec: Any) -> str:
    ids = action_ids(rec)
    assert ids, f"precondition: the tool call proposed no pending action: {getattr(rec, 'answer', rec)!r}"[:1500]
    return ids[-1]


def loads(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_list(value: Any) -> list[str]:
    value = loads(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,\s|]+", value) if v.strip()]
    return [str(v) for v in value]


def replace_deep(obj: Any, old: Any, new: Any) -> Any:
    """`obj` with every string containing `old` (or every value equal to `old`) replaced."""
    if isinstance(obj, dict):
        return {k: replace_deep(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [replace_deep(v, old, new) for v in obj]
    if isinstance(obj, str) and isinstance(old, str) and isinstance(new, str):
        return obj.replace(old, new)
    numbers = isinstance(obj, int | float) and isinstance(old, int | float) and not isinstance(obj, bool)
    if (numbers or type(obj) is type(old)) and obj == old:
        return new
    return obj


_CANONICAL: list[Callable[[Any], str]] = [
    lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str),
    lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), default=str),
    lambda o: json.dumps(o, sort_keys=True, ensure_ascii=False, default=str),
    lambda o: json.dumps(o, sort_keys=True, default=str),
    lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=False, default=str),
    lambda o: json.dumps(o, default=str),
]


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def forge(original: Any, original_hash: str, forged: Any) -> tuple[str, Callable[[Any], str]]:
    """What an insider does: find how the payload hash is computed and compute it for the forged payload."""
    prefix, _, digest = original_hash.rpartition(":")
    for canon in _CANONICAL:
        if sha256(canon(original)) == digest:
            return (f"{prefix}:" if prefix else "") + sha256(canon(forged)), canon
    canon = _CANONICAL[0]
    return (f"{prefix}:" if prefix else "") + sha256(canon(forged)), canon


def shaped(old: Any, new: Any) -> Any:
    """`new` in the storage shape of `old` (a JSON text column, a comma list, a plain string or a native value)."""
    if isinstance(old, str) and not isinstance(new, str):
        try:
            parsed = json.loads(old)
        except ValueError:
            parsed = None
        if isinstance(parsed, list | dict):
            return json.dumps(new)
        if isinstance(new, list):
            return ",".join(new)
    if isinstance(old, list) and isinstance(new, str):
        return [new]
    return new


# --- raw SQL as an insider ----------------------------------------------------------------------------------------


def table(conn: Connection | Engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def rows(engine: Engine, name: str, **where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        t = table(conn, name)
        query = t.select()
        for col, value in where.items():
            query = query.where(t.c[col] == value)
        return [dict(r._mapping) for r in conn.execute(query)]


def primary_keys(engine: Engine, name: str) -> list[str]:
    with engine.connect() as conn:
        t = table(conn, name)
        (pk,) = list(t.primary_key.columns)[:1]
        return [str(v) for v in conn.execute(t.select().with_only_columns(pk)).scalars()]


def update_row(engine: Engine, name: str, key: Any, key_col: str = "id", **values: Any) -> int:
    with engine.begin() as conn:
        t = table(conn, name)
        return conn.execute(t.update().where(t.c[key_col] == key).values(**values)).rowcount


def tamper_all_rows(engine: Engine, name: str, old: Any, new: Any) -> int:
    """Replace `old` by `new` in every column of every row of `name`, keeping each column's storage shape."""
    changed = 0
    with engine.begin() as conn:
        t = table(conn, name)
        pk = list(t.primary_key.columns)
        for row in [dict(r._mapping) for r in conn.execute(t.select())]:
            values = {}
            for col, value in row.items():
                if any(col == p.name for p in pk) or value is None:
                    continue
                parsed = loads(value)
                mutated = replace_deep(parsed, old, new)
                if mutated == parsed:
                    continue
                stored_as_text = isinstance(value, str) and not isinstance(parsed, str)
                values[col] = json.dumps(mutated) if stored_as_text else mutated
            if values:
                query = t.update().values(**values)
                for p in pk:
                    query = query.where(p == row[p.name])
                changed += conn.execute(query).rowcount
    return changed


def pending_row(engine: Engine, action_id: str) -> dict[str, Any]:
    (row,) = rows(engine, "pending_actions", id=action_id)
    return row


def rewrite_payload(engine: Engine, action_id: str, mutate: Callable[[Any], Any], with_hash: bool = True) -> None:
    """As an insider: rewrite a pending action's stored payload and (by default) its hash, computed like the app."""
    row = pending_row(engine, action_id)
    stored, original = row["payload"], loads(row["payload"])
    forged = mutate(original)
    assert forged != original, "precondition: the mutation changed nothing"
    new_hash, canon = forge(original, row["payload_hash"], forged)
    values: dict[str, Any] = {"payload": canon(forged) if isinstance(stored, str) else forged}
    if with_hash:
        values["payload_hash"] = new_hash
    assert update_row(engine, "pending_actions", action_id, **values) == 1


def set_columns(engine: Engine, action_id: str, **values: Any) -> None:
    """As an insider: overwrite columns of a pending action, each in the storage shape it already has."""
    row = pending_row(engine, action_id)
    assert update_row(engine, "pending_actions", action_id, **{k: shaped(row[k], v) for k, v in values.items()}) == 1


@contextmanager
def audit_guards_removed(engine: Engine) -> Iterator[Connection]:
    """As the database owner: drop the triggers (and PostgreSQL rules) guarding audit_events, yield, restore them."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            restore = [sql for _, sql in triggers]
        else:
            triggers = conn.execute(
                text(
                    "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
                )
            ).all()
            rules = conn.execute(
                text(
                    "SELECT rulename, definition FROM pg_rules "
                    "WHERE tablename = 'audit_events' AND schemaname = current_schema()"
                )
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}" ON audit_events'))
            for name, _ in rules:
                conn.execute(text(f'DROP RULE "{name}" ON audit_events'))
            restore = [d for _, d in triggers] + [d for _, d in rules]
        yield conn
        for sql in restore:
            conn.execute(text(sql))


def trigger_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
            ).scalars()
        else:
            found = conn.execute(
                text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal")
            ).scalars()
        return list(found)


# --- the system under attack ---------------------------------------------------------------------------------------


@dataclass
class Rig:
    """One replica of the bot (the Services facade) on a state store, plus the insider's view of that store."""

    svc: Any
    url: str
    data_dir: Path
    workspace: Path
    engine: Engine
    cli_env: dict[str, str] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # acting through the agent ----------------------------------------------------------------------------------
    def caller(self, user: str, thread: str | None = None, channel: str = OPS, visibility: str = "ops") -> Any:
        from mopsbot.caller import CallerContext

        return CallerContext(user, channel, visibility, thread)

    def tool(self, name: str, args: dict[str, Any], user: str, thread: str | None = None) -> Any:
        thread = thread or new_thread()
        return self.svc.agent.run_tool(name, args, self.caller(user, thread), thread, note="")

    def turn(self, message: str, user: str, thread: str | None = None, channel: str = OPS,
             visibility: str = "ops") -> Any:  # fmt: skip
        thread = thread or new_thread()
        return self.svc.agent.run_turn(message, self.caller(user, thread, channel, visibility), thread_id=thread)

    def draft(self, user: str, thread: str | None = None, **over: Any) -> str:
        before = set(primary_keys(self.engine, "campaign_drafts"))
        rec = self.tool("draft_campaign_config", campaign_args(**over), user, thread)
        draft_id = dig(rec, "draft_id")
        if not draft_id:  # the turn record may carry only the tool's summary; the store knows the new draft
            created = set(primary_keys(self.engine, "campaign_drafts")) - before
            draft_id = created.pop() if len(created) == 1 else None
        assert draft_id, f"precondition: draft_campaign_config gave no draft_id: {getattr(rec, 'answer', rec)!r}"[:1500]
        return str(draft_id)

    def submit(self, draft_id: str, user: str, thread: str | None = None) -> str:
        return only_action(self.tool("submit_campaign_config", {"draft_id": draft_id}, user, thread))

    def propose_campaign(self, drafter: str = LENA, submitter: str | None = None, owner: str | None = None,
                         **over: Any) -> str:  # fmt: skip
        if owner:
            over["owner"] = owner
        return self.submit(self.draft(drafter, **over), submitter or drafter)

    def file_change(self, user: str = SAM, thread: str | None = None, **over: Any) -> str:
        return only_action(self.tool("file_change_request", change_args(**over), user, thread))

    def change_id(self, action_id: str) -> str:
        found = dig(self.get(action_id), "change_id") or dig(self.get(action_id)["payload"], "id")
        if isinstance(found, str) and found.startswith("CR-"):
            return found
        ids = sorted(primary_keys(self.engine, "change_requests"))
        assert ids, "precondition: no change request was stored"
        return ids[-1]

    # deciding ------------------------------------------------------------------------------------------------
    def get(self, action_id: str) -> dict[str, Any]:
        return self.svc.approvals.get(action_id)

    def decide(self, action_id: str, actor: str, decision: str = "approve", reason: str | None = None,
               via: str = "slack") -> Any:  # fmt: skip
        if decision == "reject" and reason is None:
            reason = "not this quarter"
        return self.svc.approvals.decide(action_id, actor, decision, reason=reason, via=via)

    def refuse(self, action_id: str, actor: str, decision: str = "approve", reason: str | None = None,
               via: str = "slack") -> str:  # fmt: skip
        """Asserts the decision is refused (DecisionRefused) and returns the refusal message."""
        from mopsbot.approvals import DecisionRefused

        with pytest.raises(DecisionRefused) as info:
            self.decide(action_id, actor, decision, reason, via)
        return str(info.value)

    # end state -------------------------------------------------------------------------------------------------
    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def status(self, action_id: str) -> str | None:
        return self.scalar("SELECT status FROM pending_actions WHERE id = :a", a=action_id)

    def executions(self, action_id: str | None = None) -> int:
        if action_id is None:
            return int(self.scalar("SELECT count(*) FROM action_executions"))
        return int(self.scalar("SELECT count(*) FROM action_executions WHERE action_id = :a", a=action_id))

    def assert_untouched(self, *action_ids: str) -> None:
        for action_id in action_ids:
            assert self.status(action_id) == "pending", (action_id, self.status(action_id))
            assert self.executions(action_id) == 0, action_id

    def audit(self, event: str | None = None, subject: str | None = None) -> list[dict[str, Any]]:
        out = []
        for row in sorted(rows(self.engine, "audit_events"), key=lambda r: r["id"]):
            row["data"] = loads(row.get("data")) or {}
            if (event is None or row["event"] == event) and (subject is None or str(row["subject_id"]) == subject):
                out.append(row)
        return out

    def versions(self, campaign: str = CAMPAIGN_NAME) -> list[dict[str, Any]]:
        return rows(self.engine, "campaign_versions", campaign=campaign)

    def campaign_dir(self, campaign: str = CAMPAIGN_NAME) -> Path:
        return self.data_dir / "campaigns" / campaign

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        from typer.testing import CliRunner

        from mopsbot.cli import app

        return CliRunner().invoke(app, list(args), input=stdin, env=self.cli_env)


def cli_refused(result: Any) -> bool:
    """Exit 1 with a refusal, not a crash that happens to exit 1."""
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return result.exit_code == 1 and not crashed and "refused" in result.output.lower()


def verify(rig: Rig) -> Any:
    return rig.cli("audit", "verify")


def assert_intact(rig: Rig) -> None:
    result = verify(rig)
    assert result.exit_code == 0 and "intact" in result.output.lower(), ("precondition", result.output)


def yaml_files(rig: Rig, campaign: str = CAMPAIGN_NAME) -> dict[str, str]:
    folder = rig.campaign_dir(campaign)
    return {p.name: p.read_text() for p in sorted(folder.glob("*.yaml"))} if folder.exists() else {}


def yaml_value(textual: str, key: str) -> Any:
    return dig(yaml.safe_load(textual), key)


# --- a local ticketing webhook --------------------------------------------------------------------------------------

TICKET_QUERY_SECRET = "s3cr3t"
TICKET_TOKEN = "tkn-9f8e7d6c5b4a3210"


@dataclass
class Hook:
    url: str
    base: str
    requests: list[dict[str, Any]]

    def leaks(self) -> list[str]:
        """Strings that must never appear outside the HTTP request to the webhook."""
        return [TICKET_QUERY_SECRET, TICKET_TOKEN, self.base, "/hooks/tickets"]


@contextmanager
def ticketing_hook(status: int = 500, echo: bool = False, listening: bool = True) -> Iterator[Hook]:
    """A webhook on 127.0.0.1 answering `status`; `echo` reflects the request line and headers in the body, as some
    gateways do; `listening=False` gives a port that refuses connections."""
    requests: list[dict[str, Any]] = []
    if not listening:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        yield Hook(f"{base}/hooks/tickets?token={TICKET_QUERY_SECRET}", base, requests)
        return

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
            requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            answer = f"error handling POST {self.path} auth={self.headers.get('Authorization')}" if echo else "boom"
            data = answer.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield Hook(f"{base}/hooks/tickets?token={TICKET_QUERY_SECRET}", base, requests)
    finally:
        server.shutdown()
        server.server_close()


def dump_tables(engine: Engine, names: tuple[str, ...]) -> str:
    present = set(inspect(engine).get_table_names())
    return "\n".join(repr(rows(engine, n)) for n in names if n in present)
