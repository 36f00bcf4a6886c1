"""Soak: two `mopsbot serve --http` replicas on a private PostgreSQL, a steady stream of questions, one replica
restarted (SIGTERM, start again) at 1/3 of the run and the database restarted at 2/3. Every question must be
answered exactly once, or its asker told why with a reference id; replica memory must not grow.

    .venv/bin/python -m benchmarks.bench_soak [--minutes 10] [--rate 2]

Run from the repo root as root (the PostgreSQL cluster runs as the postgres user; the harness is the fault tests',
tests/faults/conftest.py). Slack is the fake Web API: it redelivers an event that was not acked 200 to the other
replica (X-Slack-Retry-Num 1..3, after 1, 2 and 4 s), and redelivers 10 % of the acked ones once more. While a
replica restarts, the "load balancer" keeps sending to it for 2 s after SIGTERM, then not until it is live again.
Ack latency is the time to the HTTP answer; answer latency is first delivery -> first post in the thread.
Goal: 0 lost, 0 answered twice, RSS growth < 10 % (after warm-up to the end, for the replicas alive at the end).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.conftest import (
    KNOWLEDGE_Q,
    METRIC_Q,
    PgCluster,
    Replica,
    Replicas,
    Slack,
    copy_data_dir,
    has_reference,
    message_text,
    prepare_store,
    seed_data_dir,
)  # fmt: skip
from tests.slack.fake_slack import FakeSlack

QUESTIONS = [  # knowledge and metric questions, as the eval suites ask them
    KNOWLEDGE_Q,
    "how quickly do SDRs have to reach out when someone requests a demo?",
    METRIC_Q,
    "what was our cost per lead in EMEA last month?",
    "CPL by channel last quarter vs the quarter before",
]
ENV = {"MOPSBOT_CLAIM_LEASE_S": "15", "MOPSBOT_TURN_BUDGET_S": "10", "MOPSBOT_SWEEP_INTERVAL_S": "1",
       "MOPSBOT_DRAIN_TIMEOUT_S": "15"}  # fmt: skip
LEASE_S, SWEEP_S = 15.0, 1.0
BACKOFF_S = (1.0, 2.0, 4.0)  # Slack's 1 min / 5 min retry schedule, compressed


@dataclass
class Question:
    n: int
    body: dict[str, Any]
    first_sent: float = 0.0
    deliveries: list[tuple[int, int, float]] = field(default_factory=list)  # (retry number, status, seconds)
    gave_up: bool = False  # Slack's last retry was not acked 200 either

    @property
    def thread(self) -> str:
        return self.body["event"]["ts"]


@dataclass
class Process:
    label: str
    replica: Replica
    warm_rss_kb: int  # after its warm-up questions
    last_rss_kb: int | None = None  # just before SIGTERM; None: alive at the end


@dataclass
class Slot:
    """A place in the load balancer: the replica now serving it, and whether it gets traffic."""

    name: str
    data_dir: Path
    replica: Replica
    routable: bool = True
    processes: list[Process] = field(default_factory=list)


class Soak:
    def __init__(self, slack: Slack, launcher: Replicas, store_url: str, slots: list[Slot]) -> None:
        self.slack, self.launcher, self.store_url, self.slots = slack, launcher, store_url, slots
        self.questions: list[Question] = []
        self.pool = ThreadPoolExecutor(32)
        self.lock = threading.Lock()
        self.heap: list[tuple[float, int, Question, int, str | None, bool]] = []
        self.seq = itertools.count()
        self.notes: list[str] = []

    def schedule(self, at: float, q: Question, retry: int, avoid: str | None, duplicate: bool = False) -> None:
        with self.lock:
            heapq.heappush(self.heap, (at, next(self.seq), q, retry, avoid, duplicate))

    def due(self, now: float) -> list[tuple[Question, int, str | None, bool]]:
        with self.lock:
            ready = []
            while self.heap and self.heap[0][0] <= now:
                ready.append(heapq.heappop(self.heap)[2:])
            return ready

    def pending(self) -> bool:
        with self.lock:
            return bool(self.heap)

    def pick(self, n: int, avoid: str | None) -> Slot:
        routable = [s for s in self.slots if s.routable] or self.slots
        others = [s for s in routable if s.name != avoid] or routable
        return others[n % len(others)]

    def deliver(self, q: Question, retry: int, avoid: str | None, duplicate: bool = False) -> None:
        slot = self.pick(q.n + retry, avoid)
        response = self.slack.send(slot.replica, q.body, retry or None)
        with self.lock:
            q.deliveries.append((retry, response.status, response.seconds))
        if response.status != 200:
            if retry < 3:
                self.schedule(time.monotonic() + BACKOFF_S[retry], q, retry + 1, slot.name)
            else:
                q.gave_up = True
        elif retry == 0 and not duplicate and random.random() < 0.10:
            self.schedule(time.monotonic() + random.uniform(0.5, 3.0), q, 1, slot.name, duplicate=True)

    def warm(self, slot: Slot, label: str) -> None:
        """Answers a knowledge and a metric question (threads not counted), then notes the process's RSS."""
        threads = [self.slack.ask(slot.replica, text)[0]["event"]["ts"] for text in (KNOWLEDGE_Q, METRIC_Q)]
        self.slack.wait_answered(threads, timeout=120)
        slot.processes.append(Process(label, slot.replica, slot.replica.rss_kb()))

    def restart(self, slot: Slot) -> None:
        try:
            self._restart(slot)
        except Exception as err:  # a thread of its own: say so in the report rather than die silently
            self.notes.append(f"{slot.name} restart FAILED: {err!r}")

    def _restart(self, slot: Slot) -> None:
        old, started = slot.replica, time.monotonic()
        slot.processes[-1].last_rss_kb = old.rss_kb()
        old.terminate()
        time.sleep(2.0)  # until the load balancer's readiness probe notices
        slot.routable = False
        code = old.wait(60)
        drained = time.monotonic() - started
        label = f"{slot.name}#{len(slot.processes) + 1}"
        slot.replica = self.launcher.start(label, slot.data_dir, self.store_url, ENV)
        self.warm(slot, label)
        slot.routable = True
        took = time.monotonic() - started
        self.notes.append(f"{slot.name} restarted: SIGTERM -> exit {code} in {drained:.1f} s; serving again "
                          f"{took:.1f} s after SIGTERM")  # fmt: skip

    def restart_db(self, pg: PgCluster) -> None:
        started = time.monotonic()
        pg.restart()
        self.notes.append(f"PostgreSQL restarted (fast shutdown, start) in {time.monotonic() - started:.1f} s")

    def run(self, minutes: float, rate: float, pg: PgCluster) -> None:
        start = time.monotonic()
        end = start + minutes * 60
        faults = [(start + minutes * 20, lambda: self.restart(self.slots[0])), (start + minutes * 40,
                  lambda: self.restart_db(pg))]  # fmt: skip
        next_at, n = start, 0
        while time.monotonic() < end or (self.pending() and time.monotonic() < end + 60):
            now = time.monotonic()
            while now < end and next_at <= now:
                body = self.slack.question(QUESTIONS[n % len(QUESTIONS)])
                q = Question(n, body, first_sent=time.monotonic())
                self.questions.append(q)
                self.pool.submit(self.deliver, q, 0, None)
                n, next_at = n + 1, next_at + 1.0 / rate
            for q, retry, avoid, duplicate in self.due(now):
                self.pool.submit(self.deliver, q, retry, avoid, duplicate)
            while faults and faults[0][0] <= now:
                threading.Thread(target=faults.pop(0)[1], daemon=True).start()
            time.sleep(0.01)
        self.pool.shutdown(wait=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def report(soak: Soak, fake: FakeSlack, started: float) -> bool:
    posts: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    with fake._cond:
        calls = [c for c in fake.calls if c.method == "chat.postMessage" and c.status == 200]
    for call in calls:
        thread = call.params.get("thread_ts")
        posts.setdefault(thread, []).append(call.at)
        texts.setdefault(thread, []).append(message_text(call.params))
    qs = soak.questions
    once = [q for q in qs if len(posts.get(q.thread, [])) == 1]
    told = [q for q in once if has_reference(texts[q.thread][0])]
    twice = [q for q in qs if len(posts.get(q.thread, [])) > 1]
    lost = [q for q in qs if q.thread not in posts]
    acks = [s * 1e3 for q in qs for _, status, s in q.deliveries if status]
    answers = [posts[q.thread][0] - q.first_sent for q in qs if q.thread in posts]
    statuses = Counter(status for q in qs for _, status, _ in q.deliveries)
    retries = Counter(retry for q in qs for retry, _, _ in q.deliveries if retry)
    print(f"soak: {len(qs)} questions in {time.monotonic() - started:.0f} s, 2 replicas, private PostgreSQL")
    for note in soak.notes:
        print(f"  {note}")
    print(f"deliveries: {sum(statuses.values())} (status {dict(statuses)}; redeliveries by retry number "
          f"{dict(sorted(retries.items()))}); Slack gave up on {sum(q.gave_up for q in qs)}")  # fmt: skip
    print(f"answered exactly once   : {len(once) - len(told)}")
    print(f"told why, with reference: {len(told)}")
    print(f"answered twice or more  : {len(twice)} {[q.thread for q in twice][:5]}")
    print(f"lost (no answer, no why): {len(lost)} {[q.thread for q in lost][:5]}")
    print(
        f"ack latency    : p50 {pct(acks, 0.5):.0f} ms  p99 {pct(acks, 0.99):.0f} ms  max {max(acks, default=0):.0f} ms"
    )
    print(f"answer latency : p50 {pct(answers, 0.5):.1f} s  p99 {pct(answers, 0.99):.1f} s  max "
          f"{max(answers, default=0):.1f} s")  # fmt: skip
    growth_ok = True
    for process in (p for slot in soak.slots for p in slot.processes):
        at_end = process.last_rss_kb is None
        final = process.replica.rss_kb() if at_end and process.replica.alive() else process.last_rss_kb or 0
        grown = 100.0 * (final - process.warm_rss_kb) / process.warm_rss_kb
        growth_ok &= not at_end or grown < 10.0
        print(f"RSS {process.label}: {process.warm_rss_kb / 1024:.0f} MB after warm-up -> {final / 1024:.0f} MB "
              f"at {'the end' if at_end else 'SIGTERM'} ({grown:+.1f} %)")  # fmt: skip
    ok = not lost and not twice and growth_ok
    print(f"goal: 0 lost, 0 twice, RSS growth < 10 % -> {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long questions are sent")
    parser.add_argument("--rate", type=float, default=2.0, help="new questions per second")
    args = parser.parse_args()
    random.seed(7)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="mopsbot-soak-"))
    pg = PgCluster.create()
    fake = FakeSlack().start()
    launcher = Replicas(tmp, fake.url)
    try:
        print("seeding a data dir (demo seed + knowledge ingest) and a private PostgreSQL ...", flush=True)
        seeded = seed_data_dir(tmp / "seeded")
        pg.start()
        store_url = prepare_store(pg.create_database(), seeded)
        slack = Slack(fake)
        slots = []
        for name in ("a", "b"):
            data = copy_data_dir(seeded, tmp / f"data-{name}")
            slots.append(Slot(name, data, launcher.start(f"{name}#1", data, store_url, ENV, wait=False)))
        for slot in slots:
            slot.replica.wait_live()
        soak = Soak(slack, launcher, store_url, slots)
        for slot in slots:
            soak.warm(slot, slot.replica.name)
        print(f"sending {args.rate:g} questions/s for {args.minutes:g} min ...", flush=True)
        soak.run(args.minutes, args.rate, pg)
        threads = [q.thread for q in soak.questions]
        try:  # the sweepers answer what a restart left claimed once its lease runs out
            slack.wait_answered(threads, timeout=2 * LEASE_S + 60)
        except AssertionError as err:
            print(f"note: {err}")
        slack.settle(quiet=LEASE_S + 3 * SWEEP_S, timeout=120)  # a late duplicate would have arrived by then
        report(soak, fake, started)
    finally:
        launcher.stop_all()
        fake.stop()
        pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
