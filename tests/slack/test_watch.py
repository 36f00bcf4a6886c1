"""`mopsbot watch`: each new anomaly is posted once to the alerts channel with a fix proposed for approval."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select

from mopsbot.agent.factory import open_metrics
from mopsbot.slack.watch import WATCH_USER, WatchConfig, run_once
from mopsbot.store.models import PendingAction
from tests.slack.conftest import REPO, Harness

ALERTS = "C07MOPSALR"


def test_alerts_post_once_and_propose_fixes_that_wait_for_a_person(make_bot: Callable[..., Harness]) -> None:
    harness = make_bot()
    config = WatchConfig.load(REPO / "tools" / "watch.yaml")
    engine = open_metrics(harness.bot.settings)
    posted = run_once(harness.bot, engine, config, date(2026, 11, 16))
    texts = [p["text"] for p in posted]
    assert any("CPL anomaly in paid_social · EMEA for 2026-10-01" in t for t in texts)
    assert any("Hard bounce rate anomaly for 2026-09-16" in t for t in texts)
    alerts = [c for c in harness.fake.of("chat.postMessage") if c["channel"] == ALERTS and not c.get("thread_ts")]
    assert len(alerts) == len(posted)
    # every fix is a pending change request requested by the watcher, with a card in the alert's thread
    cards = [c for c in harness.fake.of("chat.postMessage") if c.get("thread_ts") and "Approval needed" in c["text"]]
    pending_ids = [a for p in posted for a in p["pending"]]
    assert len(cards) == len(pending_ids) >= 2
    with harness.bot.agent.store.session() as s:
        actions = s.scalars(select(PendingAction).where(PendingAction.id.in_(pending_ids))).all()
        assert {a.requester_id for a in actions} == {WATCH_USER}
        assert {a.status for a in actions} == {"pending"}
        assert any("Pause paid_social campaigns in EMEA" in a.summary for a in actions)
    # a second run finds the same anomalies and posts nothing new
    assert run_once(harness.bot, engine, config, date(2026, 11, 16)) == []
