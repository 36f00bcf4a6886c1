"""`mopsbot models`: model cards, training, exact explanations, what-if and batch scores from the terminal."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mopsbot.cli.common import console, fail, load
from mopsbot.errors import UserFacingError

models_app = typer.Typer(help="Model cards and explanations of single predictions.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _deps():
    from mopsbot.agent.factory import open_metrics, open_predictions
    from mopsbot.caller import CallerContext
    from mopsbot.store.db import Store
    from mopsbot.tools.base import ToolContext, ToolDeps

    settings = load()
    metrics = open_metrics(settings)
    predictions = open_predictions(settings, metrics, Store.open(settings.resolved_database_url))
    deps = ToolDeps(
        CallerContext("cli"), metrics=metrics, predictions=predictions, today=settings.today or date.today()
    )
    return ToolContext(deps)


def _out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def _run(tool, args_model, **args):
    from pydantic import ValidationError

    ctx = _deps()
    try:
        return tool.fn(ctx, args_model(**args))
    except ValidationError as err:
        fail(f"invalid arguments: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}", code=2)
    except UserFacingError as err:
        fail(str(err), code=2)


@models_app.command("list")
def list_command(json_out: JsonOpt = False) -> None:
    """List the workspace's models (tools/models/) and whether each is trained."""
    ctx = _deps()
    rows = []
    try:
        cards = ctx.deps.predictions.cards
    except UserFacingError as err:
        fail(str(err), code=2)
    for name, card in cards.items():
        try:
            spec = ctx.deps.predictions.model(name).spec
            state, auc = f"trained {spec.trained_at}", spec.metrics.get("auc", spec.metrics.get("r2"))
        except UserFacingError as err:
            state, auc = str(err), None
        rows.append(
            {
                "name": name,
                "title": card.title,
                "version": card.version,
                "kind": card.kind,
                "state": state,
                "quality": auc,
            }
        )
    if json_out:
        _out(rows)
        return
    table = Table(show_edge=False)
    for col in ("name", "title", "version", "kind", "quality", "state"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["title"], r["version"], r["kind"], str(r["quality"] or ""), r["state"])
    console.print(table)


@models_app.command("train")
def train_command(
    name: Annotated[str | None, typer.Argument(help="Model name (default: every card with a label).")] = None,
) -> None:
    """Fit models on the warehouse and write verified artifacts under <data_dir>/models."""
    ctx = _deps()
    try:
        names = [name] if name else [n for n, c in ctx.deps.predictions.cards.items() if c.label]
        for n in names:
            m = ctx.deps.predictions.train(n).spec
            quality = ", ".join(f"{k} {v}" for k, v in m.metrics.items() if k in ("auc", "brier", "r2", "mae"))
            console.print(f"{n} {m.version}: {m.training_rows:,} rows, {quality}", highlight=False)
    except UserFacingError as err:
        fail(str(err), code=2)


@models_app.command("card")
def card_command(
    name: Annotated[str, typer.Argument(help="Model name, e.g. lead_score.")] = "lead_score", json_out: JsonOpt = False
) -> None:
    """Show a model card with its measured quality (AUC, Brier score, calibration by score band)."""
    from mopsbot.tools.predictions import ModelCardArgs, model_card

    d = _run(model_card, ModelCardArgs, model=name).data
    if json_out:
        _out(d)
        return
    console.print(f"[bold]{d['title']}[/bold] {d['version']} — {d['purpose']}", highlight=False)
    trained = f"trained {d['trained_at']} on {d['training_rows']:,} rows ({d['training_window']})"
    console.print(f"target: {d['target']}; {trained}", highlight=False)
    m = d["metrics"]
    console.print(", ".join(f"{k} {v}" for k, v in m.items() if not isinstance(v, list)), highlight=False)
    if m.get("calibration"):
        table = Table(title="calibration on the holdout", show_edge=False)
        for col in ("band", "rows", "predicted", "observed", "well calibrated"):
            table.add_column(col)
        for r in m["calibration"]:
            verdict = {True: "yes", False: "NO", None: "too few rows"}[r["well_calibrated"]]
            table.add_row(r["band"], str(r["rows"]), str(r["predicted"]), str(r["observed"]), verdict)
        console.print(table)
    console.print(
        "features: " + "; ".join(f"{f['business_name']} ({f['name']})" for f in d["features"]), highlight=False
    )


@models_app.command("explain")
def explain_command(
    entity_id: Annotated[int, typer.Argument(help="The lead (entity) id.")],
    model: Annotated[str, typer.Option(help="Model name.")] = "lead_score",
    json_out: JsonOpt = False,
) -> None:
    """Explain one prediction exactly: score, tier, baseline, top factors, calibration, caveats."""
    from mopsbot.agent.local.predictions import explanation_text
    from mopsbot.tools.predictions import ExplainArgs, explain_prediction

    result = _run(explain_prediction, ExplainArgs, model=model, entity_id=entity_id)
    if json_out:
        _out(result.data)
        return
    console.print(explanation_text(result.data, None), highlight=False, markup=False)


@models_app.command("what-if")
def what_if_command(
    entity_id: Annotated[int, typer.Argument(help="The lead (entity) id.")],
    changes: Annotated[list[str], typer.Argument(help="feature=value, e.g. webinar_attended=yes.")],
    model: Annotated[str, typer.Option(help="Model name.")] = "lead_score",
    json_out: JsonOpt = False,
) -> None:
    """Score an entity with some inputs changed and show which contributions moved."""
    from mopsbot.agent.local.predictions import what_if_text
    from mopsbot.tools.predictions import WhatIfArgs, what_if

    parsed = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or not key:
            fail(f"{change!r}: write feature=value", code=2)
        parsed[key.strip()] = value.strip()
    result = _run(what_if, WhatIfArgs, model=model, entity_id=entity_id, changes=parsed)
    if json_out:
        _out(result.data)
        return
    console.print(what_if_text(result.data), highlight=False, markup=False)


@models_app.command("score")
def score_command(
    period: Annotated[str | None, typer.Option(help="e.g. 'this week', 'October 2026'.")] = None,
    date_column: Annotated[str, typer.Option(help="created_at, mql_at or sql_at.")] = "mql_at",
    region: Annotated[list[str] | None, typer.Option(help="NA, EMEA, APAC, LATAM (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 10,
    model: Annotated[str, typer.Option(help="Model name.")] = "lead_score",
    json_out: JsonOpt = False,
) -> None:
    """Rank entities by score (batch scoring), e.g. this week's MQLs."""
    from mopsbot.tools.predictions import ScoreLeadsArgs, score_leads

    result = _run(
        score_leads,
        ScoreLeadsArgs,
        model=model,
        period=period,
        date_column=date_column,
        region=region or [],
        limit=limit,
    )
    if json_out:
        _out(result.data)
        return
    d = result.data
    console.print(f"{d['scored']:,} scored; tiers {d.get('tiers')}", highlight=False)
    for r in d["rows"]:
        console.print(f"  {r.get('lead_id')}: {r['score']:.0f} ({r['tier']})", highlight=False)


@models_app.command("register")
def register_command(
    card: Annotated[Path, typer.Argument(help="The model card YAML (copied to tools/models/).")],
    artifact: Annotated[Path, typer.Argument(help="A skops file of a fitted scikit-learn linear model.")],
    spec: Annotated[Path, typer.Argument(help="spec.json: the feature encoding and training statistics.")],
) -> None:
    """Register a team's own scikit-learn model: checked (skops trusted types, linear, inputs match), then trusted."""
    import tempfile

    from mopsbot.audit.artifacts import AuditLedger
    from mopsbot.predictions.card import load_card
    from mopsbot.predictions.model import file_hashes, write_manifest
    from mopsbot.predictions.model import load as load_artifact
    from mopsbot.store.db import Store

    settings = load()
    try:
        parsed = load_card(card)
        for path in (artifact, spec):
            if not path.is_file():
                raise UserFacingError(f"{path}: file not found")
        # check a staged copy first: a refused model never touches the registered one
        with tempfile.TemporaryDirectory(prefix="mopsbot-register-") as tmp:
            staged = Path(tmp) / parsed.name / parsed.version
            staged.mkdir(parents=True)
            shutil.copyfile(artifact, staged / "model.skops")
            shutil.copyfile(spec, staged / "spec.json")
            write_manifest(staged, source=f"registered from {artifact}")
            load_artifact(parsed, Path(tmp))  # refuses untrusted types, non-linear models, mismatched inputs
            folder = settings.data_dir / "models" / parsed.name / parsed.version
            if folder.exists():
                shutil.rmtree(folder)
            folder.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staged, folder)
        AuditLedger(Store.open(settings.resolved_database_url)).record(
            parsed.name, parsed.version, file_hashes(folder), _os_user(), f"registered from {artifact.name}"
        )
    except UserFacingError as err:
        fail(str(err), code=2)
    target = settings.tools_dir / "models" / f"{parsed.name}.yaml"
    if card.resolve() != target.resolve():
        shutil.copyfile(card, target)
    console.print(f"registered {parsed.name} {parsed.version}: card {target}, artifact {folder}", highlight=False)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"
