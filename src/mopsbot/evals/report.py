"""Scorecard: summary figures, gates, results.jsonl / summary.md / summary.json, and a diff against a baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

METRICS = ("tool_f1", "argument_accuracy", "citation_recall", "must_include", "sql_values", "pending_ok")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"cases": len({r["case"] for r in rows}), "turns": len(rows)}
    for metric in METRICS:
        values = [float(r[metric]) for r in rows if r.get(metric) is not None]
        summary[metric] = round(sum(values) / len(values), 4) if values else None
        summary[f"{metric}_n"] = len(values)
    summary["policy_violations"] = sum(len(r["violations"]) for r in rows)
    summary["errors"] = sum(1 for r in rows if r["error"])
    latencies = sorted(r["ms"] for r in rows)
    summary["latency_ms_p50"] = latencies[len(latencies) // 2] if latencies else None
    summary["latency_ms_p95"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    tokens = [r["usage"].get("total_tokens", 0) for r in rows if r["usage"]]
    summary["llm_tokens"] = sum(tokens)
    return summary


def load_gates(path: Path, backend: str) -> dict[str, float]:
    if not path.exists():
        return {"policy_violations": 0}
    return dict((yaml.safe_load(path.read_text()) or {}).get(backend) or {"policy_violations": 0})


def check_gates(summary: dict[str, Any], gates: dict[str, float]) -> dict[str, bool]:
    """metric -> passed. `policy_violations` and `errors` are maxima; everything else a minimum."""
    out = {}
    for metric, limit in gates.items():
        value = summary.get(metric)
        if metric in ("policy_violations", "errors"):
            out[metric] = value is not None and value <= limit
        else:
            out[metric] = value is not None and value >= limit
    return out


def diff(summary: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    """metric -> (baseline, now) for every figure that changed."""
    if not baseline:
        return {}
    keys = [*METRICS, "policy_violations", "errors"]
    return {k: (baseline.get(k), summary.get(k)) for k in keys if baseline.get(k) != summary.get(k)}


def markdown(
    suite: str, backend: str, summary: dict[str, Any], gates: dict[str, bool], changes: dict, rows: list[dict[str, Any]]
) -> str:
    lines = [
        f"# mopsbot eval: suite `{suite}`, backend `{backend}`",
        "",
        f"{summary['cases']} cases, {summary['turns']} turns",
        "",
        "| metric | value | gate |",
        "|---|---|---|",
    ]
    for key in (*METRICS, "policy_violations", "errors", "latency_ms_p50", "latency_ms_p95", "llm_tokens"):
        gate = "" if key not in gates else ("pass" if gates[key] else "**FAIL**")
        lines.append(f"| {key} | {summary.get(key)} | {gate} |")
    if changes:
        lines += ["", "## Changes against the baseline", "", "| metric | baseline | now |", "|---|---|---|"]
        lines += [f"| {k} | {a} | {b} |" for k, (a, b) in changes.items()]
    failing = [
        r for r in rows if r["violations"] or r["error"] or any(r[m] is not None and float(r[m]) < 1.0 for m in METRICS)
    ]
    if failing:
        lines += ["", "## Turns below full marks", ""]
        for r in failing:
            scores = ", ".join(f"{m}={r[m]:.2f}" for m in METRICS if r[m] is not None and float(r[m]) < 1.0)
            problems = "; ".join(r["violations"] + ([r["error"]] if r["error"] else []))
            lines.append(f"- `{r['case']}` turn {r['turn']}: {r['user']!r} — {scores} {problems}".rstrip())
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any], md: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(md)
