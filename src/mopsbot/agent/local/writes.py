"""Local-planner slot filling and answers for campaign drafts, submissions and change requests."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from mopsbot.agent.backend import ToolOutcome, TurnRequest
from mopsbot.changes.states import STATES

PROGRAM_WORDS = (
    ("content_syndication", r"syndication|content synd"),
    ("paid_social", r"paid social|linkedin|meta ads|facebook"),
    ("paid_search", r"paid search|google ads|search ads|ppc|sem\b|bing"),
    ("nurture", r"nurture"),
    ("webinar", r"webinar|webcast"),
    ("event", r"\bevent|trade ?show|conference|booth|summit|field event"),
    ("email", r"e-?mail|newsletter"),
)
REGION_WORDS = (
    ("EMEA", r"\bemea\b|europe|\buk\b|germany|france|dach|ireland|nordics"),
    ("APAC", r"\bapac\b|asia|australia|japan|singapore|india"),
    ("LATAM", r"\blatam\b|latin america|brazil|mexico"),
    ("NA", r"\bna\b|north america|\bus\b|\busa\b|united states|canada"),
)
MIN_LEAD_DAYS = {
    "webinar": 21,
    "email": 5,
    "nurture": 10,
    "paid_social": 7,
    "paid_search": 7,
    "event": 45,
    "content_syndication": 10,
}
_DRAFT_ID = re.compile(r"\b[0-9a-f]{32}\b")
_CR_ID = re.compile(r"\bCR-\d{4,}\b", re.I)


class Clarify(str):
    """A question back to the user instead of a tool call (a slot is missing)."""


def _first(table: tuple[tuple[str, str], ...], text: str) -> str | None:
    return next((value for value, pattern in table if re.search(pattern, text, re.I)), None)


def _budget(text: str) -> float | None:
    m = re.search(r"(?:\$|usd\s?)?\b(\d+(?:\.\d+)?)\s?k\b", text, re.I)
    if m:
        return float(m.group(1)) * 1000
    m = re.search(r"(?:\$|usd\s?)\s?(\d[\d,]*(?:\.\d+)?)|\b(\d[\d,]{3,})(?:\s?(?:usd|dollars|budget))", text, re.I)
    if m:
        return float((m.group(1) or m.group(2)).replace(",", ""))
    return None


def _start(text: str, program: str, today: date) -> tuple[date, bool]:
    """(start date, whether it was inferred). ISO dates win; "Q1 2027" means the quarter's first day."""
    if m := re.search(r"\b(20\d\d-\d\d-\d\d)\b", text):
        return date.fromisoformat(m.group(1)), False
    earliest = today + timedelta(days=MIN_LEAD_DAYS.get(program, 14))
    if m := re.search(r"\bQ([1-4])(?:\s*(?:of\s*)?(20\d\d))?\b", text, re.I):
        quarter = int(m.group(1))
        year = int(m.group(2)) if m.group(2) else today.year
        start = date(year, 3 * quarter - 2, 1)
        if not m.group(2) and date(year, 3 * quarter, 28) < today:  # "Q1" said in November means next year's
            start = date(year + 1, 3 * quarter - 2, 1)
        same_quarter = (start.year, (start.month - 1) // 3) == (earliest.year, (earliest.month - 1) // 3)
        return (max(start, earliest) if same_quarter else start), True
    return earliest, True


def _topic(text: str) -> str | None:
    m = re.search(
        r"\b(?:on|about|around|for the|topic)\s+([A-Za-z0-9][\w&/ -]{1,40}?)"
        r"(?=\s+(?:for|in|with|to|budget|starting|on|next|this)\b|[,.;!?]|$)",
        text,
        re.I,
    )
    if not m:
        return None
    topic = m.group(1).strip()
    return None if re.fullmatch(r"(?i)(emea|apac|latam|na|q[1-4])", topic) else topic


def fill_draft(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    program = _first(PROGRAM_WORDS, message)
    region = _first(REGION_WORDS, message)
    topic = _topic(message)
    budget = _budget(message)
    missing = [
        n
        for n, v in (
            ("the program type (webinar, email, paid social, ...)", program),
            ("the region (NA, EMEA, APAC or LATAM)", region),
            ('the topic ("on AI ops")', topic),
            ("the budget", budget),
        )
        if v is None
    ]
    if missing:
        return Clarify(
            "To draft the campaign I still need " + ", ".join(missing) + ". For example: "
            '"draft a Q1 webinar on AI ops for EMEA, 8k budget".'
        )
    start, _ = _start(message, program or "", request.today)
    args: dict[str, Any] = {
        "program_type": program,
        "topic": topic,
        "region": region,
        "start_date": start.isoformat(),
        "budget": budget,
    }
    if m := re.search(r"(?:audience|segment)\s+([\w-]+)|\bto (?:the )?([\w-]+) (?:segment|list)\b", message, re.I):
        args["audience"] = m.group(1) or m.group(2)
    extra = _program_fields(message, program or "")
    kpis = [
        {"metric": metric.lower().rstrip("s") + "s", "target": float(n)}
        for n, metric in re.findall(r"\b(\d+)\s+(mqls?|leads?|sqls?|registrations?|opportunities)\b", message, re.I)
    ]
    if kpis:
        args["kpis"] = kpis
    if extra:
        args["extra"] = extra
    return args


def _program_fields(text: str, program: str) -> dict[str, Any]:
    """Program-specific fields named in the brief ("speakers Dana Whitfield and Nina Petrova", "send list x")."""
    out: dict[str, Any] = {}
    stop = r"(?=,|;|\.(?:\s|$)|$| and (?:audience|kpi|budget|registration|send|sender|venue|vendor|asset))"
    if m := re.search(rf"\bspeakers?:?\s+(.+?){stop}", text, re.I):
        out["speakers"] = [p.strip() for p in re.split(r",| and ", m.group(1)) if p.strip()]
    for field, label in (
        ("registration_form", r"registration form"),
        ("send_list", r"send list"),
        ("sender_address", r"sender(?: address)?"),
        ("venue", r"venue"),
        ("asset", r"asset"),
        ("exit_criteria", r"exit criteria"),
    ):
        if m := re.search(rf"\b{label}:?\s+(.+?){stop}", text, re.I):
            out[field] = m.group(1).strip()
    if m := re.search(rf"\bkeywords?:?\s+(.+?){stop}", text, re.I):
        out["keywords"] = [k.strip() for k in re.split(r",| and ", m.group(1)) if k.strip()]
    if m := re.search(rf"\b(?:creative assets?|creatives?):?\s+(.+?){stop}", text, re.I):
        out["creative_assets"] = [k.strip() for k in re.split(r",| and ", m.group(1)) if k.strip()]
    if m := re.search(r"\bevent(?: date)?(?: on)?:?\s+(20\d\d-\d\d-\d\d)\b", text, re.I):
        out["event_date"] = m.group(1)
    if program in ("paid_social", "paid_search") and (
        m := re.search(r"linkedin|meta|google|bing|microsoft", text, re.I)
    ):
        out["ad_platform"] = {"linkedin": "linkedin_ads", "meta": "meta_ads", "google": "google_ads"}.get(
            m.group(0).lower(), "microsoft_ads"
        )
    if program == "content_syndication" and (m := re.search(r"techtarget|netline", text, re.I)):
        out["vendor"] = m.group(0).lower()
    return out


def fill_submit(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    if m := _DRAFT_ID.search(message):
        return {"draft_id": m.group(0)}
    draft_id = (previous or {}).get("draft_id")
    if not draft_id:
        return Clarify(
            'Which draft? Draft a campaign first ("draft a Q1 webinar on AI ops for EMEA, 8k budget"), '
            'then say "submit it".'
        )
    return {"draft_id": draft_id}


# "implementation: ...; backout: ...; test: ..." (also "implementation plan -", "rollback:", "testing:")
_PLAN_LABELS = {
    "implementation_plan": r"implementation(?: plan)?|implement(?:ation)? steps|steps",
    "backout_plan": r"back-?out(?: plan)?|roll-?back(?: plan)?|revert plan",
    "test_plan": r"test(?:ing)?(?: plan)?|verification|validation",
}
_PLAN_START = re.compile(
    r"(?:^|[\s;.,(])(" + "|".join(f"(?:{p})" for p in _PLAN_LABELS.values()) + r")\s*[:=-]\s*", re.I
)


def plans_in(message: str) -> tuple[str, dict[str, str]]:
    """(the message before any plan, the plans named in it)."""
    marks = list(_PLAN_START.finditer(message))
    if not marks:
        return message, {}
    plans: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(message)
        text = message[m.end() : end].strip(" ;,.")
        label = next(k for k, p in _PLAN_LABELS.items() if re.fullmatch(p, m.group(1), re.I))
        if text:
            plans[label] = text
    return message[: marks[0].start()], plans


def fill_change(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    head, plans = plans_in(message)
    m = re.search(
        r"\b(?:change(?: request)?|cr)\b\s*(?:(?:filed|raised|opened|logged)\s+)?"
        r"(?:to|for|so that|so|that|:|-)\s+(.+)$",
        head,
        re.I | re.S,
    )
    title = m.group(1).strip().rstrip(".!?;, ") if m else ""
    if len(title.split()) < 2:
        return Clarify(
            'What should the change do? For example: "file a change request to add a consent checkbox '
            'to the demo form".'
        )
    kind = (
        "emergency"
        if re.search(r"emergency|urgent|asap|right now", head, re.I)
        else ("standard" if re.search(r"\bstandard\b", head, re.I) else "normal")
    )
    title = " ".join(title.split())
    return {
        "change_type": kind,
        "title": (title[:1].upper() + title[1:])[:200],
        "description": " ".join(head.split())[:4000] or title,
        **plans,
    }


def fill_plans(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    _, plans = plans_in(message)
    m = _CR_ID.search(message)
    change_id = m.group(0).upper() if m else (previous or {}).get("change_id")
    if not change_id:
        return Clarify("Which change request are these plans for? Give its id, e.g. CR-0001.")
    if not plans:
        return Clarify(
            'Say the plans with their labels, e.g. "implementation: clone the smart campaign in the sandbox; '
            'backout: deactivate it; test: five test leads in bwfull".'
        )
    return {"change_id": change_id, **plans}


def fill_list_changes(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any]:
    state = next(
        (
            s
            for s in STATES[1:]  # every state but draft, in table order
            if s.split("_")[0] in message.lower()
        ),
        None,
    )
    if state is None and re.search(r"waiting|open|pending", message, re.I):
        state = "pending_approval"
    return {"state": state, "mine": bool(re.search(r"\b(my|mine|i filed|i raised)\b", message, re.I))}


def fill_get_change(message: str, previous: dict[str, Any] | None, request: TurnRequest) -> dict[str, Any] | Clarify:
    m = _CR_ID.search(message)
    return {"id": m.group(0).upper()} if m else Clarify("Which change request? Give its id, e.g. CR-0001.")


# --- answers --------------------------------------------------------------------------------------------------


def compose_draft(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    d = outcome.data
    c = d["config"]
    lines = [
        f"Draft *{d['name']}* (draft {d['draft_id']}): {c['program_type']} in {c['region']}, "
        f"{c['start_date']} to {c['end_date']}, budget {c['currency']} {c['budget']:,.0f}."
    ]
    if d["filled_defaults"]:
        lines.append("Filled from policy defaults: " + ", ".join(d["filled_defaults"]) + ".")
    errors = [f for f in d["findings"] if f["severity"] == "error"]
    warnings = [f for f in d["findings"] if f["severity"] == "warning"]
    if errors or warnings:
        lines.append(f"Policy check: {len(errors)} error(s), {len(warnings)} warning(s):")
        lines += [
            f"• [{f['severity']}] {f['field']}: {f['message']}. Fix: {f['fix']} ({f['sop']})" for f in errors + warnings
        ]
    else:
        lines.append("Policy check: no findings.")
    approval = d["approval"]
    who = " or ".join(approval["groups"]) or "nobody (no approver group is configured)"
    lines.append(f"Approval: {approval['tier']} tier, {approval['risk']} risk; approved by {who}.")
    lines.append("```\n" + d["yaml"].rstrip() + "\n```")
    lines.append("Fix the errors and draft again." if errors else 'Say "submit it" to send it for approval.')
    return "\n".join(lines)


def compose_pending(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    pending = outcome.pending_action or {}
    extra = f" as {pending['change_request']}" if pending.get("change_request") else ""
    lines = [outcome.summary.split(" Note: ")[0]]
    if pending.get("routing_reasons"):
        lines.append("Route: " + "; ".join(pending["routing_reasons"]) + ".")
    others = [r for r in pending.get("requesters", []) if r != request.caller.user_id]
    if others:
        lines.append("Requesters (none of them can approve it): " + ", ".join([request.caller.user_id, *others]) + ".")
    if pending.get("provenance"):
        lines.append("Note: " + "; ".join(pending["provenance"]) + ". The approver sees this on the card.")
    lines.append(f"Filed{extra}; approvers decide in this thread. Action id: {pending.get('id')}.")
    return "\n".join(lines)


def compose_changes(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    rows = outcome.data.get("change_requests")
    if rows is not None:
        if not rows:
            return "No change requests match."
        return "\n".join(f"• {r['id']} [{r['state']}, {r['risk']} risk] {r['title']}" for r in rows)
    c = outcome.data["change"]
    plans = ", ".join(p for p in ("implementation_plan", "backout_plan", "test_plan") if c[p]) or "none yet"
    ref = f"; ticket {c['external_ref']}" if c["external_ref"] else ""
    return (
        f"{c['id']}: {c['title']}\nState {c['state']}, {c['risk']} risk, type {c['type']}, systems "
        f"{', '.join(c['affected_systems'])}; plans: {plans}{ref}."
    )
