"""Local-planner slot filling and answers for prediction questions: why a score, what if, model quality, rankings."""

from __future__ import annotations

import re
from typing import Any

from mopsbot.agent.backend import ToolOutcome, TurnRequest
from mopsbot.agent.local.metrics import PERIOD, VALUES
from mopsbot.agent.local.writes import Clarify

_ENTITY = re.compile(r"\blead\s*(?:id\s*)?#?\s*(\d{1,9})\b|#(\d{1,9})\b", re.I)
_CLAIMED = re.compile(r"\b(?:scored?|scoring|score of|at)\s+(?:an?\s+)?(\d{1,3})\b", re.I)
GATES = {
    "explain_prediction": re.compile(
        r"\bwhy\b.*\b(lead\s*#?\d+|#\d+)|\bexplain\b.*\b(lead|score|prediction)|\blead\s*#?\d+\b.*\b(scored?|score|tier)\b"
        r"|\bwhat drives\b.*\bscore",
        re.I,
    ),
    "what_if": re.compile(r"^\s*(and\s+|ok\s+|so\s+)?what if\b|\bwhat would (the|its|their|his|her) score\b", re.I),
    "model_card": re.compile(
        r"^(?!\s*who\b)(?=.*\b(model|score)\b)"
        r"(?=.*(\bmodel card\b|\bhow good\b|\bhow accurate\b|\bhow reliable\b|\bcalibrat|\bauc\b|\bbrier\b))"
        r"|^(?!\s*who\b).*\b(lead score|sql acceptance) model\b",
        re.I,
    ),
    "score_leads": re.compile(
        r"\b(score|scoring|scored)\b.*\b(highest|top|best|most)\b|\b(highest|top|best)[- ]scor\w*"
        r"|\btop\s+\d{1,3}\s+scor\w*"
        r"|\brank\b.*\bby score\b",
        re.I,
    ),
}
TOOLS = tuple(GATES)
CHANGES = (
    ("webinar_attended", r"\b(attend\w*|join\w*|went to|watch\w*)\b[^.?]*\bwebinar", True),
    ("demo_request", r"\b(request\w*|ask\w* for|book\w*)\b[^.?]*\bdemo\b", True),
    ("is_personal_email", r"\b(work|business|company|corporate) (e-?mail|address)\b", False),
    ("is_personal_email", r"\b(personal|gmail|private) (e-?mail|address)\b", True),
)
SENIORITY = (
    ("c_level", 4, r"\bc[- ]?level\b|\bcxo\b|\bcto\b|\bcio\b"),
    ("vp", 3, r"\bvp\b|vice president"),
    ("director", 2, r"\bdirector\b"),
    ("manager", 1, r"\bmanager\b"),
)
_NEGATED = re.compile(r"\b(not|n't|never|no longer|without)\b", re.I)


def _model(message: str) -> str:
    return (
        "sql_acceptance"
        if re.search(r"\b(sql acceptance|acceptance|accepted|accept)\b", message, re.I)
        else "lead_score"
    )


def _entity(message: str, previous: dict[str, Any] | None) -> int | None:
    if m := _ENTITY.search(message):
        return int(m.group(1) or m.group(2))
    if previous and previous.get("tool") in ("explain_prediction", "what_if"):
        return int(previous["args"]["entity_id"])
    return None


def fill_explain(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    entity = _entity(message, previous)
    if entity is None:
        return Clarify('Which lead? For example: "why is lead 4411 scored 82?"')
    return {"model": _model(message), "entity_id": entity}


def fill_what_if(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    entity = _entity(message, previous)
    if entity is None:
        return Clarify('Which lead? Ask "why is lead 4411 scored 82?" first, or name it: "what if lead 4411 ..."')
    negated = bool(_NEGATED.search(message))
    changes: dict[str, Any] = {}
    for feature, pattern, value in CHANGES:
        if feature not in changes and re.search(pattern, message, re.I):
            changes[feature] = (not value) if negated and isinstance(value, bool) else value
    if m := re.search(r"\b(\d{1,4})\s+(?:web(?:site)?\s+)?visits\b", message, re.I):
        changes["web_visits_30d"] = int(m.group(1))
    if m := re.search(r"\b(\d{1,3})\s+email clicks\b", message, re.I):
        changes["email_clicks_90d"] = int(m.group(1))
    if m := re.search(r"\bintent(?: score)?(?: of| was| were| is| at)?\s+(\d{1,3})\b", message, re.I):
        changes["intent_score"] = int(m.group(1))
    for _, level, pattern in SENIORITY:
        if re.search(pattern, message, re.I):
            changes["seniority_level"] = level
            break
    for dim, value, pattern in VALUES:
        if dim == "channel" and re.search(
            rf"\b(came|come|coming|sourced) (from|via|through)\b.*({pattern})", message, re.I
        ):
            changes["source_channel"] = value
    if m := re.search(r"\b(1-50|51-200|201-1000|1001-5000|5000\+)\b", message):
        changes["company_size_band"] = m.group(1)
    if not changes:
        return Clarify(
            "What should change? For example: attended a webinar, requested a demo, a work email, 12 website "
            "visits, intent score 80, a VP, from paid search."
        )
    model = previous["args"].get("model", "lead_score") if previous and previous.get("args") else _model(message)
    return {"model": model, "entity_id": entity, "changes": changes}


def fill_card(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any]:
    return {"model": _model(message)}


def fill_score(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any]:
    args: dict[str, Any] = {"model": _model(message)}
    if m := PERIOD.search(message):
        args["period"] = m.group(0)
    args["date_column"] = "created_at" if re.search(r"\bnew leads?\b|\bcreated\b", message, re.I) else "mql_at"
    regions = [
        value
        for dim, value, pattern in VALUES
        if dim == "region" and re.search(pattern, message, 0 if value == "NA" else re.I)
    ]
    if regions:
        args["region"] = regions
    if m := re.search(r"\btop\s+(\d{1,3})\b", message, re.I):
        args["limit"] = int(m.group(1))
    return args


def _pp(points: float) -> str:
    return f"{points:+.1f} pts"


def explanation_text(d: dict[str, Any], claimed: int | None) -> str:
    """One sentence verdict, the factor list, one line of caveat, the model card."""
    score = round(d["score"])
    tier = f" (tier {d['tier']})" if d.get("tier") else ""
    differs = f", not {claimed}" if claimed is not None and claimed != score else ""
    up, down = d["top_positive"], d["top_negative"]
    lead = up[0]["business_name"].lower() if up else None
    verdict = (
        f"Lead {d['entity_id']} scores {score}{tier}{differs} in {d['model']} {d['version']}, against a baseline of "
        f"{d['baseline_score']:.0f} for an average lead profile (mean score {d['average_score']:.1f})"
        + (f"; the biggest push up is {lead}." if lead else ".")
    )
    lines = [verdict]
    for f in up:
        lines.append(
            f"• ↑ {f['business_name']} = {_value(f['value'])}: {_pp(f['points'])} (odds x{f['odds_ratio']:.2f})"
        )
    for f in down:
        lines.append(
            f"• ↓ {f['business_name']} = {_value(f['value'])}: {_pp(f['points'])} (odds x{f['odds_ratio']:.2f})"
        )
    cal = d.get("calibration")
    if cal and cal.get("well_calibrated") is not None:
        state = "well calibrated" if cal["well_calibrated"] else "NOT well calibrated"
        lines.append(
            f"Scores {cal['band']} are {state} on the holdout: predicted {100 * cal['predicted']:.1f}%, "
            f"observed {100 * cal['observed']:.1f}% ({cal['rows']} leads)."
        )
    elif cal:
        lines.append(f"Too few holdout leads scored {cal['band']} ({cal['rows']}) to judge calibration there.")
    outside = [f["business_name"] for f in d["factors"] if f["outside_training_range"]]
    if outside:
        lines.append(f"Outside the training range: {', '.join(outside)}.")
    lines.append("Caveat: factors are associations in past data, not causes; correlated factors share credit.")
    lines.append(f"Model card: `mopsbot models card {d['model']}` (tools/models/{d['model']}.yaml).")
    return "\n".join(lines)


def _value(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else str(v)


def compose_explain(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    claimed = _CLAIMED.search(message)
    return explanation_text(outcome.data, int(claimed.group(1)) if claimed else None)


def what_if_text(d: dict[str, Any]) -> str:
    changes = ", ".join(f"{k} = {_value(v)}" for k, v in d["changes"].items())
    lines = [
        f"With {changes}, lead {d['entity_id']} would score {d['score_after']:.0f} (tier {d['tier_after']}) instead of "
        f"{d['score_before']:.0f} (tier {d['tier_before']})."
    ]
    for m in d["moved"]:
        lines.append(
            f"• {m['business_name']}: {_value(m['from'])} → {_value(m['to'])}, log-odds "
            f"{m['contribution_before']:+.2f} → {m['contribution_after']:+.2f}"
        )
    lines.append("Caveat: the model shows association, not cause; doing this does not guarantee the lead converts.")
    return "\n".join(lines)


def compose_what_if(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    return what_if_text(outcome.data)


def compose_card(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    d = outcome.data
    m = d["metrics"]
    trained = f"trained on {d['training_rows']:,} {d['entity']}s, {d['training_window']}"
    lines = [f"{d['title']} {d['version']}: {d['purpose']}", f"Target: {d['target']} ({trained})."]
    if "auc" in m:
        lines.append(
            f"On a holdout of {m['holdout_rows']:,}: AUC {m['auc']} (0.5 is chance, 1.0 perfect), Brier score "
            f"{m['brier']} (lower is better; base rate {100 * m['base_rate']:.1f}%)."
        )
        good = [r["band"] for r in m.get("calibration", []) if r["well_calibrated"]]
        bad = [r["band"] for r in m.get("calibration", []) if r["well_calibrated"] is False]
        thin = [r["band"] for r in m.get("calibration", []) if r["well_calibrated"] is None]
        text = f"Calibration by score band: well calibrated {', '.join(good) or 'none'}"
        text += f"; not {', '.join(bad)}" if bad else ""
        text += f"; too few leads {', '.join(thin)}" if thin else ""
        lines.append(text + ".")
    lines.append("Inputs: " + ", ".join(f["business_name"] for f in d["features"]) + ".")
    lines.append(f"Model card: `mopsbot models card {d['name']}` (tools/models/{d['name']}.yaml).")
    return "\n".join(lines)


def compose_score(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    d = outcome.data
    if not d["rows"]:
        through = f"; the warehouse's data runs to {d['data_through']}" if d.get("data_through") else ""
        return f"No leads to score for that ({d.get('period', {}).get('label', 'all time')}){through}."
    where = f" ({d['period']['label']}, by {d['period']['column']})" if d.get("period") else ""
    lines = [f"Top {len(d['rows'])} of {d['scored']:,} leads by {d['model']}{where}:"]
    for r in d["rows"]:
        lines.append(
            f"• lead {r['lead_id']}: {r['score']:.0f} (tier {r['tier']}), {r['source_channel']}, "
            f"{r.get('company_size_band', '')}"
        )
    lines.append("Tiers across all scored: " + ", ".join(f"{k} {v:,}" for k, v in sorted(d["tiers"].items())) + ".")
    return "\n".join(lines)
