"""Blind governance sets, scored: change routing end to end and the injection detector's precision and recall.

    .venv/bin/python benchmarks/bench_governance_blind.py [--verbose]

Change routing: each case of evals/blind/change_routing.yaml (written from the SOPs by someone who had not read
the classifier) is sent as a chat message to the local agent; the pending action it files is compared with the
expected approver groups and risk. A consent case passes when it routes to privacy only, or files nothing.
Injection: evals/blind/injection_labelled.yaml through mopsbot.injection.addresses_ai. evals/holdout/ holds a
second set of each, written by another writer after tuning and never tuned against.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def routing(verbose: bool, path: str) -> None:
    from mopsbot.agent.factory import build_agent
    from mopsbot.caller import CallerContext
    from mopsbot.config import load_settings

    cases = yaml.safe_load((REPO / path).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env_file=None, workspace=REPO, data_dir=Path(tmp), today=date(2026, 11, 16))
        agent = build_agent(settings, backend="local")
        caller = CallerContext("U07SC0005", "C07MOPS001", "ops")
        by_family: dict[str, list[bool]] = {}
        risk_ok: list[bool] = []
        start = time.perf_counter()
        for i, case in enumerate(cases):
            record = agent.run_turn(case["text"], caller, f"blind-{i}")
            consent = case["expected_category"] == "consent"
            if not record.pending_actions:
                ok = consent  # refusing to file a consent change is safe; anything else should have been filed
                got = "nothing filed: " + record.answer[:80].replace("\n", " ")
                risk_ok.append(False)
            else:
                action = agent.approvals.get(record.pending_actions[0].id) or {}
                ok = set(action.get("approver_groups", [])) == set(case["expected_groups"])
                risk_ok.append(action.get("risk") == case["expected_risk"])
                got = f"{action.get('kind')} {action.get('risk')} {action.get('approver_groups')}"
                got += f" ({action.get('category')})"
            by_family.setdefault("consent" if consent else "other", []).append(ok)
            if verbose and not ok:
                print(f"  MISS {case['id']}: want {case['expected_groups']} {case['expected_risk']}; got {got}")
        took = time.perf_counter() - start
    for family, oks in by_family.items():
        print(f"{path}, {family}: {sum(oks)}/{len(oks)} routed to the expected approver groups")
    print(f"{path}, risk level exact: {sum(risk_ok)}/{len(risk_ok)}; {took / len(cases) * 1e3:.0f} ms per case")


def injection(verbose: bool, path: str) -> None:
    from mopsbot.injection import addresses_ai

    cases = yaml.safe_load((REPO / path).read_text())
    tp = fp = fn = tn = 0
    for c in cases:
        flagged, real = addresses_ai(c["text"]), c["label"] == "injection"
        tp, fp, fn, tn = (
            tp + (flagged and real),
            fp + (flagged and not real),
            fn + (real and not flagged),
            tn + (not real and not flagged),
        )
        if verbose and flagged != real:
            print(f"  {'FP' if flagged else 'FN'} {c['id']} ({c['where']}): {c['text'][:100]!r}")
    print(
        f"{path}: {tp + fn} injections, {fp + tn} benign; precision {tp / max(tp + fp, 1):.3f}, "
        f"recall {tp / max(tp + fn, 1):.3f} (tp {tp}, fp {fp}, fn {fn}, tn {tn})"
    )


if __name__ == "__main__":
    verbose = "--verbose" in sys.argv
    # evals/blind: written before the detector and the classifier were tuned (first-run scores in the closing note);
    # evals/holdout: written later by another writer, never used for tuning
    for folder in ("evals/blind", "evals/holdout"):
        injection(verbose, f"{folder}/{'injection_labelled' if folder.endswith('blind') else 'injection_holdout'}.yaml")
    for folder in ("evals/blind", "evals/holdout"):
        routing(verbose, f"{folder}/{'change_routing' if folder.endswith('blind') else 'change_routing_holdout'}.yaml")
