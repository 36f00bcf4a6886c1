"""Fault-test harness: a private PostgreSQL cluster, seeded data dirs, `mopsbot serve --http` replicas run as
subprocesses against the fake Slack, and signed Slack requests to any of them.

The classes are plain (benchmarks/bench_soak.py uses them too); the fixtures at the end add the teardown. Nothing
here touches the machine's own PostgreSQL on 5432: the cluster is initdb'ed in a temporary folder on a free port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.slack.fake_slack import BOT_USER, TEAM, FakeSlack

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: mopsbot, chroma
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_UID, PG_GID = 101, 104  # the postgres user: initdb refuses to run as root
SECRET = "faults-signing-secret"
TODAY = "2026-11-16"
MKTG = "C07MKTG001"
LENA, PRIYA, SAM = "U07LV0004", "U07PR0002", "U07SC0005"
# The lease stays above the turn budget, as the settings ask. Short (start_pair's default) so that a takeover
# happens within a test; relaxed (every other replica) so that a cold first turn on 2 busy cores never runs out.
LEASE_S, SWEEP_S, DRAIN_S, TURN_BUDGET_S = 8.0, 1.0, 15.0, 5.0
SHORT_LEASE = {"MOPSBOT_CLAIM_LEASE_S": str(LEASE_S), "MOPSBOT_TURN_BUDGET_S": str(TURN_BUDGET_S)}
RELAXED_LEASE = {"MOPSBOT_CLAIM_LEASE_S": "45", "MOPSBOT_TURN_BUDGET_S": "30"}
KNOWLEDGE_Q = "what's our SOP for a webinar?"
METRIC_Q = "how many leads did we get last month?"
UNAVAILABLE = re.compile(r"unavailable|not available|unreachable|can(?:no|')t reach|is down", re.IGNORECASE)
# "reference ref-54cd68b3b8", "reference id: 7F3A": the word, then an id that has a digit ("preference", "for
# reference, the runbook" are no reference)
_REFERENCE = re.compile(r"\breference(?:\s+id)?[\s:#`*_(]*((?=[A-Za-z_-]*\d)[A-Za-z0-9][A-Za-z0-9_-]{3,})", re.I)
_TS_PREFIXES = iter(range(1763301, 1763999))  # one per fake Slack, so threads never repeat within a session

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Polls `check` until it returns something truthy; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any mopsbot/Slack/OpenAI setting, plus the demo's fixed day."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOPSBOT_", "SLACK_", "OPENAI_"))}
    env |= {"MOPSBOT_WORKSPACE": str(REPO), "MOPSBOT_TODAY": TODAY, "MOPSBOT_LLM": "local", "PYTHONUNBUFFERED": "1"}
    # the static embedder indexes the knowledge base in seconds (MiniLM: minutes on a busy 2-core machine); these
    # tests break processes, they do not measure retrieval quality
    env["MOPSBOT_EMBEDDINGS"] = "static"
    return env | values


def cli(*args: str, data_dir: Path, database_url: str | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Runs `mopsbot ARGS` from the repo root on `data_dir`; raises with its output when it fails."""
    values = {"MOPSBOT_DATA_DIR": str(data_dir), **(env or {})}
    if database_url:
        values["MOPSBOT_DATABASE_URL"] = database_url
    done = subprocess.run(
        [str(BIN / "mopsbot"), *args], cwd=REPO, env=clean_env(**values), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"mopsbot {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@dataclass
class PgCluster:
    """A throw-away PostgreSQL 15 cluster owned by the postgres user, on 127.0.0.1 and a free port.

    The postmaster is this process's child (not daemonised by pg_ctl) so that it is reaped when it stops.
    """

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="mopsbot-faults-pg-"))
        os.chown(root, PG_UID, PG_GID)
        cluster = cls(root, free_port())
        cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, tool: str, *args: str) -> list[str]:
        return ["setpriv", f"--reuid={PG_UID}", f"--regid={PG_GID}", "--clear-groups", str(PG_BIN / tool), *args]

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self._as_postgres(tool, *args), capture_output=True, text=True, timeout=120,
                              check=False, cwd=self.root)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, timeout: float = 60) -> None:
        assert not self.running(), "already running"
        command = self._as_postgres("postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.data),
                                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")  # fmt: skip
        with (self.root / "postgres.log").open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, cwd=self.root, start_new_session=True)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres exited {self.proc.returncode}:\n{log}")
            probe = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
            return subprocess.run(probe, check=False, capture_output=True).returncode == 0

        wait_until(ready, timeout, f"postgres on port {self.port}", interval=0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stops the server: fast cuts every connection (an outage), immediate is a crash, smart waits."""
        if not self.running():
            return
        assert self.proc is not None
        self.proc.send_signal({"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"faults_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def destroy(self) -> None:
        """Stops the server whatever state it is in and removes its folder."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- data dirs ----------------------------------------------------------------------------------------------


def seed_data_dir(data_dir: Path) -> Path:
    """`mopsbot demo seed` + `mopsbot knowledge ingest` into data_dir (SQLite store, warehouse, models, index)."""
    cli("demo", "seed", data_dir=data_dir)
    cli("knowledge", "ingest", data_dir=data_dir)
    return data_dir


def copy_data_dir(seeded: Path, target: Path) -> Path:
    shutil.copytree(seeded, target)
    return target


def prepare_store(database_url: str, data_dir: Path) -> str:
    """Migrates a state store and records data_dir's trained models in its audit log, as training does."""
    from mopsbot.audit.artifacts import AuditLedger
    from mopsbot.predictions.model import file_hashes
    from mopsbot.store.db import Store

    cli("db", "upgrade", data_dir=data_dir, database_url=database_url)
    store = Store.open(database_url)
    ledger = AuditLedger(store)
    for folder in sorted((data_dir / "models").glob("*/*")):
        ledger.record(folder.parent.name, folder.name, file_hashes(folder), "faults-setup", "trained for fault tests")
    store.close()
    return database_url


# --- HTTP ---------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int  # 0: no HTTP answer (connection refused or reset)
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30) -> Response:
    request = urllib.request.Request(url, data, headers or {}, method="POST" if data is not None else "GET")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return Response(r.status, r.read().decode(), time.monotonic() - start)
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read().decode(), time.monotonic() - start)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        return Response(0, str(err), time.monotonic() - start)


# --- replicas -----------------------------------------------------------------------------------------------


@dataclass
class Replica:
    """One `mopsbot serve --http` process; its stdout and stderr go to files next to each other."""

    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    livez_missing: bool = False  # became live by the older /healthz only (then /livez tests fail, not the harness)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, timeout: float = 10) -> Response:
        return http(self.base + path, timeout=timeout)

    def post(self, path: str, body: str, headers: dict[str, str], timeout: float = 30) -> Response:
        return http(self.base + path, body.encode(), headers, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9, and wait until the process is gone."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.out, self.err) if p.exists())

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, parsed body); the body is {} when it is not JSON."""
        r = self.get("/readyz")
        try:
            return r.status, json.loads(r.body)
        except ValueError:
            return r.status, {}

    def wait_readyz(self, status: int, timeout: float = 15) -> dict[str, Any]:
        """Polls /readyz until it answers `status`; returns that body."""
        seen: list[tuple[int, dict[str, Any]]] = []

        def reached() -> bool:
            seen.append(self.readyz())
            return seen[-1][0] == status

        try:
            wait_until(reached, timeout, f"{self.name} /readyz {status}", interval=0.25)
        except AssertionError as err:
            raise AssertionError(f"{err}; last answer {seen[-1] if seen else None}") from None
        return seen[-1][1]

    def metric(self, name: str) -> float | None:
        """Sum of all samples of a Prometheus metric on /metrics; None when the metric is not exposed."""
        text = self.get("/metrics").body
        samples = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)", text, re.M)]
        return sum(samples) if samples else None

    def wait_live(self, timeout: float = 90) -> Replica:
        def live() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited {self.proc.returncode} while starting:\n{self.tail()}")
            status = self.get("/livez", timeout=2).status
            if status == 404 and self.get("/healthz", timeout=2).status == 200:
                self.livez_missing = True
                return True
            return status == 200

        try:
            wait_until(live, timeout, f"{self.name} /livez", interval=0.2)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- {self.name} log ---\n{self.tail()}") from None
        return self

    def stop(self) -> None:
        """Teardown: whatever it is doing (stopped, draining), it is gone afterwards."""
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@dataclass
class Replicas:
    """Starts replicas against one fake Slack; `stop_all` kills what is still running."""

    workdir: Path
    slack_api_url: str
    started: list[Replica] = field(default_factory=list)

    def start(self, name: str, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None,
              args: Iterable[str] = (), wait: bool = True) -> Replica:  # fmt: skip
        port = free_port()
        values = {
            "MOPSBOT_DATA_DIR": str(data_dir), "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack_api_url, "MOPSBOT_SWEEP_INTERVAL_S": str(SWEEP_S),
            "MOPSBOT_DRAIN_TIMEOUT_S": str(DRAIN_S), "MOPSBOT_STORE_TIMEOUT_S": "2", "MOPSBOT_SLACK_TIMEOUT_S": "20",
            **RELAXED_LEASE,
        }  # fmt: skip
        if database_url:
            values["MOPSBOT_DATABASE_URL"] = database_url
        values |= env or {}
        out, err = self.workdir / f"{name}.stdout.log", self.workdir / f"{name}.stderr.log"
        command = [str(BIN / "mopsbot"), "serve", "--http", "--host", "127.0.0.1", "--port", str(port), *args]
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(command, cwd=REPO, env=clean_env(**values), stdout=o, stderr=e,
                                    start_new_session=True)  # fmt: skip
        replica = Replica(name, port, data_dir, proc, out, err)
        self.started.append(replica)
        return replica.wait_live() if wait else replica

    def stop_all(self) -> None:
        for replica in self.started:
            replica.stop()


# --- acting as Slack ----------------------------------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    """A message's text and every text inside its blocks."""
    parts = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def reference_ids(text: str) -> list[str]:
    return _REFERENCE.findall(text)


def has_reference(text: str) -> bool:
    """The reply reports a failure the way the bot does: with a reference id."""
    return bool(_REFERENCE.search(text))


def assert_reference(text: str, replicas: Iterable[Replica]) -> str:
    """The reply names a reference id, and that id is in one of the replicas' logs; returns it."""
    ids = reference_ids(text)
    assert ids, f"no 'reference <id>' in the reply: {text!r}"
    logs = "".join(r.log() for r in replicas)
    found = [i for i in ids if i in logs]
    assert found, f"reference id(s) {ids} not in the replica logs; reply {text!r}"
    return found[0]


@dataclass
class Slack:
    """Acts as Slack and its users towards any replica; reads what the bot posted from the fake Web API."""

    fake: FakeSlack
    secret: str = SECRET

    def signed(self, body: str, content_type: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        stamp = str(int(time.time()))
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=stamp, body=body)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
        return headers | (extra or {})

    def question(self, text: str, user: str = LENA, channel: str = MKTG, thread_ts: str | None = None,
                 kind: str = "app_mention") -> dict[str, Any]:  # fmt: skip
        """An event_callback envelope (unique event_id) for a new user message the fake now holds."""
        ts = self.fake.new_ts()
        text = f"<@{BOT_USER}> {text}" if kind == "app_mention" else text
        self.fake.add_user_message(channel, ts, user, text, thread_ts)
        event = {"type": kind, "user": user, "text": text, "ts": ts, "event_ts": ts, "channel": channel}
        if thread_ts:
            event["thread_ts"] = thread_ts
        if kind == "message":
            event["channel_type"] = "channel"
        return {
            "token": "unused", "team_id": TEAM, "api_app_id": "A0MOPSBOT", "type": "event_callback",
            "event": event, "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }  # fmt: skip

    def send(self, replica: Replica, body: dict[str, Any], retry: int | None = None, timeout: float = 30) -> Response:
        """POSTs a signed event; `retry` sets X-Slack-Retry-Num as Slack's redeliveries do."""
        raw = json.dumps(body)
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return replica.post("/slack/events", raw, self.signed(raw, "application/json", extra), timeout)

    def ask(self, replica: Replica, text: str, retry: int | None = None, **kw: Any) -> tuple[dict[str, Any], Response]:
        body = self.question(text, **kw)
        return body, self.send(replica, body, retry)

    def click(self, replica: Replica, user: str, action_id: str, card: dict[str, Any],
              channel: str = MKTG) -> Response:  # fmt: skip
        """A button press on `card` (a message as the fake holds it), as Slack posts block_actions."""
        element, block_id = next(
            (e, b["block_id"]) for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == action_id
        )  # fmt: skip
        payload = {
            "type": "block_actions", "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0MOPSBOT",
            "team": {"id": TEAM}, "trigger_id": f"trigger-{user}-{time.monotonic_ns()}",
            "channel": {"id": channel}, "message": card,
            "container": {"type": "message", "message_ts": card["ts"], "channel_id": channel,
                          "thread_ts": card.get("thread_ts")},
            "actions": [{"type": "button", "action_id": action_id, "block_id": block_id,
                         "value": element["value"], "action_ts": str(time.time())}],
        }  # fmt: skip
        raw = urlencode({"payload": json.dumps(payload)})
        return replica.post("/slack/events", raw, self.signed(raw, "application/x-www-form-urlencoded"))

    # --- what the bot posted -------------------------------------------------------------------------------

    def posts(self, thread_ts: str) -> list[dict[str, Any]]:
        """The chat.postMessage calls (answered) into that thread."""
        return [p for p in self.fake.of("chat.postMessage") if p.get("thread_ts") == thread_ts]

    def replies(self, thread_ts: str, channel: str = MKTG) -> list[str]:
        """Texts of the bot's messages in that thread as Slack now shows them (after any chat.update)."""
        with self.fake._cond:
            held = list(self.fake.messages.get(channel, []))
        return [message_text(m) for m in held if m.get("user") == BOT_USER and m.get("thread_ts") == thread_ts]

    def counts(self, threads: Iterable[str]) -> Counter[str]:
        threads = set(threads)
        counted = Counter(p["thread_ts"] for p in self.fake.of("chat.postMessage") if p.get("thread_ts") in threads)
        return Counter({t: counted.get(t, 0) for t in threads})

    def wait_answered(self, threads: Iterable[str], timeout: float) -> None:
        threads = list(threads)

        def done() -> bool:
            return all(self.counts(threads).values())

        try:
            wait_until(done, timeout, f"answers in {len(threads)} thread(s)", interval=0.2)
        except AssertionError as err:
            missing = [t for t, n in self.counts(threads).items() if not n]
            raise AssertionError(f"{err}; unanswered: {missing}") from None

    def settle(self, quiet: float = LEASE_S + 3 * SWEEP_S, timeout: float = 90) -> None:
        """Waits until the bot posted nothing (chat.*) for `quiet` seconds: a late duplicate from a sweeper or a
        redelivery would have arrived by then. Other calls (auth.test from health checks) do not count."""

        def quiet_now() -> bool:
            with self.fake._cond:
                last = max((c.at for c in self.fake.calls if c.method.startswith("chat.")), default=0.0)
            return time.monotonic() - last >= quiet

        wait_until(quiet_now, timeout, f"{quiet:.0f}s without chat.* calls", interval=0.2)


def approval_cards(fake: FakeSlack, channel: str = MKTG) -> list[dict[str, Any]]:
    """Messages as the fake holds them that carry approval buttons."""
    with fake._cond:
        held = list(fake.messages.get(channel, []))
    return [
        m for m in held
        if any(b["type"] == "actions" and b.get("block_id", "").startswith("approval:") for b in m.get("blocks") or [])
    ]  # fmt: skip


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir seeded as `make demo` does (SQLite store, warehouse, trained models, knowledge index), once."""
    return seed_data_dir(tmp_path_factory.mktemp("faults-seeded") / "var")


@pytest.fixture
def data_copy(tmp_path: Path, seeded_dir: Path) -> Callable[[str], Path]:
    """data_copy(name): a private copy of the seeded data dir (each replica gets its own disk)."""
    return lambda name: copy_data_dir(seeded_dir, tmp_path / f"data-{name}")


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster for the test module; stopped and removed afterwards."""
    cluster = PgCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def store_url(pg: PgCluster, seeded_dir: Path) -> str:
    """A fresh, migrated database on the module's cluster (with the seeded models recorded) for one test."""
    if not pg.running():  # an outage test left it stopped
        pg.start()
    return prepare_store(pg.create_database(), seeded_dir)


@pytest.fixture
def start_pair(
    replicas: Replicas, data_copy: Callable[[str], Path], store_url: str, slack: Slack
) -> Callable[..., tuple[Replica, Replica]]:
    """start_pair(short_lease=True, env=None): replicas a and b on the test's PostgreSQL database, each with its
    own data dir, both warmed up by a knowledge and a metric question (in threads of their own)."""

    def start(short_lease: bool = True, env: dict[str, str] | None = None) -> tuple[Replica, Replica]:
        values = (SHORT_LEASE if short_lease else RELAXED_LEASE) | (env or {})
        pair = [replicas.start(name, data_copy(name), store_url, values, wait=False) for name in ("a", "b")]
        for replica in pair:
            replica.wait_live()
        warm = [slack.ask(r, q)[0]["event"]["ts"] for r in pair for q in (KNOWLEDGE_Q, METRIC_Q)]
        slack.wait_answered(warm, timeout=90)
        return pair[0], pair[1]

    return start


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack(ts_prefix=str(next(_TS_PREFIXES))).start()
    yield fake
    fake.stop()


@pytest.fixture
def slack(fake: FakeSlack) -> Slack:
    return Slack(fake)


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path, fake: FakeSlack) -> Iterator[Replicas]:
    """Starts replicas (`replicas.start(name, data_dir, database_url=None, env=None, args=(), wait=True)`); every
    one still running is killed afterwards, and their log tails are printed when the test failed."""
    launcher = Replicas(tmp_path, fake.url)
    yield launcher
    launcher.stop_all()
    if request.node.stash.get(_FAILED, False):
        for replica in launcher.started:
            print(f"--- {replica.name} (exit {replica.proc.returncode}) {replica.out.parent} ---\n{replica.tail(60)}")
