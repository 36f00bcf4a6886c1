"""Serving the Slack app: HTTP mode (signed requests on /slack/events) or Socket Mode, with the operator's endpoints
(/livez, /readyz, /metrics), the sweeper, the daily prune and a graceful drain on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from mopsbot.config import Settings
from mopsbot.observability import metrics as obs
from mopsbot.slack.app import SlackBot
from mopsbot.slack.health import Readiness
from mopsbot.slack.lifecycle import Periodic

log = logging.getLogger(__name__)


def _json(start_response: Callable[..., Any], status: str, payload: dict[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def wsgi_app(bot: SlackBot, readiness: Readiness | None = None) -> Callable[..., Iterable[bytes]]:
    """/slack/events (bolt verifies the signature; a bad one gets 401), /livez (and /healthz), /readyz, /metrics."""
    handler = SlackRequestHandler(bot.app)
    readiness = readiness or Readiness(bot, timeout_s=bot.settings.store_timeout_s)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/livez", "/healthz"):
            return _json(start_response, "200 OK", {"ok": True, "draining": bot.lifecycle.draining.is_set()})
        if path == "/readyz":
            report = readiness.report()
            return _json(start_response, "200 OK" if report["ready"] else "503 Service Unavailable", report)
        if path == "/metrics":
            body, content_type = obs.render()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/slack/"):
            start = time.perf_counter()
            try:
                return handler(environ, start_response)
            finally:
                obs.ACK_SECONDS.observe(time.perf_counter() - start)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


def http_server(bot: SlackBot, host: str, port: int) -> WSGIServer:
    """A threaded WSGI server (one thread per request, so acks never wait on a running turn)."""
    from socketserver import ThreadingMixIn

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 128  # bursts of events must not overflow the listen backlog (socketserver's is 5)

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http %s", format % args)

    return make_server(host, port, wsgi_app(bot), server_class=Threaded, handler_class=Quiet)


def socket_mode(bot: SlackBot, app_token: str) -> SocketModeHandler:
    return SocketModeHandler(bot.app, app_token)


class Service:
    """The background work of a serving process and its orderly stop.

    Sweeper (every MOPSBOT_SWEEP_INTERVAL_S): answers orphaned questions (claims whose replica died or drained),
    resumes or fails interrupted executions and tells their threads, expires old approvals. Pruner (every
    MOPSBOT_PRUNE_INTERVAL_H): processed events, old conversations. `stop()` drains: no new events, in-flight
    turns finish within MOPSBOT_DRAIN_TIMEOUT_S, the claims of those that did not are given back.
    """

    def __init__(self, bot: SlackBot, settings: Settings) -> None:
        self.bot = bot
        self.settings = settings
        # renewed three times a lease (and at least as often as the sweeper looks for orphans)
        heartbeat = min(settings.claim_lease_s / 3, settings.sweep_interval_s)
        self._threads = [
            Periodic("lease-renewer", heartbeat, self.renew),
            Periodic("sweeper", settings.sweep_interval_s, self.sweep),
            Periodic("pruner", settings.prune_interval_h * 3600, self.prune),
        ]
        self.stopped = threading.Event()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def renew(self) -> None:
        in_flight = self.bot.lifecycle.in_flight
        if in_flight:
            self.bot.claims.renew(in_flight)

    def sweep(self) -> None:
        if self.bot.lifecycle.draining.is_set():
            return
        self.bot.answer_orphans()
        approvals = self.bot.agent.approvals
        for recovered in approvals.recover():
            if recovered.channel_id and recovered.thread_ts:
                self.bot.app.client.chat_postMessage(
                    channel=recovered.channel_id, thread_ts=recovered.thread_ts, text=recovered.message
                )
        approvals.sweep()

    def prune(self) -> None:
        from mopsbot.store.retention import prune

        report = prune(
            self.bot.agent.store,
            now=datetime.now(UTC),
            event_retention_days=self.settings.event_retention_days,
            conversation_retention_days=self.settings.conversation_retention_days,
        )
        log.info("pruned: %s", report)

    def stop(self) -> list[str]:
        """Drain and stop the background work; returns the event ids given back unanswered."""
        for thread in self._threads[1:]:  # leases are renewed while the drain lets turns finish
            thread.stop()
        left = self.bot.lifecycle.drain(self.settings.drain_timeout_s)
        self._threads[0].stop()
        if left:
            try:
                released = self.bot.claims.release(left)
                log.warning(
                    "drain timed out: %d event(s) given back to other replicas (%d released)", len(left), released
                )
            except Exception as err:  # their leases run out instead
                log.error("could not give back %d claim(s): %s", len(left), type(err).__name__)
        self.stopped.set()
        return left


def on_stop_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT call `stop` once, off the signal handler (it waits for turns)."""
    fired = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if fired.is_set():
            return
        fired.set()
        log.info("received %s: draining", signal.Signals(signum).name)
        threading.Thread(target=stop, name="drain", daemon=False).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def serve_http(bot: SlackBot, settings: Settings, host: str, port: int, ready: Callable[[int], None]) -> None:
    """Serve until SIGTERM/SIGINT, then drain and return."""
    server = http_server(bot, host, port)
    service = Service(bot, settings)

    def stop() -> None:
        service.stop()
        server.shutdown()

    on_stop_signals(stop)
    service.start()
    ready(server.server_port)
    server.serve_forever(poll_interval=0.2)
    service.stopped.wait()
    server.server_close()


def serve_socket_mode(bot: SlackBot, settings: Settings, app_token: str) -> None:
    """Socket Mode until SIGTERM/SIGINT, then drain and close the connection."""
    handler = socket_mode(bot, app_token)
    service = Service(bot, settings)
    done = threading.Event()

    def stop() -> None:
        service.stop()
        handler.close()
        done.set()

    on_stop_signals(stop)
    service.start()
    handler.connect()
    done.wait()
