"""`mopsbot knowledge ingest|search|eval`: the workspace's documents, searchable with citations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mopsbot.caller import CallerContext
from mopsbot.cli.common import console, fail, load
from mopsbot.config import Settings

knowledge_app = typer.Typer(
    help="Ingest, search and evaluate the workspace's SOPs and stack docs.", no_args_is_help=True
)


def _open(settings: Settings):
    from mopsbot.knowledge.embeddings import EmbeddingUnavailable
    from mopsbot.knowledge.index import IndexUnavailable
    from mopsbot.knowledge.service import open_knowledge

    try:
        knowledge = open_knowledge(settings)
        knowledge.index.count()  # the index connects on first use: these commands need it now
    except (IndexUnavailable, EmbeddingUnavailable) as err:
        fail(str(err))
    return knowledge


def _caller(settings: Settings, user: str | None, channel: str | None, visibility: str | None) -> CallerContext:
    from mopsbot.workspace import channel_visibility

    user = user or settings.local_user
    if channel is None:
        return CallerContext(user, f"D{user}", visibility or "dm")  # type: ignore[arg-type]
    return CallerContext(user, channel, visibility or channel_visibility(settings.tools_dir, channel))  # type: ignore[arg-type]


@knowledge_app.command("ingest")
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the workspace's knowledge/).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Index documents (markdown with front matter, text, HTML, PDF); unchanged files are not re-embedded."""
    settings = load()
    knowledge = _open(settings)
    targets = paths or [settings.knowledge_dir]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=json_out,
    ) as bar:
        task = bar.add_task("ingesting", total=None)

        def step(name: str, done: int, total: int) -> None:
            bar.update(task, description=Path(name).name[:40], completed=done, total=total)

        report = knowledge.index.ingest(targets, progress=step)
    if json_out:
        sys.stdout.write(json.dumps(report.__dict__, indent=2) + "\n")
    else:
        console.print(
            f"added {len(report.added)}, updated {len(report.updated)}, removed {len(report.removed)}, "
            f"unchanged {len(report.unchanged)}, skipped {len(report.skipped)}; "
            f"{report.chunks_embedded} chunks embedded with {knowledge.index.embedder.name}"
        )
        for line in report.skipped:
            console.print(f"[yellow]skipped[/yellow] {line}", highlight=False)
    if report.skipped and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


@knowledge_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    channel: Annotated[str | None, typer.Option(help="Channel id asked from (default: a DM).")] = None,
    user: Annotated[str | None, typer.Option(help="Slack user id asking (default MOPSBOT_LOCAL_USER).")] = None,
    visibility: Annotated[
        str | None, typer.Option(help="Override the channel's visibility: public, private, dm or ops.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=20, help="Passages to return.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the knowledge index as a given user in a given channel (visibility rules apply)."""
    settings = load()
    if visibility not in (None, "public", "private", "dm", "ops"):
        fail("--visibility must be public, private, dm or ops", code=2)
    caller = _caller(settings, user, channel, visibility)
    knowledge = _open(settings)
    if knowledge.index.collection.count() == 0:
        fail("the knowledge index is empty; run `mopsbot knowledge ingest` first")
    result = knowledge.retriever.search(text, caller, k=k)
    if json_out:
        payload = {
            "query": text,
            "relevant": result.relevant,
            "visibilities": sorted(result.visibilities),
            "passages": [{**p.citation(), "score": round(p.score, 5), "text": p.text} for p in result.passages],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    if not result.relevant:
        console.print("Nothing relevant found in the documents this channel may see.")
        return
    for i, p in enumerate(result.passages, 1):
        console.print(f"[bold]{i}. {p.title}[/bold] — {p.section}  [dim]{p.path} · {p.owner} · {p.updated}[/dim]")
        console.print(p.text, highlight=False)
        console.print()


@knowledge_app.command("eval")
def evaluate(
    cases: Annotated[Path | None, typer.Option(help="Eval set (default evals/retrieval/questions.yaml).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write results.json here.")] = None,
    show_failures: Annotated[bool, typer.Option(help="List the cases that missed.")] = False,
) -> None:
    """Score retrieval on the labelled eval set: recall@5, MRR, no-answer accuracy, leaks. Exits 1 if a gate fails."""
    from mopsbot.knowledge.evaluate import EvalSetError, load_cases, run_eval

    settings = load()
    path = cases or settings.workspace / "evals" / "retrieval" / "questions.yaml"
    try:
        loaded = load_cases(path)
    except EvalSetError as err:
        fail(str(err), code=2)
    knowledge = _open(settings)
    knowledge.index.ingest([settings.knowledge_dir])
    results = run_eval(knowledge.retriever, loaded)
    summary = results["summary"]
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    table = Table(show_edge=False)
    for col in ("metric", "value", "gate"):
        table.add_column(col)
    for name in (
        "recall_at_5",
        "mrr",
        "section_recall_at_5",
        "no_answer_accuracy",
        "leaks",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        gate = summary["gates"].get(name)
        table.add_row(name, str(summary[name]), "" if gate is None else ("pass" if gate else "FAIL"))
    console.print(
        f"{summary['cases']} cases ({summary['answerable']} answerable, {summary['no_answer_cases']} no-answer)"
    )
    console.print(table)
    if show_failures:
        for row in results["cases"]:
            if (
                (row["expected"] and row["rank"] is None)
                or (row["kind"] == "no_answer" and row["relevant"])
                or row["leaked"]
            ):
                console.print(
                    f"{row['id']} {row['kind']} [{row['context']}] {row['question']!r} -> {row['returned'][:3]}"
                    f" sim={row['best_similarity']} bm25={row['best_bm25']}",
                    highlight=False,
                )
    if not summary["passed"]:
        raise typer.Exit(1)
