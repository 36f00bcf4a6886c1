"""`mopsbot watch`: anomaly checks on a schedule, alerts in the alerts channel, fixes proposed for approval.

Each anomaly is posted once (its key is kept with the processed Slack events). A check's remediation becomes a
change request proposed through the agent's own tool path, so it waits for an authorized approver on the card
posted in the alert's thread; the bot never approves its own proposal.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mopsbot.caller import CallerContext
from mopsbot.metrics.anomalies import Anomaly, detect
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.present import format_change, format_value
from mopsbot.metrics.query import MetricQuery
from mopsbot.slack.app import SlackBot
from mopsbot.workspace import WorkspaceError, load_yaml

log = logging.getLogger(__name__)
WATCH_USER = "mopsbot-watch"  # the requester of proposed fixes: never an approver


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    by: list[str] = Field(default_factory=list, max_length=2)
    grain: Literal["day", "week", "month"] = "month"
    period: str = "last 90 days"
    window: int | None = Field(None, ge=3, le=90)
    remediation: dict[str, Any] | None = None  # change request fields, with {placeholders}


class WatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    channel: str
    interval_minutes: int = Field(60, ge=1, le=1440)
    checks: list[Check] = Field(min_length=1)

    @classmethod
    def load(cls, path: Path) -> WatchConfig:
        try:
            return cls.model_validate(load_yaml(path))
        except ValidationError as err:
            first = err.errors()[0]
            raise WorkspaceError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _fields(anomaly: Anomaly, unit: str) -> dict[str, str]:
    return {
        **{k: str(v) for k, v in anomaly.group.items()},
        "bucket": anomaly.bucket,
        "value": format_value(anomaly.value, unit),
        "baseline": format_value(anomaly.baseline, unit),
        "change": format_change(anomaly.change),
        "metric": anomaly.metric,
    }


class _Fields(dict):
    def __missing__(self, key: str) -> str:  # a placeholder the anomaly cannot fill stays visible
        return "{" + key + "}"


def _fill(template: Any, fields: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format_map(_Fields(fields))
    if isinstance(template, list):
        return [_fill(t, fields) for t in template]
    return template


def run_once(bot: SlackBot, engine: MetricsEngine, config: WatchConfig, today: date) -> list[dict[str, Any]]:
    """Run every check; post each new anomaly and propose its fix. Returns what was posted."""
    posted = []
    client = bot.app.client
    for check in config.checks:
        period = engine.period_of(MetricQuery(metrics=[check.metric], period=check.period), today)
        found, series = detect(engine, check.metric, check.by, check.grain, period, window=check.window)
        name = series["metrics"][0]
        unit, label = series["units"][name], series["labels"][name]
        for anomaly in found:
            key = f"watch:{name}:{'|'.join(str(v) for v in anomaly.group.values())}:{anomaly.bucket}"
            if not _first_time(bot, key):
                continue
            fields = _fields(anomaly, unit)
            where = " · ".join(str(v) for v in anomaly.group.values())
            text = (
                f":rotating_light: {label} anomaly{(' in ' + where) if where else ''} for {anomaly.bucket}: "
                f"{fields['value']} against a trailing baseline of {fields['baseline']} ({fields['change']}, robust "
                f"z {anomaly.z}). Data through {min(series['freshness'].values())}."
            )
            message = client.chat_postMessage(channel=config.channel, text=text)
            thread = message["ts"]
            entry: dict[str, Any] = {"key": key, "text": text, "ts": thread, "pending": []}
            if check.remediation:
                args = {k: _fill(v, fields) for k, v in check.remediation.items()}
                caller = CallerContext(WATCH_USER, config.channel, "ops", thread)
                note = f"Proposed fix for the {label} anomaly: {args.get('title', '')}"
                record = bot.agent.run_tool("file_change_request", args, caller, thread, note)
                for action in record.pending_actions:
                    bot._post_card(client, config.channel, thread, action.id)
                    entry["pending"].append(action.id)
                if not record.pending_actions:
                    client.chat_postMessage(channel=config.channel, thread_ts=thread, text=record.answer)
            posted.append(entry)
    return posted


def _first_time(bot: SlackBot, key: str) -> bool:
    return bot.claims.once(key)


def run_forever(bot: SlackBot, engine: MetricsEngine, config: WatchConfig, today: date | None = None) -> None:
    """Run the checks every interval; a failing run is logged and the next one still happens."""
    while True:
        try:
            posted = run_once(bot, engine, config, today or date.today())
            log.info("watch run posted %d alerts", len(posted))
        except Exception:
            log.exception("watch run failed")
        time.sleep(config.interval_minutes * 60)
