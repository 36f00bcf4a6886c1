"""`mopsbot eval`: the offline evals suite with a scorecard, a diff against the baseline and gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mopsbot.cli.common import console, fail, load

SUITES = ("agent", "retrieval")


def eval_command(
    suite: Annotated[str | None, typer.Option(help="agent or retrieval (default: both).")] = None,
    backend: Annotated[
        str, typer.Option(help="local, openai (live endpoint) or replay (recorded cassettes).")
    ] = "local",
    out: Annotated[Path, typer.Option(help="Where results.jsonl, summary.md and summary.json go.")] = Path("var/evals"),
    record: Annotated[bool, typer.Option(help="With --backend openai: record cassettes for later replay.")] = False,
    update_baseline: Annotated[bool, typer.Option(help="Save this run as the baseline to diff against.")] = False,
    case: Annotated[
        list[str] | None, typer.Option(help="Only cases whose id starts with this (repeatable); e.g. to re-record.")
    ] = None,
) -> None:
    """Run the offline evals suite and print a scorecard; exits 1 when a gate fails."""
    settings = load()
    if suite not in (None, *SUITES):
        fail(f"--suite must be one of {', '.join(SUITES)}", code=2)
    if backend not in ("local", "openai", "replay"):
        fail("--backend must be local, openai or replay", code=2)
    if record and backend != "openai":
        fail("--record needs --backend openai (a live endpoint to record from)", code=2)
    if case and update_baseline:
        fail("--update-baseline needs the whole suite (drop --case)", code=2)
    passed = True
    for name in [suite] if suite else SUITES:
        passed &= _run(name, backend, out / name, record, update_baseline, settings, case or [])
    if not passed:
        raise typer.Exit(1)


def _run(suite: str, backend: str, out: Path, record: bool, update_baseline: bool, settings, only: list[str]) -> bool:
    from mopsbot.knowledge.service import open_knowledge

    knowledge = open_knowledge(settings)
    knowledge.index.ingest([settings.knowledge_dir])
    if suite == "retrieval":
        from mopsbot.knowledge.evaluate import load_cases, run_eval

        results = run_eval(
            knowledge.retriever, load_cases(settings.workspace / "evals" / "retrieval" / "questions.yaml")
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(results["summary"], indent=2))
        with (out / "results.jsonl").open("w") as f:
            for row in results["cases"]:
                f.write(json.dumps(row, default=str) + "\n")
        s = results["summary"]
        console.print(
            f"[bold]retrieval[/bold]: recall@5 {s['recall_at_5']}, MRR {s['mrr']}, no-answer accuracy "
            f"{s['no_answer_accuracy']}, leaks {s['leaks']} -> {'pass' if s['passed'] else 'FAIL'}"
        )
        return bool(s["passed"])
    return _run_agent(suite, backend, out, record, update_baseline, settings, knowledge, only)


def _train_missing_models(settings, metrics, open_predictions) -> dict:
    """Prediction cases need trained models: fit the ones with no verified artifact yet (seconds on the demo
    warehouse). Returns {(name, version): file hashes} as the data dir's audit log records them."""
    from mopsbot.errors import UserFacingError

    if not settings.resolved_warehouse_path.exists():
        return {}  # metric and prediction cases then fail with "run `mopsbot demo seed`", which is the right message
    from mopsbot.store.db import Store

    predictions = open_predictions(settings, metrics, Store.open(settings.resolved_database_url))
    for name, card in predictions.cards.items():
        try:
            predictions.model(name)
        except UserFacingError:
            if card.label:
                predictions.train(name)
                console.print(f"trained model {name} for the evals", highlight=False)
    recorded = {(c.name, c.version): predictions.ledger.lookup(c.name, c.version) for c in predictions.cards.values()}
    return {key: files for key, files in recorded.items() if files}


def _run_agent(suite, backend, out, record, update_baseline, settings, knowledge, only) -> bool:
    from mopsbot.agent.factory import build_agent
    from mopsbot.agent.openai_backend import make_client
    from mopsbot.evals import report
    from mopsbot.evals.cases import CaseError, load_suite
    from mopsbot.evals.runner import run_suite

    folder = settings.workspace / "evals" / suite
    try:
        cases = load_suite(folder)
    except CaseError as err:
        fail(str(err), code=2)
    if only:
        cases = [c for c in cases if any(c.id.startswith(prefix) for prefix in only)]
        if not cases:
            fail(f"no case id starts with {', '.join(only)}", code=2)
    cassette = None
    client = None
    if backend in ("replay", "openai"):
        from mopsbot.evals.cassettes import recorder

        cassettes = settings.workspace / "evals" / "cassettes" / suite
        if backend == "replay":
            missing = [c.id for c in cases if not (cassettes / f"{c.id}.yaml").exists()]
            if missing:
                fail(
                    f"no recorded cassette for {len(missing)} case(s), e.g. {missing[0]}; record with "
                    "`mopsbot eval --backend openai --record` against a live endpoint",
                    code=2,
                )
            client = make_client("http://127.0.0.1:9/v1", "replay", settings.llm_timeout_s, 0)
        if backend == "replay" or record:
            rec = recorder(cassettes, record)

            def cassette(case):
                if record:  # vcrpy's record mode "all" appends to an existing cassette; start it afresh
                    (cassettes / f"{case.id}.yaml").unlink(missing_ok=True)
                return rec.use_cassette(f"{case.id}.yaml")

    kind = "openai" if backend in ("replay", "openai") else "local"
    recorded_with = settings.workspace / "evals" / "cassettes" / suite / "recorded_with.json"
    if record:
        recorded_with.parent.mkdir(parents=True, exist_ok=True)
        recorded_with.write_text(
            json.dumps(
                {
                    "model": settings.model,
                    "first_tool": settings.first_tool,
                    "max_answer_tokens": settings.max_answer_tokens,
                },
                indent=2,
            )
            + "\n"
        )
    # replay must send the same requests as the recording did: same model name, forced first tool, token limit
    replay_as = json.loads(recorded_with.read_text()) if backend == "replay" and recorded_with.exists() else {}

    from mopsbot.agent.factory import open_metrics, open_predictions
    from mopsbot.audit.artifacts import AuditLedger

    metrics = open_metrics(settings)  # one engine (catalog + read-only warehouse) for every case
    trained = _train_missing_models(settings, metrics, open_predictions)

    def make_agent(store):
        # each case has a fresh store: it learns the artifacts the eval set-up trained, as an operator's store would
        ledger = AuditLedger(store)
        for (name, version), files in trained.items():
            ledger.record(name, version, files, "eval-setup", "trained for the evals")
        agent = build_agent(settings, backend=kind, store=store, knowledge=knowledge, client=client, metrics=metrics)
        if replay_as:
            agent.backend.model = replay_as["model"]
            agent.backend.first_tool = replay_as["first_tool"]
            agent.backend.max_tokens = replay_as["max_answer_tokens"]
        return agent

    warehouse = settings.resolved_warehouse_path if settings.resolved_warehouse_path.exists() else None
    rows = run_suite(cases, make_agent, cassette, warehouse)
    summary = report.summarize(rows)
    gates = report.check_gates(summary, report.load_gates(folder / "gates.yaml", backend))
    baseline_path = settings.workspace / "evals" / "baseline" / f"{suite}-{backend}.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.exists() else None
    changes = report.diff(summary, baseline)
    report.write(out, rows, summary, report.markdown(suite, backend, summary, gates, changes, rows))
    if update_baseline:
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        baseline_path.write_text(json.dumps(summary, indent=2) + "\n")
    table = Table(title=f"{suite} ({backend}): {summary['cases']} cases, {summary['turns']} turns", show_edge=False)
    for col in ("metric", "value", "baseline", "gate"):
        table.add_column(col)
    for key in (*report.METRICS, "policy_violations", "errors", "latency_ms_p50"):
        gate = "" if key not in gates else ("pass" if gates[key] else "FAIL")
        table.add_row(key, str(summary.get(key)), str(baseline.get(key)) if baseline else "", gate)
    console.print(table)
    console.print(f"results in {out} (results.jsonl, summary.md, summary.json)")
    return all(gates.values())
