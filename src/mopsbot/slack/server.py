"""Serving the Slack app: HTTP mode (signed requests on /slack/events, plus /healthz) or Socket Mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from mopsbot.slack.app import SlackBot

log = logging.getLogger(__name__)


def wsgi_app(bot: SlackBot) -> Callable[..., Iterable[bytes]]:
    """/slack/events (bolt verifies the signature; a bad one gets 401) and /healthz for load balancers."""
    handler = SlackRequestHandler(bot.app)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            body = json.dumps({"ok": True}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/slack/"):
            return handler(environ, start_response)
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
