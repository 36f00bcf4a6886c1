"""Slack HTTP load: signed app_mention events over loopback, acked fast, each answered exactly once.

    .venv/bin/python -m benchmarks.bench_slack [--events 200] [--concurrency 8] [--redeliveries 20] [--cold]

Run from the repo root (it imports the test suite's fake Slack Web API). Needs the demo warehouse, knowledge index
and models in var/ (`make demo`). The bot is served as `mopsbot serve --http` serves it (threaded WSGI on
127.0.0.1, local backend, the agent built and gc.freeze() called before serving); --cold instead builds the agent
inside the first events (the concurrent-first-events case). Ack latency is the
client's time to the HTTP response; "server" is the time inside the WSGI app. Goal: p99 ack < 50 ms, every event
answered once, redeliveries (X-Slack-Retry-Num) acked and not answered again.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from slack_sdk.signature import SignatureVerifier
from tests.slack.fake_slack import BOT_USER, TEAM, FakeSlack

from mopsbot.agent.factory import build_agent
from mopsbot.config import load_settings
from mopsbot.slack.app import SlackBot
from mopsbot.slack.server import http_server

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
CHANNEL, USER = "C07MKTG001", "U07SC0005"
GOAL_MS = 50.0
QUESTIONS = [  # knowledge, metric and prediction questions from the agent eval suites
    "what's our SOP for a webinar?",
    "how quickly do SDRs have to reach out when someone requests a demo?",
    "CPL by channel last quarter vs the quarter before",
    "how many leads did we get last month?",
    "what was our cost per lead in EMEA last month?",
    "why is lead 10031 scored 82?",
    "why did lead 964 get a C?",
    "what if lead 89 requested a demo?",
]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # one stderr line per request would drown the figures
        pass


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def spread(values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return f"p50 {pct(ms, 0.5):.1f}  p95 {pct(ms, 0.95):.1f}  p99 {pct(ms, 0.99):.1f}  max {max(ms):.1f} ms"


def envelope(event_id: str, ts: str, text: str) -> dict[str, Any]:
    event = {"type": "app_mention", "user": USER, "text": f"<@{BOT_USER}> {text}", "ts": ts, "event_ts": ts,
             "channel": CHANNEL}  # fmt: skip
    return {
        "token": "unused", "team_id": TEAM, "api_app_id": "A0MOPSBOT", "type": "event_callback", "event": event,
        "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }  # fmt: skip


def send(url: str, body: dict[str, Any], retry: int = 0) -> tuple[int, float]:
    """POST one signed event; returns (HTTP status, seconds to the response)."""
    raw = json.dumps(body)
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=raw)
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    request = urllib.request.Request(url, raw.encode(), headers, method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
            return r.status, time.perf_counter() - start
    except urllib.error.HTTPError as err:
        return err.code, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="distinct app_mention events (one thread each)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads sending at once")
    parser.add_argument("--redeliveries", type=int, default=20, help="already-sent events sent again as retries")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all answers")
    parser.add_argument("--cold", action="store_true", help="build the agent inside the first events, not before")
    args = parser.parse_args()
    var = REPO / "var"
    missing = [p for p in ("warehouse.duckdb", "chroma", "models") if not (var / p).exists()]
    if missing:
        raise SystemExit(f"missing var/{', var/'.join(missing)}: run `make demo` first")

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(var / "models", Path(tmp) / "models")
        fake = FakeSlack().start()
        settings = load_settings(
            env_file=None, workspace=REPO, data_dir=Path(tmp), warehouse_path=var / "warehouse.duckdb",
            chroma_path=var / "chroma", today=date(2026, 11, 16), slack_bot_token="xoxb-bench",
            slack_signing_secret=SECRET, slack_api_url=fake.url,
        )  # fmt: skip
        builds: list[float] = []

        def factory():
            start = time.perf_counter()
            agent = build_agent(settings, backend="local")
            builds.append(time.perf_counter() - start)
            return agent

        bot = SlackBot(settings, factory)
        if not args.cold:  # as `mopsbot serve` does: build once, then freeze the long-lived objects for the GC
            bot.agent  # noqa: B018
            gc.freeze()
        server = http_server(bot, "127.0.0.1", 0)
        server.RequestHandlerClass = Quiet
        inner, server_s = server.get_app(), []

        def timed_app(environ, start_response):
            start = time.perf_counter()
            try:
                return inner(environ, start_response)
            finally:
                server_s.append(time.perf_counter() - start)

        server.set_app(timed_app)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/slack/events"

        bodies = []
        for i in range(args.events):
            ts, text = fake.new_ts(), QUESTIONS[i % len(QUESTIONS)]
            fake.add_user_message(CHANNEL, ts, USER, f"<@{BOT_USER}> {text}")
            bodies.append(envelope(f"EvBENCH{i:05d}", ts, text))
        threads = {b["event"]["ts"] for b in bodies}
        step = max(1, args.events // max(1, args.redeliveries))
        again = bodies[::step][: args.redeliveries]

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            acks = list(pool.map(lambda b: send(url, b), bodies))
            sent_s = time.perf_counter() - t0
            retries = list(pool.map(lambda b: send(url, b, retry=1), again))
        acked = {b["event"]["ts"] for b, (code, _) in zip(bodies, acks, strict=True) if code == 200}
        deadline, done_s = t0 + args.timeout, None
        while acked and time.perf_counter() < deadline:  # an event not acked 200 is Slack's to redeliver
            if acked <= {p.get("thread_ts") for p in fake.of("chat.postMessage")}:
                done_s = time.perf_counter() - t0
                break
            time.sleep(0.1)
        try:
            fake.wait_idle(quiet=2.0, timeout=30.0)  # late duplicates would arrive by then
        except AssertionError as err:
            print(f"warning: {err}")
        posts = [p for p in fake.of("chat.postMessage") if p.get("thread_ts") in threads]
        server.shutdown()
        server.server_close()
        fake.stop()

    per_thread = Counter(p["thread_ts"] for p in posts)
    lost = len(threads - per_thread.keys())
    dupes = sum(n - 1 for n in per_thread.values() if n > 1)
    sorry = sum(p.get("text", "").startswith("Sorry") for p in posts)
    latency = [s for _, s in acks]
    statuses = Counter(code for code, _ in acks + retries)
    p99 = pct(latency, 0.99) * 1e3
    start = "cold (built inside the first events)" if args.cold else "warm (built before serving, as `mopsbot serve`)"
    print(f"{args.events} events + {len(again)} redeliveries, {args.concurrency} concurrent, 127.0.0.1; agent {start}")
    built = ", ".join(f"{s:.2f}" for s in builds)
    print(f"agent built {len(builds)} time(s) [{built}] s; events sent in {sent_s:.2f} s")
    print(f"acks: {len(acks) + len(retries)} responses, status codes {dict(statuses)}")
    print(f"ack latency, events       : {spread(latency)}  (goal p99 < {GOAL_MS:.0f} ms)")
    print(f"ack latency, redeliveries : {spread([s for _, s in retries])}")
    print(f"server time in WSGI app   : {spread(server_s)}")
    slowest = sorted(range(len(latency)), key=lambda i: -latency[i])[:5]
    print("slowest acks (event #: ms): " + ", ".join(f"{i}: {latency[i] * 1e3:.0f}" for i in slowest))
    if done_s is None:
        why = f"stopped after {args.timeout:.0f} s" if acked else "no event acked 200, nothing to wait for"
        print(f"answers: {len(per_thread)}/{len(threads)} threads answered ({why})")
    else:
        rate = len(acked) / done_s
        print(f"answers: the {len(acked)} acked threads answered in {done_s:.1f} s ({rate:.2f} answers/s)")
    print(f"posts in event threads {len(posts)}: duplicates {dupes}, lost {lost}, 'Sorry' replies {sorry}")
    ok = statuses == Counter({200: len(acks) + len(retries)}) and not lost and not dupes and done_s is not None
    verdict = "PASS" if ok and p99 < GOAL_MS else "FAIL"
    print(f"verdict: {verdict}: p99 ack {p99:.1f} ms (goal < {GOAL_MS:.0f}), all acked 200 {statuses.keys() == {200}}, "
          f"answered once {not lost and not dupes}")  # fmt: skip


if __name__ == "__main__":
    main()
