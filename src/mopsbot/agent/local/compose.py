"""Answers the local planner writes from tool results: extractive, cited, and with no number of its own."""

from __future__ import annotations

import math
import re
from typing import Any

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_STEM = Stemmer.Stemmer("english")
_STOP = frozenset(STOPWORDS_EN) | {"what", "how", "who", "when", "where", "which", "why", "our", "we", "do", "does"}
_WORD = re.compile(r"[a-z0-9_]+")
MAX_POINTS = 3
_QUANTITY_QUESTION = re.compile(
    r"\b(how (long|much|many|fast|soon|often|quickly|far ahead)|when|what time|deadline|lead time|threshold|"
    r"cap|limit|most|maximum|minimum|max|min|budget|cost|rate|percent|days?|hours?)\b",
    re.I,
)
_PERSON_QUESTION = re.compile(r"\b(who|whom|whose|owner|owns|approves?|sign(s)? off)\b", re.I)
_NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")

CAPABILITIES = (
    "I answer marketing-ops questions from the team's SOPs and stack docs, with citations, and report campaign "
    "metrics from the governed metric catalog. Try:\n"
    "• what's our SOP for a webinar?\n"
    "• what's the CPL threshold for paid social in EMEA?\n"
    "• how fast must SDRs follow up on a demo request?\n"
    "• CPL by channel last quarter vs the quarter before\n"
    "• pipeline by channel, W-shaped"
)


def _stems(text: str) -> set[str]:
    return {s for s in _STEM.stemWords([w for w in _WORD.findall(text.lower()) if w not in _STOP])}


def _units(text: str) -> list[str]:
    """Candidate answer units: table rows and list items whole, prose split into sentences.

    Documents are hard-wrapped, so wrapped lines are joined back into their paragraph or list item first.
    """
    blocks: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        starts_item = stripped.startswith(("|", "- ", "* ", "• ", "#")) or re.match(r"^\d+[.)]\s", stripped)
        if not stripped:
            blocks.append("")
        elif starts_item or not blocks or not blocks[-1] or blocks[-1].startswith(("|", "#")):
            blocks.append(stripped)
        else:
            blocks[-1] += " " + stripped
    units: list[str] = []
    header: list[str] = []
    for i, block in enumerate(blocks):
        if not block or block.startswith("#") or set(block) <= set("|-: "):
            continue
        if block.startswith("|"):
            cells = [c.strip() for c in block.strip().strip("|").split("|")]
            next_is_rule = i + 1 < len(blocks) and blocks[i + 1] and set(blocks[i + 1]) <= set("|-: ")
            if next_is_rule:  # a header row: remember it, do not quote it on its own
                header = cells
            elif header and len(header) == len(cells):
                units.append("; ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c))
            else:
                units.append(" | ".join(cells))
            continue
        block = re.sub(r"^(\d+[.)]|[-*•])\s+", "", block)
        units += [u.strip() for u in re.split(r"(?<=[.!?])\s+(?=[A-Z`*(])", block) if len(u.split()) >= 4]
    return [u.replace("**", "*") for u in units]


def knowledge_answer(query: str, data: dict[str, Any], caller_visibility: str) -> str:
    """The most relevant sentences of the top passages, each with its citation number, then the sources."""
    if not data.get("found"):
        missing = data.get("missing_terms") or []
        about = f" about {', '.join(repr(t) for t in missing)}" if missing else " that answers this"
        hint = (
            " Some runbooks and stack docs are ops-only: ask me in a DM or in the ops channel."
            if caller_visibility in ("public", "private")
            else ""
        )
        return f"I couldn't find anything{about} in the documents I can use here.{hint}"
    passages = data["passages"]
    wanted = _stems(query)
    units = [(p, u, _stems(u)) for p, passage in enumerate(passages) for u in _units(passage["quoted_text"])]
    # words that occur in every returned passage say little; rare ones say a lot
    df = {w: sum(1 for passage in passages if w in _stems(passage["quoted_text"])) for w in wanted}
    weight = {w: 1.0 + math.log((1 + len(passages)) / (1 + df[w])) for w in wanted}
    wants_quantity = bool(_QUANTITY_QUESTION.search(query))
    wants_person = bool(_PERSON_QUESTION.search(query))
    scored = []
    for p, unit, stems in units:
        hit = sum(weight[w] for w in wanted & stems)
        if hit:
            # answer-type match: "how long / when / how much" wants a figure, "who" wants a name
            if wants_quantity and re.search(r"\d", unit):
                hit += 1.0
            if wants_person and _NAME.search(unit):
                hit += 1.0
            scored.append((hit / (1 + 0.015 * len(unit.split())) - 0.35 * p, p, unit))
    scored.sort(key=lambda x: -x[0])
    chosen: list[tuple[int, str]] = []
    for _, p, unit in scored:
        if len(chosen) == MAX_POINTS:
            break
        if unit not in (u for _, u in chosen):
            chosen.append((p, unit))
    if not chosen:
        first = _units(passages[0]["quoted_text"])
        chosen = [(0, first[0] if first else passages[0]["quoted_text"][:300])]
    used = sorted({p for p, _ in chosen})
    number = {p: i + 1 for i, p in enumerate(used)}
    lines = ["From the team's documents:"]
    lines += [f"• {unit} [{number[p]}]" for p, unit in chosen]
    lines.append("Sources: " + "; ".join(_source(number[p], passages[p]) for p in used))
    if any(passages[p].get("contains_instruction_like_text") for p in used):
        lines.append("Note: a quoted document contains text addressed to an AI; it is quoted here, not acted on.")
    return "\n".join(lines)


def _source(n: int, passage: dict[str, Any]) -> str:
    updated = f", updated {passage['updated']}" if passage.get("updated") else ""
    owner = f" (owner {passage['owner']}{updated})" if passage.get("owner") else ""
    return f"[{n}] {passage['title']} — {passage['section']}{owner}"
