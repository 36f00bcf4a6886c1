"""The metrics warehouse, read without ever holding it: one read-only duckdb connection per question, then closed.

A held handle keeps duckdb's shared file lock (so no writer can open the file) and keeps reading the replaced
inode after `mopsbot demo seed`. Measured on the demo warehouse (benchmarks/bench_warehouse.py, 2 cores): a
metric question costs p50 6.0 ms on a held connection and 25.5 ms opened per question (+~20 ms, one duckdb
instance start-up), small next to a chat turn. A snapshot copy needs a consistent copy of a file a writer may be
changing and doubles the disk use; ATTACH on a held in-memory instance (~2 ms) would need ATTACH allowed on the
query connection. So: open per question, every statement bounded by a timer that calls `interrupt()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb

from mopsbot.errors import UserFacingError

CONFIG = {"enable_external_access": False, "autoload_known_extensions": False, "lock_configuration": True}
DEFAULT_TIMEOUT_S = 30.0
LOCK_WAIT_S = 2.0  # how long a question waits for a writer that holds the file's lock
PING_TIMEOUT_S = 2.0

Generation = tuple[int, int, int, int, int]


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


def connect_read_only(path: Path, lock_wait_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A duckdb connection that cannot write, read files, attach databases or change its own settings; the caller
    closes it. Waits up to `lock_wait_s` for a writer's lock. Raises WarehouseUnavailable (or WarehouseBusy)."""
    deadline, pause = time.monotonic() + lock_wait_s, 0.02
    while True:
        if not path.exists():
            raise missing(path)
        try:
            return duckdb.connect(str(path), read_only=True, config=CONFIG)
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
            if "database does not exist" in text:
                raise missing(path) from None
            if "not a valid DuckDB database file" in text:
                empty = path.is_file() and path.stat().st_size == 0
                raise unreadable(path, "empty file" if empty else "corrupt or not a duckdb file") from None
            raise unreadable(path, _first_line(err)) from None


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
    """One read-only connection for one question: each statement bounded by `timeout_s` (interrupted when it
    runs longer), storage errors turned into WarehouseUnavailable. Other duckdb errors propagate."""

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
        self.generation = generation  # of the file as it was just before this connection opened

    def read(self, sql: str, params: Any = None, fetch: Fetch = "all") -> Any:
        """Run one statement and fetch its result. Raises WarehouseTimeout, WarehouseUnavailable, duckdb.Error."""
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
        except (duckdb.IOException, duckdb.FatalException) as err:
            raise unreadable(self.path, _first_line(err)) from None
        finally:
            if timer:
                timer.cancel()

    def close(self) -> None:
        self.con.close()


@contextmanager
def session(
    connect: Callable[[], duckdb.DuckDBPyConnection], timeout_s: float | None, path: Path | None = None
) -> Iterator[Session]:
    """A Session on a connection from `connect`, closed on exit."""
    gen = generation(path) if path else None  # before opening: a file replaced later is seen by the next question
    s = Session(connect(), timeout_s, path, gen)
    try:
        yield s
    finally:
        s.close()


class Warehouse:
    """The warehouse file and how it is read: per question, with a statement timeout and a bounded lock wait."""

    def __init__(self, path: Path, timeout_s: float = DEFAULT_TIMEOUT_S, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.lock_wait_s = min(lock_wait_s, timeout_s)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new read-only connection (no statement timeout); close it when done. Raises WarehouseUnavailable."""
        return connect_read_only(self.path, self.lock_wait_s)

    def session(self) -> Any:
        """A context manager giving a Session; the connection closes when it exits."""
        return session(self.connect, self.timeout_s, self.path)

    def ping(self, table: str | None = None, time_column: str | None = None) -> dict[str, Any]:
        """Readiness: opens, runs `select 1` and reads `table`'s latest `time_column`, within a short timeout.
        Returns {"ok": bool, "detail": str}; never raises."""
        limit = min(PING_TIMEOUT_S, self.timeout_s)
        probe = Warehouse(self.path, limit, min(0.5, limit))
        try:
            with probe.session() as s:
                s.read("SELECT 1", fetch="one")
                detail = f"warehouse {self.path} answers"
                if table and time_column:
                    latest = s.read(f"SELECT max({time_column})::DATE FROM {table}", fetch="one")[0]  # noqa: S608 - catalog names
                    detail += f"; {table} has data through {latest.isoformat() if latest else 'nothing (empty)'}"
            return {"ok": True, "detail": detail}
        except UserFacingError as err:
            return {"ok": False, "detail": str(err)}
        except Exception as err:  # a probe reports, it never raises
            return {"ok": False, "detail": f"warehouse {self.path}: {type(err).__name__}: {_first_line(err)}"}
