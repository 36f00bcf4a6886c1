"""Warehouse access benchmark: what never holding the warehouse costs per question.

    .venv/bin/python benchmarks/bench_warehouse.py [--warehouse PATH] [--repeat 40]

Three ways to run the same metric questions on the demo warehouse (`var/warehouse.duckdb` when `make demo` made
one, else seeded into a temporary directory), interleaved:
  held     one read-only connection held for the whole run (the old engine: blocks writers, misses reseeds)
  open     a new read-only duckdb connection per question, closed after
  attach   what MetricsEngine does: the file attached read-only per question to an in-memory database, detached
           after; every statement bounded by the timeout
Prints p50 / p95 ms per question (SQL + fetch, with the open/attach and close) and each ratio to `held`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from mopsbot.demo.generator import generate
from mopsbot.metrics.compiler import compile_query, resolve
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.query import MetricQuery
from mopsbot.warehouse import CONFIG

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 16)
QUESTIONS = [
    MetricQuery(metrics=["leads"], period="last month"),
    MetricQuery(metrics=["spend", "cpl"], dimensions=["channel"], period="Q3 2026"),
    MetricQuery(metrics=["mqls"], grain="week", period="last 90 days"),
    MetricQuery(metrics=["pipeline"], dimensions=["channel"], period="this year"),
]


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, help="duckdb file (default var/warehouse.duckdb, else seeded)")
    parser.add_argument("--repeat", type=int, default=40, help="timed runs per question and way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.warehouse or REPO / "var" / "warehouse.duckdb"
        if not path.exists():
            path = Path(tmp) / "warehouse.duckdb"
            print(f"seeding the demo warehouse into {path} ...", flush=True)
            generate(path)
        run(path.resolve(), args.repeat)


def run(path: Path, repeat: int) -> None:
    engine = MetricsEngine(REPO / "tools" / "metrics.yaml", path, today=TODAY, lazy=True)
    compiled = []
    for q in QUESTIONS:
        catalog = engine.catalog
        compiled.append(compile_query(catalog, resolve(catalog, q), engine.period_of(q)))
    held = duckdb.connect(str(path), read_only=True, config=CONFIG)

    def with_held(i: int) -> Callable[[], object]:
        def go() -> object:
            cur = held.cursor()
            try:
                return cur.execute(compiled[i].sql, compiled[i].params).fetchall()
            finally:
                cur.close()

        return go

    def with_open(i: int) -> Callable[[], object]:
        def go() -> object:
            con = duckdb.connect(str(path), read_only=True, config=CONFIG)
            try:
                return con.execute(compiled[i].sql, compiled[i].params).fetchall()
            finally:
                con.close()

        return go

    def with_attach(i: int) -> Callable[[], object]:
        return lambda: engine._run(compiled[i])

    ways = {"attach": with_attach, "held": with_held, "open": with_open}
    # `open` must not find the held connection's database in duckdb's instance cache: time it with `held` closed
    times: dict[str, list[float]] = {w: [] for w in ways}
    for i, q in enumerate(QUESTIONS):  # warm-up, and the three read the same rows
        rows = [len(ways[w](i)()) for w in ways]  # type: ignore[arg-type]
        assert len(set(rows)) == 1 and rows[0], f"{q}: {rows}"
    for _ in range(repeat):
        for i in range(len(QUESTIONS)):
            for way in ("held", "attach"):
                t0 = time.perf_counter()
                ways[way](i)()
                times[way].append(time.perf_counter() - t0)
    held.close()
    for _ in range(repeat):
        for i in range(len(QUESTIONS)):
            t0 = time.perf_counter()
            with_open(i)()
            times["open"].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    status = engine.ping()
    ping_ms = (time.perf_counter() - t0) * 1000

    print(f"warehouse {path} ({path.stat().st_size / 1e6:.1f} MB), duckdb {duckdb.__version__}, {os.cpu_count()} "
          f"cores, load {os.getloadavg()[0]:.1f}; {len(QUESTIONS)} questions x {repeat} runs each")  # fmt: skip
    base = percentiles(times["held"])
    print(f"{'per question':<34}{'p50 ms':>9}{'p95 ms':>9}{'p50 ratio':>11}{'p95 ratio':>11}")
    labels = {"held": "held connection", "open": "open per question", "attach": "attach per question (engine)"}
    for way in ("held", "open", "attach"):
        p50, p95 = percentiles(times[way])
        print(f"{labels[way]:<34}{p50:9.2f}{p95:9.2f}{p50 / base[0]:10.2f}x{p95 / base[1]:10.2f}x")
    print(f"ping: {ping_ms:.1f} ms, {status}")


if __name__ == "__main__":
    main()
