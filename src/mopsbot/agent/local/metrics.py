"""Local-planner slot filling for metric questions: message -> MetricQuery arguments, and answers from results.

"CPL by channel last quarter vs the quarter before" -> metrics [cpl], dimensions [channel], period "last quarter",
compare_to previous_period. Names come from the catalog (names, labels, synonyms); the engine checks them again.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from mopsbot.agent.backend import ToolOutcome, TurnRequest
from mopsbot.agent.local.writes import Clarify
from mopsbot.metrics.catalog import Catalog, UnknownName
from mopsbot.metrics.periods import FiscalCalendar, PeriodError, comparison_period, parse_period
from mopsbot.metrics.present import format_change, format_value, row_label

_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
PERIOD = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}\s*(?:\.\.|to|through|until)\s*\d{4}-\d{2}-\d{2}"
    r"|(?:last|past|trailing|previous) \d{1,4} (?:days?|weeks?|months?)"
    r"|(?:last|previous|this|current) (?:week|month|quarter|fiscal year|year)"
    r"|mtd|qtd|ytd|(?:month|quarter|year) to date"
    r"|fy ?\d{4} q[1-4]|q[1-4](?: (?:fy ?)?\d{4})?"
    rf"|since (?:{_MONTH})(?: \d{{4}})?|since \d{{4}}-\d{{2}}-\d{{2}}"
    rf"|(?:{_MONTH})(?:,? \d{{4}})?"
    r"|(?:fy ?)?20\d\d|yesterday)\b",
    re.I,
)
COMPARE = (
    ("same_period_last_year", r"\b(year over year|yoy|same (?:period|quarter|month) last year|vs\.? last year|"
                              r"compared (?:to|with) last year|than last year|last year'?s|"
                              r"same (?:period|quarter|month|week) (?:a|one) year (?:earlier|before|ago)|"
                              r"a year (?:earlier|ago|before))\b"),
    ("previous_period", r"\b(vs\.?|versus|compared (?:to|with)|against|than)\s+(the\s+)?(quarter|month|week|period|"
                        r"year) before\b|\b(vs\.?|versus|compared (?:to|with))\s+(the\s+)?(previous|prior|last)\b|"
                        r"\b(quarter over quarter|month over month|week over week|qoq|mom|wow)\b|"
                        r"\b(vs\.?|versus)\s+q[1-4]\b"),
)  # fmt: skip
ATTRIBUTION = (
    ("w_shaped", r"\bw[- ]?shaped\b"),
    ("u_shaped", r"\bu[- ]?shaped\b"),
    ("time_decay", r"\btime[- ]?decay\b"),
    ("linear", r"\blinear\b"),
    ("first_touch", r"\bfirst[- ]touch\b"),
    ("last_touch", r"\blast[- ]touch\b"),
)
GRAIN = (
    ("day", r"\b(daily|per day|by day|each day|day by day)\b"),
    ("week", r"\b(weekly|per week|by week|each week|week by week)\b"),
    ("month", r"\b(monthly|per month|by month|each month|month by month|trend|over time|month over month)\b"),
    ("quarter", r"\b(quarterly|per quarter|by quarter|each quarter)\b"),
    ("year", r"\b(yearly|annually|per year|by year)\b"),
)
# Words that name a filter value; more specific phrases first.
VALUES = (
    ("region", "EMEA", r"\bemea\b|\beurope\b"),
    ("region", "APAC", r"\bapac\b|\basia\b"),
    ("region", "LATAM", r"\blatam\b|latin america"),
    ("region", "NA", r"\bNA\b|north america"),
    ("channel", "paid_social", r"\bpaid[ _]social\b"),
    ("channel", "paid_search", r"\bpaid[ _]search\b|\bppc\b"),
    ("channel", "content_syndication", r"\bcontent[ _]syndication\b|\bsyndication\b"),
    ("channel", "organic_search", r"\borganic(?:[ _]search)?\b|\bseo\b"),
    ("channel", "webinar", r"\bwebinars?\b"),
    ("channel", "events", r"\bevents?\b|\btrade ?shows?\b"),
    ("channel", "email", r"\bemails?\b(?! (?:open|click|deliver|bounce|unsub|spam|sends?|metrics))"),
    ("channel", "referral", r"\breferrals?\b"),
    ("channel", "direct", r"\bdirect\b"),
    ("seniority", "c_level", r"\bc[- ]?level\b|\bc-suite\b|\bcxos?\b|\bexecutives?\b"),
    ("seniority", "vp", r"\bvps?\b|vice presidents?"),
    ("seniority", "director", r"\bdirectors?\b"),
    ("seniority", "individual_contributor", r"\bindividual contributors?\b|\bics\b"),
    ("platform", "linkedin_ads", r"\blinkedin\b"),
    ("platform", "google_ads", r"\bgoogle(?: ads)?\b"),
    ("platform", "meta_ads", r"\bmeta\b|\bfacebook\b"),
    ("platform", "microsoft_ads", r"\bmicrosoft(?: ads)?\b|\bbing\b"),
)
CAMPAIGN_NAME = re.compile(r"\b20\d\d-Q[1-4]_[A-Z]{3}_[\w-]+_(?:NA|EMEA|APAC|LATAM)\b")
_BY = re.compile(r"\b(?:by|per|across|for each|split by|broken down by|grouped by)\s+([a-z_ ]+?)(?=\s+(?:for|in|"
                 r"last|this|since|vs|versus|during|over|from|,|$)|[,.?!]|$)", re.I)  # fmt: skip
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twenty": 20}  # fmt: skip
_N = r"\d{1,3}|" + "|".join(NUMBER_WORDS)
_TOP = re.compile(rf"\b(top|bottom|best|worst|highest|lowest)\s+(?:({_N})\s+)?([a-z_]+)", re.I)
_WHICH = re.compile(rf"\bwhich\s+(?:({_N})\s+)?([a-z_]+)", re.I)
_RANK_DESC = re.compile(r"\b(most|highest|largest|biggest|best|top|more)\b", re.I)
_RANK_ASC = re.compile(r"\b(least|lowest|fewest|smallest|cheapest|worst|bottom)\b", re.I)
_VERSUS = re.compile(r"\b(vs\.?|versus|compared (?:to|with)|against)\b", re.I)
_MOVED = re.compile(r"\b(go(?:ne)? up or down|up or down|better or worse|increase[sd]?|decrease[sd]?|improve[sd]?|"
                    r"change[sd]?|grow|grew|dropp?(?:ed)?|fall|fell)\b", re.I)  # fmt: skip
_EXCLUDE = re.compile(r"\b(excluding|except|not|without|other than|outside)\s+(?:the\s+)?([\w ]+)", re.I)
# A number question needs a period, a breakdown, or a figure-asking phrase; "what's the CPL threshold?" is policy.
ASKS_FIGURE = re.compile(
    r"\b(how many|how much|what (?:was|were|is|are|'s) (?:our|the|my)? ?(?:total|current|overall)?|show( me)?|"
    r"give me|report|compare|trend|breakdown|break down|top \d+|did we|numbers?)\b",
    re.I,
)
POLICY_WORDS = re.compile(
    r"\b(threshold|sop|policy|guardrail|defin\w*|calculat\w*|formula|mean|meaning|process|checklist|how do (?:we|i)|"
    r"who|when should|what happens|makes us|before it counts|difference)\b",
    re.I,
)
DESCRIBE = re.compile(r"\b(how is|how are|how do you|define|definition|formula|what does .* mean|describe)\b", re.I)
BREACH = re.compile(r"\b(breach\w*|exceed\w*|over the threshold|above the threshold|blow (?:past|through))\b", re.I)
ANOMALY = re.compile(r"\b(anomal\w*|spike[sd]?|unusual|outliers?|weird|strange|jump(?:ed)?|surge[sd]?)\b", re.I)


def find_metrics(catalog: Catalog, text: str) -> list[str]:
    """Catalogued metrics named in the text (longest phrases first, without overlaps), in order of mention."""
    return list(dict.fromkeys(n for _, _, n in _metric_spans(catalog, text)))


def _without_metrics(catalog: Catalog, text: str) -> str:
    """The text with metric phrases blanked, so "cost per opportunity by region" reads as "... by region"."""
    for start, end, _ in _metric_spans(catalog, text):
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _metric_spans(catalog: Catalog, text: str) -> list[tuple[int, int, str]]:
    """(start, end, metric) of each metric phrase, leftmost first; at one position the longest phrase wins."""
    pattern, keys = catalog.mention_pattern()
    spans = []
    for m in pattern.finditer(text):
        name = keys.get(re.sub(r"[\s_-]+", "", m.group("p").lower()))
        if name:
            spans.append((m.start(), m.end(), name))
    return spans


def is_metric_question(catalog: Catalog, text: str) -> bool:
    """A metric is named and the message asks for a figure (a period, a breakdown or a figure word)."""
    if not find_metrics(catalog, text):
        return False
    ranks = any(_dimension(catalog, m.group(2)) for m in _WHICH.finditer(text))  # "which campaign had the most..."
    wants = PERIOD.search(text) or _BY.search(text) or ASKS_FIGURE.search(text) or _grain(text) or ranks
    if POLICY_WORDS.search(text) and not (PERIOD.search(text) or BREACH.search(text)):
        return False
    return bool(wants)


def _grain(text: str) -> str | None:
    return next((g for g, p in GRAIN if re.search(p, text, re.I)), None)


def _dimensions(catalog: Catalog, text: str) -> tuple[list[str], str | None]:
    """Dimensions named after "by/per/across" or "top N X"/"which X", and a time grain named the same way."""
    dims: list[str] = []
    grain = None
    candidates = []
    text = _without_metrics(catalog, text)
    for m in _BY.finditer(text):
        candidates += re.split(r"\s+and\s+|\s*,\s*", m.group(1).strip())
    for m in (*_TOP.finditer(text), *_WHICH.finditer(text)):
        candidates.append(m.groups()[-1])
    for word in candidates:
        word = word.strip().lower()
        if word in ("day", "week", "month", "quarter", "year", "date", "time"):
            grain = word if word not in ("date", "time") else "month"
            continue
        for size in (3, 2, 1):
            phrase = " ".join(word.split()[:size])
            found = _dimension(catalog, phrase)
            if found:
                dims.append(found)
                break
    return list(dict.fromkeys(dims)), grain


def _dimension(catalog: Catalog, phrase: str) -> str | None:
    """The dimension a phrase names ("regions", "campaign owner"), or None."""
    for candidate in (phrase, phrase.removesuffix("es"), phrase.removesuffix("s")):
        try:
            return catalog.dimension_name(candidate)
        except UnknownName:
            continue
    return None


def _filters(catalog: Catalog, text: str, dims: list[str]) -> list[dict[str, Any]]:
    excluded_spans = [(m.start(2), m.end(2)) for m in _EXCLUDE.finditer(text)]
    chosen: dict[tuple[str, str], list[tuple[int, str]]] = {}  # (dimension, op) -> (position, value)
    taken: list[tuple[int, int]] = []
    for dim, value, pattern in VALUES:
        flags = 0 if value == "NA" else re.I
        for m in re.finditer(pattern, text, flags):
            if any(s <= m.start() < e for s, e in taken):
                continue
            # "by channel" names a breakdown, not a value; "webinar" as a breakdown word is left alone too
            if dim in dims and len(dims) == 1 and not _FOR_VALUE.search(text[max(0, m.start() - 12) : m.start()]):
                continue
            op = "not_in" if any(s <= m.start() < e for s, e in excluded_spans) else "in"
            chosen.setdefault((dim, op), [])
            if value not in (v for _, v in chosen[(dim, op)]):
                chosen[(dim, op)].append((m.start(), value))
            taken.append((m.start(), m.end()))
    names = [(m.start(), m.group(0)) for m in CAMPAIGN_NAME.finditer(text)]
    if names:
        chosen[("campaign", "in")] = names
    # values in the order the message names them
    return [{"dimension": d, "op": op, "values": [v for _, v in sorted(vs)]} for (d, op), vs in chosen.items()]


_FOR_VALUE = re.compile(r"\b(for|in|on|from|of|only|just|excluding|except|not)\s+(the\s+)?$", re.I)


def fill_metric_query(
    catalog: Catalog, message: str, previous: dict[str, Any] | None, today: date | None = None
) -> dict[str, Any] | Clarify:
    """MetricQuery arguments from a message; a follow-up ("and for EMEA?") adjusts the previous query."""
    metrics = find_metrics(catalog, message)
    prev = previous["args"] if previous and previous.get("tool") == "query_metrics" else None
    if not metrics and prev:
        metrics = list(prev["metrics"])
    if not metrics:
        return Clarify(
            "Which metric? For example CPL, spend, leads, MQLs, pipeline, ROAS or the email rates "
            '(ask "which metrics can you report?" for the list).'
        )
    dims, grain_word = _dimensions(catalog, message)
    grain = _grain(message) or grain_word
    model = next((name for name, p in ATTRIBUTION if re.search(p, message, re.I)), None)
    if model:
        swap = {"pipeline_sourced": "attributed_pipeline", "won_revenue": "attributed_revenue"}
        metrics = [swap.get(m, m) for m in metrics]
    compare = next((name for name, p in COMPARE if re.search(p, message, re.I)), None)
    periods = [m.group(0) for m in PERIOD.finditer(message)]
    # "October compared with September": the first period is the one asked about, the second says which comparison
    period = periods[0] if periods else None
    if len(periods) >= 2:
        compare = _relation(catalog, periods[0], periods[1], today or date.today()) or compare
    elif not compare and _MOVED.search(message):
        compare = "previous_period"  # "did the click rate go up or down in October?"
    filters = _filters(catalog, message, dims)
    for f in filters:  # "paid search vs paid social": compare the values side by side
        if len(f["values"]) > 1 and f["op"] == "in" and _VERSUS.search(message) and f["dimension"] not in dims:
            dims.append(f["dimension"])
    if BREACH.search(message) and "cpl" in metrics and not grain:
        grain = "month"  # CPL thresholds are judged per calendar month
    slots = {"dimensions": dims, "grain": grain, "period": period, "compare_to": compare, "attribution": model}
    filled = {k: v for k, v in slots.items() if v}
    if (prev and not find_metrics(catalog, message)) or (prev and _is_follow_up(message)):
        base = {**prev, "metrics": metrics, **filled}
        if filters:  # a filter on a dimension replaces the previous one on it: "and for EMEA?"
            kept = [f for f in base.get("filters", []) if f["dimension"] not in {g["dimension"] for g in filters}]
            base["filters"] = kept + filters
        return base
    args: dict[str, Any] = {"metrics": metrics, **filled}
    if filters:
        args["filters"] = filters
    if m := _TOP.search(message):
        word, n = m.group(1).lower(), m.group(2)
        asc = word in ("bottom", "lowest") or (word == "best" and _good_down(catalog, metrics[0]))
        asc = asc or (word == "worst" and not _good_down(catalog, metrics[0]))
        args["order_by"] = ("" if asc else "-") + metrics[0]
        if n:
            args["limit"] = _count(n)
    elif dims and (w := _WHICH.search(message)) and (_RANK_DESC.search(message) or _RANK_ASC.search(message)):
        # "which three channels drove the most MQLs?", "which region had the lowest CPL?"
        asc = bool(_RANK_ASC.search(message)) and not _RANK_DESC.search(message)
        args["order_by"] = ("" if asc else "-") + metrics[0]
        if w.group(1):
            args["limit"] = _count(w.group(1))
    return args


def _count(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]


def _relation(catalog: Catalog, first: str, second: str, today: date) -> str | None:
    """How the second period named relates to the first: the one before it, or the same one a year earlier."""
    cal = FiscalCalendar(catalog.spec.fiscal_year_start_month)
    try:
        a, b = parse_period(first, today, cal), parse_period(second, today, cal)
    except PeriodError:
        return None
    for how in ("previous_period", "same_period_last_year"):
        other = comparison_period(a, how, cal)
        if (other.start, other.end) == (b.start, b.end):
            return how
    return None


def _good_down(catalog: Catalog, metric: str) -> bool:
    return catalog.metrics[metric].good_direction == "down"


def _is_follow_up(message: str) -> bool:
    return bool(re.match(r"^\s*(and|also|what about|how about|same for|and for|ok and|then|now)\b", message, re.I))


def fill_anomalies(catalog: Catalog, message: str, previous: dict[str, Any] | None) -> dict[str, Any] | Clarify:
    metrics = find_metrics(catalog, message)
    if not metrics and previous and previous.get("tool") == "detect_anomalies":
        args = dict(previous["args"])
        dims, _ = _dimensions(catalog, message)
        filters = _filters(catalog, message, dims)
        if filters:
            kept = [f for f in args.get("filters", []) if f["dimension"] not in {g["dimension"] for g in filters}]
            args["filters"] = kept + filters
            args["by"] = [d for d in args.get("by", []) if d not in {f["dimension"] for f in filters}]
        if dims:
            args["by"] = dims[:2]
        if m := PERIOD.search(message):
            args["period"] = m.group(0)
        return args
    if not metrics:
        return Clarify("Which metric should I check for anomalies? For example CPL, spend or the hard bounce rate.")
    dims, grain_word = _dimensions(catalog, message)
    grain = _grain(message) or grain_word or ("day" if catalog.measures[catalog.metric_measures(metrics[0])[0]].table
                                               == "fct_email_send" else "month")  # fmt: skip
    if grain not in ("day", "week", "month"):
        grain = "month"
    periods = [m.group(0) for m in PERIOD.finditer(message)]
    args: dict[str, Any] = {"metric": metrics[0], "grain": grain, "by": dims[:2]}
    args["period"] = periods[0] if periods else ("last 90 days" if grain == "day" else "last 6 months")
    filters = _filters(catalog, message, dims)
    if filters:
        args["filters"] = filters
    return args


def compose_metrics(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    """The figures with their period, comparison and definitions; every number comes from the result rows."""
    r = outcome.data
    if not r.get("rows"):
        return f"No data for {', '.join(r['labels'].values())} in {r['period']['label']}." + _footer(r)
    lines = []
    rows = r["rows"]
    single = len(rows) == 1 and not r["dimensions"] and not r.get("grain")
    comp = r.get("comparison")
    if single:
        parts = []
        for m in r["metrics"]:
            v = format_value(rows[0][m], r["units"][m])
            text = f"{r['labels'][m]} for {r['period']['label']}: {v}"
            if comp:
                prev = format_value(rows[0].get(f"{m}_previous"), r["units"][m])
                text += f" (vs {prev} in {comp['label']}, {format_change(rows[0].get(f'{m}_change'))})"
            parts.append(text)
        lines.append("; ".join(parts) + ".")
    else:
        names = ", ".join(r["labels"][m] for m in r["metrics"])
        by = f" by {', '.join(r['dimensions'])}" if r["dimensions"] else ""
        per = f" per {r['grain']}" if r.get("grain") else ""
        vs = f" (vs {comp['label']})" if comp else ""
        lines.append(f"{names}{by}{per}, {r['period']['label']}{vs}:")
        for row in rows[:15]:
            cells = []
            for m in r["metrics"]:
                cell = format_value(row.get(m), r["units"][m])
                if len(r["metrics"]) > 1:
                    cell = f"{r['labels'][m]} {cell}"
                if comp:
                    prev = format_value(row.get(f"{m}_previous"), r["units"][m])
                    cell += f" (before {prev}, {format_change(row.get(f'{m}_change'))})"
                cells.append(cell)
            lines.append(f"• {row_label(row, r)}: {'; '.join(cells)}")
        if len(rows) > 15:
            lines.append(f"… and {len(rows) - 15} more rows (see the table).")
    for t in r.get("thresholds", []):
        state = "breached" if t["breached"] else ("too few leads to judge" if t["breached"] is None else "within")
        lines.append(f"Threshold {t['label']}: {format_value(t['threshold'], 'usd')} — {state}.")
    return "\n".join(lines) + _footer(r)


def _footer(r: dict[str, Any]) -> str:
    latest = min((d for d in r["freshness"].values() if d), default="unknown")
    notes = [f"Data through {latest}; {r['row_count']} row(s)."]
    if r.get("attribution"):
        notes.append(f"Attribution model: {r['attribution'].replace('_', '-')}.")
    notes += r.get("notes", [])
    notes.append("Definition: " + " | ".join(r["definitions"].values()))
    return "\n" + "\n".join(f"_{n}_" for n in notes)


def compose_anomalies(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    d = outcome.data
    if not d["anomalies"]:
        return (
            f"No anomalies in {d['label']} per {d['grain']}, {d['period']['label']} (robust z-score against the "
            f"trailing baseline).\n_Data through {min(d['freshness'].values())}._"
        )
    n = len(d["anomalies"])
    lines = [f"{n} {'anomaly' if n == 1 else 'anomalies'} in {d['label']} per {d['grain']}, {d['period']['label']}:"]
    for a in d["anomalies"][:8]:
        group = " · ".join(str(v) for v in a["group"].values())
        where = f"{group} " if group else ""
        lines.append(
            f"• {where}{a['bucket']}: {format_value(a['value'], d['unit'])} vs a baseline of "
            f"{format_value(a['baseline'], d['unit'])} ({format_change(a['change'])}, z {a['z']})"
        )
    lines.append(f"_Data through {min(d['freshness'].values())}. Definition: {' | '.join(d['definitions'].values())}_")
    return "\n".join(lines)


def compose_list(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    rows = outcome.data["metrics"]
    lines = [f"I can report {len(rows)} catalogued metrics:"]
    lines += [f"• {m['label']} ({m['name']})" for m in rows]
    lines.append('Ask for one by name, e.g. "CPL by channel last quarter", or "describe ROAS".')
    return "\n".join(lines)


def compose_describe(message: str, outcome: ToolOutcome, request: TurnRequest) -> str:
    d = outcome.data
    lines = [d["definition"], f"Type: {d['type']} metric, unit {d['unit']}."]
    for name, m in d["measures"].items():
        filt = f" where {m['filter']}" if m["filter"] else ""
        lines.append(f"• {name}: {m['agg']}({m['expr']}) from {m['table']}{filt}, dated by {m['date_column']}")
    lines.append(f"Breakdowns: {', '.join(d['dimensions'])}.")
    if d["caveat"]:
        lines.append(d["caveat"])
    lines.append("Source: [1] Metrics Glossary (owner Nina Petrova)")
    return "\n".join(lines)
