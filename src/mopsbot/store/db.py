"""Engine, sessions and migrations of the bot state store (SQLite by default, PostgreSQL by configuration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreUnavailable(RuntimeError):
    """The state store cannot be reached; the message shows the URL without its password."""


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own deferred BEGIN is turned off: every transaction begins IMMEDIATE (below), so a transaction that
    # reads the audit chain's head and then appends to it cannot interleave with another writer
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, timeout_s: float | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get their folder created, foreign keys, WAL and a busy timeout.

    `timeout_s` bounds a PostgreSQL connect and waiting for a pooled connection; a statement may take twice it
    (lock waits included), so a stopped or overloaded database fails a request instead of holding its worker.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if timeout_s is not None and parsed.get_backend_name() == "postgresql":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("connect_timeout", max(1, round(timeout_s)))
        # libpq takes one `options` string: keep the URL's (e.g. a search_path) and add the statement timeout
        options = " ".join(filter(None, [str(parsed.query.get("options") or ""), connect_args.get("options")]))
        connect_args["options"] = f"{options} -c statement_timeout={int(timeout_s * 2000)}".strip()
        kwargs["connect_args"] = connect_args
        kwargs.setdefault("pool_timeout", timeout_s)
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Raises StoreUnavailable if the database cannot be reached."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as err:
        raise StoreUnavailable(f"cannot reach the state store at {safe_url(str(engine.url))}: {err.orig}") from err


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


# Tables the runtime role may only read and append to (or, for the head, move forward through its trigger).
APPEND_ONLY = ("audit_events",)
FORWARD_ONLY = ("audit_head",)
READ_ONLY = ("alembic_version",)


def grant_runtime_role(engine: Engine, role: str) -> list[str]:
    """PostgreSQL: grant `role` what the running bot needs and no more. Run as the owner (who runs migrations).

    The role can SELECT/INSERT/UPDATE/DELETE the working tables, only SELECT/INSERT the audit log, only
    SELECT/UPDATE the chain head (whose trigger lets it move forward only), and owns nothing, so it can neither
    TRUNCATE nor drop or disable a trigger. Returns the statements run.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError("runtime roles are a PostgreSQL feature; on SQLite the audit chain makes tampering visible")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", role):
        raise ValueError(f"not a plain role name: {role!r}")
    with engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        tables = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
            )
        ]
        statements = [f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"']
        for table in tables:
            statements.append(f'REVOKE ALL ON "{schema}"."{table}" FROM "{role}"')
            if table in APPEND_ONLY:
                privileges = "SELECT, INSERT"
            elif table in FORWARD_ONLY:
                privileges = "SELECT, UPDATE"
            elif table in READ_ONLY:
                privileges = "SELECT"
            else:
                privileges = "SELECT, INSERT, UPDATE, DELETE"
            statements.append(f'GRANT {privileges} ON "{schema}"."{table}" TO "{role}"')
        statements.append(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')
        for statement in statements:
            conn.exec_driver_sql(statement)
    return statements


class Store:
    """The bot's state store: an engine plus a session factory. `open()` migrates to head first."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, migrate: bool = True, timeout_s: float | None = None) -> Store:
        engine = make_engine(url, timeout_s=timeout_s)
        if migrate:
            upgrade(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
