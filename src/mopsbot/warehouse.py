"""The metrics warehouse, never held between questions: each question attaches the file read-only, then detaches.

A held duckdb handle keeps the file's shared lock (no writer can open it) and keeps reading the old inode after
`mopsbot demo seed` renames a new file over it. Measured (benchmarks/bench_warehouse.py, demo warehouse, 2 cores
at load 2, p50 per question): held connection 5.6 ms, a new read-only connection per question 58.8 ms (10.6x: a
duckdb instance start-up each time), ATTACH/DETACH on a held in-memory database 13.6 ms (2.4x; the cycle costs
2-3 ms, the rest is re-reading blocks a held handle caches). A snapshot copy would have to copy a file a writer
may be changing, and doubles the disk. So: attach per question, to an in-memory database whose only reachable
files are the warehouse and its WAL, settings locked, reads limited to one SELECT, each bounded by a timer that
calls `interrupt()`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb

from mopsbot.errors import UserFacingError

CONFIG = {"enable_external_access": False, "autoload_known_extensions": False, "lock_configuration": True}
DEFAULT_TIMEOUT_S = 30.0
LOCK_WAIT_S = 2.0  # how long a question waits for a writer that holds the file's lock
PING_TIMEOUT_S = 2.0

Generation = tuple[int, int, int, int, int]
T = TypeVar("T")


class WarehouseUnavailable(UserFacingError):
    """The warehouse file is missing, unreadable, or locked by a writer for longer than a question can wait."""


class WarehouseBusy(WarehouseUnavailable):
    """Another process (an ETL job, `mopsbot demo seed`) holds the warehouse's write lock."""


class WarehouseTimeout(UserFacingError):
    """A warehouse statement ran longer than the timeout and was interrupted."""


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def unreadable(path: Path | None, why: str = "corrupt or not a duckdb file") -> WarehouseUnavailable:
    where = f" at {path}" if path else ""
    return WarehouseUnavailable(
        f"the metrics warehouse{where} cannot be read ({why}); "
        "metric and prediction questions are unavailable until it is restored"
    )


def missing(path: Path) -> WarehouseUnavailable:
    return WarehouseUnavailable(
        f"no warehouse at {path}; run `mopsbot demo seed` (or set MOPSBOT_WAREHOUSE_PATH). "
        "Metric and prediction questions are unavailable until there is one"
    )


def _opening(path: Path, lock_wait_s: float, open_: Callable[[], T]) -> T:
    """`open_()`, retried while a writer holds the file's lock (up to `lock_wait_s`), its errors made clear."""
    deadline, pause = time.monotonic() + lock_wait_s, 0.02
    while True:
        if not path.exists():
            raise missing(path)
        try:
            return open_()
        except duckdb.Error as err:
            text = str(err)
            if "Could not set lock" in text:
                if time.monotonic() + pause > deadline:
                    raise WarehouseBusy(
                        f"the metrics warehouse at {path} is being written by another process (it holds the "
                        f"file's lock); waited {lock_wait_s:g} s. Try again in a minute"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
                continue
            if "does not exist" in text:
                raise missing(path) from None
            if "not a valid DuckDB database file" in text:
                empty = path.is_file() and path.stat().st_size == 0
                raise unreadable(path, "empty file" if empty else "corrupt or not a duckdb file") from None
            if "Permission denied" in text:
                raise unreadable(path, "permission denied") from None
            if isinstance(err, duckdb.IOException) or "Corrupt database" in text:
                raise unreadable(path) from err
            raise unreadable(path, _first_line(err)) from None


def connect_read_only(path: Path, lock_wait_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A duckdb connection that cannot write, read files, attach databases or change its own settings; the caller
    closes it. Waits up to `lock_wait_s` for a writer's lock. Raises WarehouseUnavailable (or WarehouseBusy)."""
    return _opening(path, lock_wait_s, lambda: duckdb.connect(str(path), read_only=True, config=CONFIG))


def generation(path: Path) -> Generation | None:
    """The identity of the file's current contents (inode, size, mtime; and the WAL's size), or None if absent."""
    try:
        st = path.stat()
    except OSError:
        return None
    try:
        wal = path.with_name(path.name + ".wal").stat()
        wal_size, wal_mtime = wal.st_size, wal.st_mtime_ns
    except OSError:
        wal_size = wal_mtime = -1
    return (st.st_ino, st.st_size, st.st_mtime_ns, wal_size, wal_mtime)


Fetch = Literal["all", "one", "numpy"]


class Session:
    """One connection for one question. Each read is one SELECT, bounded by `timeout_s` (interrupted when it runs
    longer); storage errors become WarehouseUnavailable. Other duckdb errors propagate."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        timeout_s: float | None,
        path: Path | None = None,
        generation: Generation | None = None,
    ) -> None:
        self.con = con
        self.timeout_s = timeout_s
        self.path = path
        self.generation = generation  # of the file as it was just before this question opened it

    def read(self, sql: str, params: Any = None, fetch: Fetch = "all") -> Any:
        """Run one SELECT and fetch its result. Raises WarehouseTimeout, WarehouseUnavailable, duckdb.Error."""
        statements = self.con.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ValueError("a warehouse read is exactly one SELECT statement")
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            self.con.interrupt()

        timer = threading.Timer(self.timeout_s, stop) if self.timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            self.con.execute(sql, params)
            if fetch == "one":
                return self.con.fetchone()
            if fetch == "numpy":
                return self.con.fetchnumpy()
            return self.con.fetchall()
        except duckdb.InterruptException:
            if fired.is_set():
                raise WarehouseTimeout(
                    f"the metrics warehouse did not answer within {self.timeout_s:g} s; "
                    "try a narrower question (a shorter period or fewer breakdowns)"
                ) from None
            raise
        except duckdb.Error as err:
            if isinstance(err, (duckdb.IOException, duckdb.FatalException)) or "Corrupt database" in str(err):
                raise unreadable(self.path) from err
            raise
        finally:
            if timer:
                timer.cancel()


@contextmanager
def session(connect: Callable[[], duckdb.DuckDBPyConnection], timeout_s: float | None = None) -> Iterator[Session]:
    """A Session on a new connection from `connect` (any function returning one), closed on exit."""
    con = connect()
    try:
        yield Session(con, timeout_s)
    finally:
        con.close()


class Warehouse:
    """The warehouse file and how questions read it: attached read-only per question (writers wait at most one
    question; a replaced file is read by the next one), each read bounded by `timeout_s`, a writer's lock
    awaited up to `lock_wait_s`. Calling it gives a standalone read-only connection for hand-written SQL."""

    def __init__(self, path: Path, timeout_s: float = DEFAULT_TIMEOUT_S, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.lock_wait_s = min(lock_wait_s, timeout_s)
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None  # in memory: holds no file
        self._ids = itertools.count(1)

    def __call__(self) -> duckdb.DuckDBPyConnection:
        """A new standalone read-only connection (no timeout); close it when done. Raises WarehouseUnavailable."""
        return connect_read_only(self.path, self.lock_wait_s)

    connect = __call__

    def _memory_db(self) -> duckdb.DuckDBPyConnection:
        """The in-memory database questions attach the file to: only the warehouse file (and its WAL) is
        reachable, and its settings are locked."""
        with self._lock:
            if self._db is None:
                db = duckdb.connect(":memory:", config={"autoload_known_extensions": False})
                files = ", ".join(_literal(f) for f in (self.path.absolute(), Path(f"{self.path.absolute()}.wal")))
                db.execute(f"SET allowed_paths = [{files}]")
                db.execute("SET enable_external_access = false")
                db.execute("SET lock_configuration = true")
                self._db = db
            return self._db

    @contextmanager
    def session(self, timeout_s: float | None = None, lock_wait_s: float | None = None) -> Iterator[Session]:
        """A Session for one question: the file attached read-only under a fresh name, detached on exit.
        Raises WarehouseUnavailable (missing, unreadable) or WarehouseBusy (a writer holds the lock)."""
        gen = generation(self.path)  # before attaching: a file replaced later is read by the next question
        if gen is None:
            raise missing(self.path)
        con = self._memory_db().cursor()
        alias = f"warehouse_{next(self._ids)}"
        attach = f"ATTACH {_literal(self.path.absolute())} AS {alias} (READ_ONLY)"
        try:
            _opening(self.path, self.lock_wait_s if lock_wait_s is None else lock_wait_s, lambda: con.execute(attach))
            con.execute(f"USE {alias}")
        except BaseException:
            con.close()
            raise
        try:
            yield Session(con, timeout_s or self.timeout_s, self.path, gen)
        finally:
            self._detach(con, alias)

    def _detach(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        try:
            con.execute("USE memory")
            con.execute(f"DETACH {alias}")
        except duckdb.Error:
            self.close()  # dropping the whole in-memory database is the sure way to let go of the file
        finally:
            con.close()

    def close(self) -> None:
        """Drop the in-memory database (the next question makes a new one)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def ping(self, tables: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """Readiness: opens, runs `select 1` and reads the latest date of each (table, time column), the first
        being the main table, each read within a short timeout. Returns {"ok": bool, "detail": str}; never raises."""
        limit = min(PING_TIMEOUT_S, self.timeout_s)
        try:
            with self.session(limit, min(0.5, limit)) as s:
                s.read("SELECT 1", fetch="one")
                latest = [s.read(f"SELECT max({c})::DATE FROM {t}", fetch="one")[0] for t, c in tables or []]  # noqa: S608
            detail = f"warehouse {self.path} answers"
            if tables:
                detail += f"; {tables[0][0]} has data through {latest[0].isoformat() if latest[0] else 'nothing'}"
            return {"ok": True, "detail": detail}
        except UserFacingError as err:
            return {"ok": False, "detail": str(err)}
        except Exception as err:  # a probe reports, it never raises
            return {"ok": False, "detail": f"warehouse {self.path}: {type(err).__name__}: {_first_line(err)}"}


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
