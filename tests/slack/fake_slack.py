"""A fake Slack Web API on 127.0.0.1: answers the methods the app calls and records every call.

It keeps the messages it was sent (and those tests register as user messages) so `conversations.history` and
`conversations.replies` answer as Slack does: history lists parent messages only, replies list one thread.

Fault switches (off unless a test turns them on): `delay` answers matching calls late, `hold` keeps them until
`release`, `fail` answers them with an error. A delayed or held call whose client goes away (a killed replica)
is dropped: it is listed in `dropped`, never in `calls`, as Slack never finished receiving it.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_USER, BOT_ID, TEAM = "UBOT", "BBOT", "T0FAKE"
_JSON_FIELDS = ("blocks", "attachments", "view", "files")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)  # when the fake answered (or dropped) it


Match = Callable[[dict[str, Any]], bool]


@dataclass
class _Rule:
    kind: str  # "delay", "hold" or "fail"
    method: str
    match: Match | None
    seconds: float = 0.0
    error: str = ""
    times: int | None = None  # None: every matching call

    def applies(self, method: str, params: dict[str, Any]) -> bool:
        return self.method == method and self.times != 0 and (self.match is None or self.match(params))


@dataclass
class FakeSlack:
    """Start with `start()`; `url` is the base URL for WebClient. `rate_limit_once` names methods whose first call
    gets HTTP 429 with Retry-After: 0."""

    rate_limit_once: set[str] = field(default_factory=set)
    wss_url: str = ""
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> messages, oldest first
    uploads: list[dict[str, Any]] = field(default_factory=list)  # file bodies posted to the upload URLs
    ts_prefix: str = "1763300"  # message timestamps are f"{ts_prefix}{n:03d}.000100"
    dropped: list[Call] = field(default_factory=list)  # delayed or held calls whose client went away first
    paused: list[Call] = field(default_factory=list)  # calls a delay or hold rule caught, in arrival order

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._counter = itertools.count(1)
        self._limited: set[str] = set()
        self._last_call = time.monotonic()
        self._rules: list[_Rule] = []
        self._released = 0  # bumped by release(): held calls from before go on
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/"

    def start(self) -> FakeSlack:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    # --- what tests read ------------------------------------------------------------------------------------

    def new_ts(self) -> str:
        """A message timestamp later than every one handed out before (shared by bot and user messages)."""
        return f"{self.ts_prefix}{next(self._counter):03d}.000100"

    def add_user_message(self, channel: str, ts: str, user: str, text: str, thread_ts: str | None = None) -> None:
        message = {"type": "message", "user": user, "ts": ts, "text": text}
        if thread_ts:
            message["thread_ts"] = thread_ts
        with self._cond:
            self.messages.setdefault(channel, []).append(message)

    def of(self, method: str) -> list[dict[str, Any]]:
        """Params of the answered (HTTP 200) calls of `method`, in order."""
        with self._cond:
            return [c.params for c in self.calls if c.method == method and c.status == 200]

    def attempts(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Block until `method` was answered at least n times; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.of(method)) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"waited {timeout}s for {n} x {method}; calls so far: {seen}")
                self._cond.wait(left)
            return self.of(method)

    def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Block until no call arrived for `quiet` seconds (listeners still running would have called by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                idle = time.monotonic() - self._last_call
            if idle >= quiet:
                return
            time.sleep(quiet - idle)
        raise AssertionError(f"Slack calls kept arriving for {timeout}s")

    # --- fault switches -------------------------------------------------------------------------------------

    def delay(self, method: str, seconds: float, match: Match | None = None, times: int | None = None) -> None:
        """Answer calls of `method` (those `match` accepts; the first `times` of them) `seconds` late."""
        with self._cond:
            self._rules.append(_Rule("delay", method, match, seconds=seconds, times=times))

    def hold(self, method: str, match: Match | None = None, times: int | None = None) -> None:
        """Keep calls of `method` unanswered until `release()` (or until their client goes away)."""
        with self._cond:
            self._rules.append(_Rule("hold", method, match, times=times))

    def fail(self, method: str, error: str = "internal_error", match: Match | None = None,
             times: int | None = None) -> None:  # fmt: skip
        """Answer calls of `method` with `{"ok": false, "error": error}` (recorded with status 500)."""
        with self._cond:
            self._rules.append(_Rule("fail", method, match, error=error, times=times))

    def release(self) -> None:
        """Remove every fault switch; held calls are answered now."""
        with self._cond:
            self._rules.clear()
            self._released += 1
            self._cond.notify_all()

    def wait_paused(self, n: int, timeout: float = 20.0) -> list[Call]:
        """Block until at least n calls were caught by a delay or hold rule."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.paused) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout}s for {n} delayed/held calls; got {len(self.paused)}")
                self._cond.wait(left)
            return list(self.paused)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self._cond:
            return next(m for m in self.messages.get(channel, []) if m["ts"] == ts)

    # --- the API --------------------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        method = url.path.rstrip("/").rsplit("/", 1)[-1]
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
        data = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        if url.path.startswith("/upload/"):  # the file upload URL files.getUploadURLExternal handed out
            with self._cond:
                self.uploads.append({"file_id": url.path.rsplit("/", 1)[-1], "bytes": data})
                self._cond.notify_all()
            req.send_response(200)
            req.send_header("Content-Length", "2")
            req.end_headers()
            req.wfile.write(b"OK")
            return
        raw = data.decode()
        if raw and "json" in (req.headers.get("Content-Type") or ""):
            params.update(json.loads(raw))
        elif raw:
            params.update({k: v[0] for k, v in parse_qs(raw).items()})
        for key in _JSON_FIELDS:
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        failed = self._apply_rules(req, method, params) if self._rules else None
        if failed == "dropped":
            return
        with self._cond:
            limited = method in self.rate_limit_once and method not in self._limited
            if limited:
                self._limited.add(method)
            status = 429 if limited else 500 if failed else 200
            if failed:
                answer = {"ok": False, "error": failed}
            else:
                answer = {"ok": False, "error": "ratelimited"} if limited else self._answer(method, params)
            self.calls.append(Call(method, params, status))
            self._last_call = time.monotonic()
            self._cond.notify_all()
        body = json.dumps(answer).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        if limited:
            req.send_header("Retry-After", "0")
        req.end_headers()
        req.wfile.write(body)

    def _apply_rules(self, req: BaseHTTPRequestHandler, method: str, params: dict[str, Any]) -> str | None:
        """Waits out a delay or hold rule; returns "dropped" if the client left meanwhile, an error to answer
        with for a fail rule, else None."""
        with self._cond:
            rule = next((r for r in self._rules if r.applies(method, params)), None)
            if rule is None:
                return None
            if rule.times is not None:
                rule.times -= 1
            if rule.kind == "fail":
                return rule.error
            self.paused.append(Call(method, params))
            self._cond.notify_all()
            deadline = time.monotonic() + rule.seconds if rule.kind == "delay" else float("inf")
            released = self._released
            while True:
                if _client_gone(req.connection):
                    self.dropped.append(Call(method, params, status=0))
                    self._cond.notify_all()
                    return "dropped"
                left = deadline - time.monotonic()
                if left <= 0 or self._released != released:
                    return None
                self._cond.wait(min(0.05, left))

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "mopsbot",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}  # fmt: skip
        if method == "chat.postMessage":
            ts = self.new_ts()
            message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": ts, "text": p.get("text", "")}
            message |= {k: p[k] for k in ("blocks", "thread_ts") if p.get(k)}
            self.messages.setdefault(p["channel"], []).append(message)
            return {"ok": True, "channel": p["channel"], "ts": ts, "message": message}
        if method == "chat.update":
            found = [m for m in self.messages.get(p["channel"], []) if m["ts"] == p["ts"]]
            if not found:
                return {"ok": False, "error": "message_not_found"}
            found[0].update({k: p[k] for k in ("text", "blocks") if k in p})
            return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": p.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.new_ts()}
        if method == "views.open":
            return {"ok": True, "view": {**p.get("view", {}), "id": f"V{next(self._counter):08d}"}}
        if method == "conversations.history":
            return {"ok": True, "messages": self._history(p), "has_more": False}
        if method == "conversations.replies":
            thread = [m for m in self.messages.get(p["channel"], []) if m.get("thread_ts", m["ts"]) == p["ts"]]
            return {"ok": True, "messages": _window(thread, p, newest_first=False), "has_more": False}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._counter):08d}"
            return {"ok": True, "upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in p.get("files", [])]}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.wss_url}
        return {"ok": True}

    def _history(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        parents = [m for m in self.messages.get(p["channel"], []) if m.get("thread_ts", m["ts"]) == m["ts"]]
        return _window(parents, p, newest_first=True)


def _client_gone(sock: socket.socket) -> bool:
    """True when the peer closed the connection (it sends nothing more while it waits for our answer)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _window(messages: list[dict[str, Any]], p: dict[str, Any], newest_first: bool) -> list[dict[str, Any]]:
    inclusive = str(p.get("inclusive", "")).lower() in ("1", "true")
    latest, oldest = float(p.get("latest") or "inf"), float(p.get("oldest") or 0)

    def inside(ts: float) -> bool:
        return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

    picked = sorted((m for m in messages if inside(float(m["ts"]))), key=lambda m: float(m["ts"]))
    picked = picked[::-1] if newest_first else picked
    return picked[: int(p.get("limit") or 100)]
