"""What governance costs: appending to the audit chain, verifying it, and a propose -> approve -> execute round.

    .venv/bin/python benchmarks/bench_governance.py [--rows 5000] [--postgres URL]

Prints per-operation medians and the verify throughput; the round trip is measured with a handler that does no
work, so the figure is the approval path itself (envelope sealing, verification twice, chain appends).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mopsbot.approvals import Approvals, Proposal
from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.audit import record
from mopsbot.audit.verify import verify
from mopsbot.store.db import Store

REPO = Path(__file__).resolve().parents[1]


class Noop:
    def on_proposed(self, session, action, proposal):  # type: ignore[no-untyped-def]
        return {}

    def check(self, action):  # type: ignore[no-untyped-def]
        return None

    def execute(self, action):  # type: ignore[no-untyped-def]
        return {"ok": True}

    def on_closed(self, action, status, actor, reason):  # type: ignore[no-untyped-def]
        return None


def run(url: str, rows: int) -> None:
    store = Store.open(url)
    appends = []
    for i in range(rows):
        start = time.perf_counter()
        with store.session() as s:
            record(s, actor="bench", event="tool.call", subject_type="turn", subject_id=str(i), data={"i": i})
        appends.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    verdict = verify(store)
    took = time.perf_counter() - start
    assert verdict.ok, verdict.message
    approvals = Approvals(store, ApprovalPolicy.load(REPO / "tools"), {"change_request": Noop()})
    rounds = []
    for i in range(100):
        start = time.perf_counter()
        action, _ = approvals.propose(Proposal("change_request", {"n": i}, f"bench {i}", "low"), requester="U07SC0005")
        approvals.decide(action.id, "U07PR0002", "approve")
        rounds.append((time.perf_counter() - start) * 1e3)
    print(f"{url.split(':')[0]}: audit append p50 {statistics.median(appends):.2f} ms "
          f"(p95 {sorted(appends)[int(0.95 * len(appends))]:.2f} ms) over {rows} rows")  # fmt: skip
    print(f"{url.split(':')[0]}: audit verify {verdict.rows} rows in {took:.2f} s ({verdict.rows / took:,.0f} rows/s)")
    print(f"{url.split(':')[0]}: propose + approve + execute once, p50 {statistics.median(rounds):.1f} ms "
          f"(p95 {sorted(rounds)[95]:.1f} ms)")  # fmt: skip
    store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--postgres", default=None, help="also measure on this PostgreSQL URL (a scratch database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", args.rows)
    if args.postgres:
        run(args.postgres, args.rows)
