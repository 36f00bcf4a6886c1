"""Warehouse faults a running bot meets: a writer process, a reseed that replaces the file, a query that runs too
long, a writer that holds the lock, a missing, empty or corrupt file. The bot never blocks a writer for longer
than one question, sees new data at the next question, and fails only metric and prediction questions, clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mopsbot.agent.factory import build_agent
from mopsbot.caller import CallerContext
from mopsbot.config import load_settings
from mopsbot.demo.generator import generate
from mopsbot.errors import UserFacingError
from mopsbot.metrics.compiler import Compiled
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.query import MetricQuery
from mopsbot.predictions.service import Predictions
from mopsbot.warehouse import Warehouse, WarehouseBusy, WarehouseTimeout, WarehouseUnavailable

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "tools" / "metrics.yaml"
MARKETER = CallerContext("U07SC0005", "C07MKTG001", "public")
ALL_TIME = MetricQuery(metrics=["leads"], start="2020-01-01", end="2030-12-31")
BY_CHANNEL = MetricQuery(metrics=["pipeline"], dimensions=["channel"], start="2020-01-01", end="2030-12-31")
# a cross join of 4e10 rows: minutes of work, so only the timeout can end it
SLOW = Compiled("SELECT count(*) AS n FROM range(200000) a, range(200000) b WHERE (a.range * b.range) % 7 = 3", [],
                ["n"])  # fmt: skip

# A writer process (an ETL job): retries opening the file read-write until it gets the lock, runs its SQL, and
# prints how long it waited for the lock.
WRITER = """
import duckdb, json, sys, time
path, sql, patience = sys.argv[1], sys.argv[2], float(sys.argv[3])
start = time.monotonic()
while True:
    try:
        con = duckdb.connect(path)
        break
    except duckdb.IOException:
        if time.monotonic() - start > patience:
            raise
        time.sleep(0.01)
waited = time.monotonic() - start
con.execute(sql)
con.close()
print(json.dumps({"waited": waited}))
"""

# Holds the write lock for a while (a long ETL transaction).
HOLDER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def path(tmp_path: Path, warehouse: Path) -> Path:
    """A private copy of the demo warehouse (no other handle on it in this process)."""
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, target)
    return target


def leads(engine: MetricsEngine) -> int:
    return int(engine.query(ALL_TIME).rows[0]["leads"])


def write(path: Path, sql: str, patience: float = 20.0) -> float:
    """Run `sql` in another process that opens the file read-write; returns how long it waited for the lock."""
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), sql, str(patience)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["waited"]


def test_a_writer_process_writes_while_the_engine_serves_and_the_next_question_sees_it(path: Path) -> None:
    engine = MetricsEngine(CATALOG, path, timeout_s=5)
    before = leads(engine)
    stop, answered, errors = threading.Event(), [], []

    def serve() -> None:  # questions back to back while the writer works
        while not stop.is_set():
            try:
                answered.append(leads(engine))
            except UserFacingError as err:
                errors.append(str(err))

    server = threading.Thread(target=serve)
    server.start()
    try:
        time.sleep(0.2)
        waited = write(path, "DELETE FROM dim_lead WHERE lead_id % 2 = 0")
    finally:
        stop.set()
        server.join()
    assert waited < 5  # at most one question's worth of waiting
    assert len(answered) > 3 and all(n in (before, answered[-1]) for n in answered)
    assert all("being written by another process" in e for e in errors)  # never a traceback
    after = leads(engine)
    assert after < before * 0.6  # the next question reads the new data, no restart


def test_a_reseed_that_replaces_the_file_is_read_by_the_next_question(path: Path, tmp_path: Path) -> None:
    engine = MetricsEngine(CATALOG, path)
    predictions = Predictions(REPO / "tools" / "models", tmp_path / "models", engine.cursor)
    before, lead = leads(engine), predictions.entity("lead_score", 466)
    generate(path, seed=8, scale=0.5)  # what `mopsbot demo seed` does: a new file renamed over the old one
    assert leads(engine) < before * 0.7
    assert predictions.entity("lead_score", 466) != lead


def test_a_slow_query_is_interrupted_at_the_timeout_and_the_engine_answers_afterwards(path: Path) -> None:
    engine = MetricsEngine(CATALOG, path, timeout_s=1)
    waits: list[float | BaseException] = []

    def etl() -> None:
        try:
            waits.append(write(path, "UPDATE dim_campaign SET budget_usd = budget_usd + 1"))
        except BaseException as err:  # reported by the assertion below
            waits.append(err)

    writer = threading.Thread(target=etl)
    start = time.monotonic()
    with pytest.raises(WarehouseTimeout, match=r"the metrics warehouse did not answer within 1 s") as err:
        threading.Timer(0.3, writer.start).start()  # a writer arrives while the query runs
        engine._run(SLOW)
    elapsed = time.monotonic() - start
    writer.join()
    assert isinstance(err.value, UserFacingError)
    assert elapsed < 3  # interrupted at the timeout, not run to the end
    assert isinstance(waits[0], float) and waits[0] < 3  # so the writer waited for the timeout at most
    assert leads(engine) > 0


def test_a_writer_holding_the_lock_fails_the_question_clearly_after_a_short_wait(path: Path) -> None:
    engine = MetricsEngine(CATALOG, path, timeout_s=5)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "holding"
        start = time.monotonic()
        with pytest.raises(WarehouseBusy, match="being written by another process") as err:
            leads(engine)
        assert time.monotonic() - start < 3.5
        assert str(err.value).startswith(f"the metrics warehouse at {path}")
        status = engine.ping()
        assert status["ok"] is False and "being written by another process" in status["detail"]
    finally:
        holder.wait(timeout=30)
    assert leads(engine) > 0  # the writer is done: questions work again


def corrupt(path: Path) -> None:
    path.write_bytes(b"this is not a duckdb file\n" * 400)


def truncated(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (corrupt, "cannot be read (corrupt or not a duckdb file)"),
        (truncated, "cannot be read (corrupt or not a duckdb file)"),
        (lambda p: p.write_bytes(b""), "cannot be read (empty file)"),
        (lambda p: p.unlink(), "no warehouse at"),
    ],
    ids=["corrupt", "truncated", "empty", "missing"],
)
def test_a_broken_warehouse_fails_metric_and_prediction_questions_clearly(
    path: Path, tmp_path: Path, damage, words: str
) -> None:
    damage(path)
    engine = MetricsEngine(CATALOG, path, lazy=True)
    assert engine.catalog.metrics["leads"]  # definitions need no warehouse
    assert "leads" in engine.definition("leads").lower()
    with pytest.raises(WarehouseUnavailable) as err:
        engine.query(BY_CHANNEL)  # reads data pages, not only the file's statistics
    message = str(err.value)
    assert words in message and str(path) in message
    assert "metric and prediction questions are unavailable" in message.lower()
    predictions = Predictions(REPO / "tools" / "models", tmp_path / "models", engine.cursor)
    with pytest.raises(WarehouseUnavailable, match=r"cannot be read|no warehouse at"):
        predictions.entity("lead_score", 466)
    if damage is not truncated:  # a truncated file still opens; its damage shows when a question reads it
        assert engine.ping() == {"ok": False, "detail": message}


def test_the_agent_builds_without_the_warehouse_and_answers_knowledge_when_it_is_corrupt(
    knowledge_index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(env_file=None, chroma_path=knowledge_index_dir, workspace=REPO, data_dir=tmp_path / "var")
    settings.data_dir.mkdir(parents=True)
    corrupt(settings.resolved_warehouse_path)

    def touched(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("building the agent read the warehouse")

    with monkeypatch.context() as m:
        m.setattr(Warehouse, "session", touched)
        m.setattr(Warehouse, "__call__", touched)
        agent = build_agent(settings, backend="local")

    record = agent.run_turn("what's our SOP for a webinar?", MARKETER)
    assert [c.name for c in record.tool_calls] == ["search_knowledge"]
    assert record.citations and "Sources: [1]" in record.answer
    record = agent.run_turn("how many leads did we get last month?", MARKETER)
    assert "cannot be read (corrupt or not a duckdb file)" in record.answer
    assert "Traceback" not in record.answer


def test_ping_reports_a_healthy_warehouse_and_its_freshness(path: Path) -> None:
    engine = MetricsEngine(CATALOG, path, lazy=True)
    start = time.monotonic()
    status = engine.ping()
    assert time.monotonic() - start < 2
    assert status["ok"] is True
    assert str(path) in status["detail"] and "has data through 2026-" in status["detail"]


def test_ping_never_raises_even_with_a_broken_catalog(path: Path, tmp_path: Path) -> None:
    status = MetricsEngine(tmp_path / "no-catalog.yaml", path).ping()
    assert status["ok"] is True and "answers" in status["detail"]  # the warehouse itself is fine
    corrupt(path)
    assert MetricsEngine(tmp_path / "no-catalog.yaml", path).ping()["ok"] is False
