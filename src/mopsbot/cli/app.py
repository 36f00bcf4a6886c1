"""The root `mopsbot` command, the demo and db groups, chat, and the commands that later issues bring."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mopsbot import __version__
from mopsbot.cli.agent import ask
from mopsbot.cli.audit import audit_app
from mopsbot.cli.common import console, fail, load
from mopsbot.cli.evals import eval_command
from mopsbot.cli.knowledge import knowledge_app
from mopsbot.cli.metrics import metrics_app
from mopsbot.cli.models import models_app
from mopsbot.cli.writes import approvals_app, campaigns_app, changes_app

app = typer.Typer(
    help="mopsbot: a Marketing-Operations copilot for Slack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="The demo workspace: seed the warehouse, show what is in it.", no_args_is_help=True)
db_app = typer.Typer(help="The bot state store: apply migrations, show the schema revision.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(db_app, name="db")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(metrics_app, name="metrics")
app.add_typer(models_app, name="models")
app.add_typer(approvals_app, name="approvals")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(changes_app, name="changes")
app.add_typer(audit_app, name="audit")
app.command("ask")(ask)
app.command("eval")(eval_command)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        console.print(__version__)
        raise typer.Exit()


@app.command()
def chat(
    user: Annotated[str | None, typer.Option(help="Slack user id to act as (default MOPSBOT_LOCAL_USER).")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, local or openai (default MOPSBOT_LLM).")] = None,
) -> None:
    """Chat with mopsbot in the terminal (/help, /whoami, /approve, /reject, /quit)."""
    from mopsbot.cli.agent import agent_factory
    from mopsbot.terminal import run_chat

    settings = load()
    run_chat(settings, user or settings.local_user, console, agent_factory(settings, backend))


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="HTTP mode (signed requests) instead of Socket Mode.")] = False,
    host: Annotated[str, typer.Option(help="HTTP mode: address to bind.")] = "0.0.0.0",  # noqa: S104 - a server
    port: Annotated[int | None, typer.Option(help="HTTP mode: port (default MOPSBOT_PORT).")] = None,
    init: Annotated[
        bool, typer.Option("--init", help="Create the state store if the data directory has none (first start).")
    ] = False,
) -> None:
    """Run the Slack app: Socket Mode (SLACK_APP_TOKEN) or HTTP mode with --http (/slack/events, /livez, /readyz,
    /metrics). SIGTERM or SIGINT drains: no new events, in-flight answers finish (MOPSBOT_DRAIN_TIMEOUT_S)."""
    import logging
    import os

    from mopsbot.cli.agent import agent_factory
    from mopsbot.errors import UserFacingError
    from mopsbot.slack.app import SlackBot
    from mopsbot.slack.server import serve_http, serve_socket_mode

    settings = load(service=True)
    if not settings.slack_bot_token:
        fail("set SLACK_BOT_TOKEN (xoxb-...) to serve Slack; see the README's Slack app section", code=2)
    if http and not settings.slack_signing_secret:
        fail("HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests", code=2)
    if not http and not settings.slack_app_token:
        fail("Socket Mode needs SLACK_APP_TOKEN (xapp-...); or run `mopsbot serve --http`", code=2)
    store_file = settings.data_dir / "mopsbot.db"
    if settings.database_url is None and not store_file.exists() and not init:
        fail(
            f"no state store at {store_file.resolve()}: the data directory (MOPSBOT_DATA_DIR) is missing or empty. "
            "Initialise it with `mopsbot db upgrade` (or `make demo`), point MOPSBOT_DATA_DIR at the right one, "
            "or pass --init to start with an empty store.",
            code=2,
        )
    bot = SlackBot(settings, agent_factory(settings, None))
    try:
        bot.agent  # noqa: B018 - build (and migrate the store) once, before the first event arrives
    except UserFacingError as err:
        fail(str(err))
    import gc

    gc.freeze()  # the long-lived objects built so far leave the collector's scans: shorter pauses under load
    if http:
        serve_http(
            bot,
            settings,
            host,
            port if port is not None else settings.port,
            lambda bound: console.print(
                f"mopsbot serving Slack over HTTP on {host}:{bound} (/slack/events, /livez, /readyz, /metrics)"
            ),
        )
    else:
        console.print("mopsbot connecting to Slack in Socket Mode")
        serve_socket_mode(bot, settings, settings.slack_app_token.get_secret_value())  # type: ignore[union-attr]
    console.print("mopsbot stopped")
    logging.shutdown()
    os._exit(0)  # a turn that outlived the drain timeout must not hold the exit (its claim was given back)


@app.command()
def watch(
    once: Annotated[bool, typer.Option("--once", help="Run the checks once and exit.")] = False,
) -> None:
    """Run the anomaly checks of tools/watch.yaml on a schedule; post alerts and proposed fixes to Slack."""
    from mopsbot.agent.factory import open_metrics
    from mopsbot.cli.agent import agent_factory
    from mopsbot.errors import UserFacingError
    from mopsbot.slack.app import SlackBot
    from mopsbot.slack.watch import WatchConfig, run_forever, run_once
    from mopsbot.workspace import WorkspaceError

    settings = load(service=True)
    if not settings.slack_bot_token:
        fail("set SLACK_BOT_TOKEN (xoxb-...) so alerts can be posted; see the README's Slack app section", code=2)
    try:
        config = WatchConfig.load(settings.tools_dir / "watch.yaml")
    except WorkspaceError as err:
        fail(str(err), code=2)
    bot = SlackBot(settings, agent_factory(settings, None))
    engine = open_metrics(settings)
    if once:
        try:
            posted = run_once(bot, engine, config, settings.today or date.today())
        except UserFacingError as err:
            fail(str(err))
        console.print(f"{len(posted)} new alert(s) posted to {config.channel}")
        return
    console.print(
        f"watching {len(config.checks)} checks every {config.interval_minutes} min, alerts to {config.channel}"
    )
    run_forever(bot, engine, config, settings.today)


@demo_app.command("seed")
def demo_seed(
    scale: Annotated[float, typer.Option(help="Volume multiplier; 25 gives about 10M touchpoints.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed and scale give the same data.")] = 7,
    path: Annotated[Path | None, typer.Option(help="duckdb file to write (default MOPSBOT_WAREHOUSE_PATH).")] = None,
) -> None:
    """Generate the demo warehouse (deterministic) and apply the state-store migrations."""
    from mopsbot.demo.generator import STEPS, generate
    from mopsbot.store.db import Store, StoreUnavailable

    settings = load()
    target = path or settings.resolved_warehouse_path
    if scale <= 0:
        fail("--scale must be greater than 0", code=2)
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as bar:
        task = bar.add_task("seeding", total=len(STEPS))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=STEPS.index(name))

        result = generate(target, seed=seed, scale=scale, progress=step)
        bar.update(task, description="done", completed=len(STEPS))
    console.print(f"demo warehouse written to {target}")
    table = Table(show_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    try:
        Store.open(settings.resolved_database_url).close()
    except StoreUnavailable as err:
        fail(str(err))
    _train_demo_models(settings, target)


def _train_demo_models(settings, warehouse: Path) -> None:
    """Fit the workspace's models on the new warehouse (artifacts under <data_dir>/models, verified on load)."""
    from mopsbot.audit.artifacts import AuditLedger
    from mopsbot.errors import UserFacingError
    from mopsbot.metrics.engine import MetricsEngine
    from mopsbot.predictions.service import Predictions
    from mopsbot.store.db import Store

    engine = MetricsEngine(settings.tools_dir / "metrics.yaml", warehouse)
    try:
        ledger = AuditLedger(Store.open(settings.resolved_database_url))  # training records each artifact's hashes
        predictions = Predictions(settings.tools_dir / "models", settings.data_dir / "models", engine.cursor, ledger)
        for name, card in predictions.cards.items():
            if card.label:
                spec = predictions.train(name).spec
                quality = ", ".join(f"{k} {v}" for k, v in spec.metrics.items() if k in ("auc", "brier", "r2"))
                console.print(f"model {name} {spec.version} trained: {quality}", highlight=False)
    except UserFacingError as err:
        fail(str(err))
    finally:
        engine.close()


@demo_app.command("info")
def demo_info(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the demo warehouse's tables, row counts and data freshness."""
    from mopsbot.demo.inspect import WarehouseMissing, describe_warehouse

    settings = load()
    try:
        info = describe_warehouse(settings.resolved_warehouse_path)
    except WarehouseMissing as err:
        fail(str(err))
    if json_out:
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        return
    console.print(str(settings.resolved_warehouse_path))
    table = Table(show_edge=False)
    for col in ("table", "rows", "latest"):
        table.add_column(col)
    for name, t in info["tables"].items():
        table.add_row(name, f"{t['rows']:,}", str(t["latest"] or ""))
    console.print(table)
    console.print(f"seed {info['meta'].get('seed')}, scale {info['meta'].get('scale')}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the state-store migrations (SQLite or PostgreSQL, per MOPSBOT_DATABASE_URL)."""
    from mopsbot.store.db import StoreUnavailable, current_revision, make_engine, safe_url, upgrade

    settings = load()
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine, revision)
        console.print(f"{safe_url(settings.resolved_database_url)} is at revision {current_revision(engine)}")
    except StoreUnavailable as err:
        fail(str(err))
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the state store's migration revision and the newest one available."""
    from sqlalchemy.exc import OperationalError

    from mopsbot.store.db import current_revision, head_revision, make_engine, safe_url

    settings = load()
    engine = make_engine(settings.resolved_database_url)
    try:
        rev = current_revision(engine)
    except OperationalError as err:
        fail(f"cannot reach the state store at {safe_url(settings.resolved_database_url)}: {err.orig}")
    finally:
        engine.dispose()
    console.print(f"current: {rev or 'none (run `mopsbot db upgrade`)'}; newest: {head_revision()}")


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete processed Slack events and idle conversations past their retention (MOPSBOT_*_RETENTION_DAYS)."""
    from datetime import UTC, datetime

    from sqlalchemy.exc import OperationalError

    from mopsbot.store.db import Store, current_revision, head_revision, make_engine, safe_url
    from mopsbot.store.retention import prune

    settings = load()
    url = settings.resolved_database_url
    store = Store(make_engine(url))  # not migrated here: the runtime role may not run DDL
    try:
        if current_revision(store.engine) != head_revision():
            fail(f"the state store at {safe_url(url)} is not at the newest revision; run `mopsbot db upgrade` first")
        report = prune(
            store,
            now=datetime.now(UTC),
            event_retention_days=settings.event_retention_days,
            conversation_retention_days=settings.conversation_retention_days,
            dry_run=dry_run,
        )
    except OperationalError as err:
        fail(f"cannot reach the state store at {safe_url(url)}: {err.orig}")
    finally:
        store.close()
    counts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in report.counts().items())
    kept = (
        f"conversations idle over {settings.conversation_retention_days:g} days"
        if settings.conversation_retention_days
        else "conversations kept"
    )
    console.print(
        f"{'would delete' if dry_run else 'deleted'} {counts} "
        f"(events older than {settings.event_retention_days:g} days; {kept})",
        highlight=False,
    )


@db_app.command("grant-runtime")
def db_grant_runtime(role: Annotated[str, typer.Argument(help="PostgreSQL role the running bot connects as.")]) -> None:
    """PostgreSQL: let ROLE run the bot but only read and append to the audit log (run as the owner)."""
    from mopsbot.store.db import grant_runtime_role, make_engine, safe_url

    settings = load()
    engine = make_engine(settings.resolved_database_url)
    try:
        for statement in grant_runtime_role(engine, role):
            console.print(statement, markup=False, highlight=False)
    except ValueError as err:
        fail(str(err), code=2)
    finally:
        engine.dispose()
    console.print(f"{role} may now run mopsbot on {safe_url(settings.resolved_database_url)}; audit_events is "
                  "append-only for it", markup=False)  # fmt: skip


def main() -> None:
    app()
