"""A serving process's life: events in flight, draining on SIGTERM, and the sweeper that answers orphans.

Drain: stop taking events (new ones get 503, so Slack redelivers them, to another replica behind the load
balancer), let accepted events finish within the drain timeout, then give back the claims of any that did not,
so another replica answers them at once instead of after the lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Lifecycle:
    """Events accepted but not finished, and whether the process is draining. Thread-safe."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self._accepted: dict[str, float] = {}
        self._cond = threading.Condition()

    def accept(self, key: str) -> None:
        with self._cond:
            self._accepted[key] = time.monotonic()

    def done(self, key: str) -> None:
        with self._cond:
            self._accepted.pop(key, None)
            self._cond.notify_all()

    @contextmanager
    def turn(self, key: str | None) -> Iterator[None]:
        if key:
            self.accept(key)
        try:
            yield
        finally:
            if key:
                self.done(key)

    @property
    def in_flight(self) -> list[str]:
        with self._cond:
            return list(self._accepted)

    def drain(self, timeout_s: float) -> list[str]:
        """Stop accepting, wait up to `timeout_s` for accepted events; returns those still not finished."""
        self.draining.set()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._accepted and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self._accepted)


class Periodic(threading.Thread):
    """Runs `step` every `interval_s` until stopped; a failing step is logged and the next one still runs."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval_s = interval_s
        self.step = step
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                self.step()
            except Exception:
                log.exception("%s failed; it runs again in %.0f s", self.name, self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
