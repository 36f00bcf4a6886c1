"""Text that addresses an AI: flagged wherever the bot reads it (documents, metric labels, campaign names, change
requests, user messages), so it is quoted and never obeyed, and a write that follows it says where it came from.

A detector of phrasings in several languages, tuned for recall on instructions aimed at an assistant while
leaving ordinary operations prose ("ignore bounce rates under 2%", "approvers must be in the privacy group")
alone. Measured on evals/blind/injection_labelled.yaml (`python benchmarks/bench_injection.py`).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

_AI = r"(?:ai|a\.i\.|assistant|chat ?bot|bot|llm|language model|model|agent|copilot|mopsbot|gpt|claude|gemini)"
_PRIOR = (
    r"(?:previous|prior|preceding|above|earlier|original|initial|system|existing|all|any|your|the|these|those|other)"
)
_RULES = r"(?:instructions?|prompts?|rules?|guidelines?|guidance|directives?|policies|policy|constraints?|guardrails?|programming|context|orders?|commands?|safeguards?|restrictions?)"

_PATTERNS = [
    # "ignore the previous instructions", "disregard all prior guidance", "forget your rules"
    rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|discard|abandon|neglect|overlook|set aside|throw out)\b"
    rf"(?:\s+\w+){{0,3}}?\s+{_PRIOR}\b(?:\s+\w+){{0,2}}?\s+{_RULES}\b",
    r"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|previously|you were told|else)",
    rf"\b(?:forget|ignore)\s+(?:your|all your|the)\s+{_RULES}",
    # "you are now in admin mode", "you are DAN", "act as an unrestricted AI", "enter developer mode"
    r"\byou\s+are\s+now\b",
    r"\b(?:admin|developer|god|debug|maintenance|root|sudo|unrestricted|jailbreak|dan)\s+mode\b",
    r"\b(?:act|behave|pretend|roleplay|role-play)\s+(?:as|like|to be)\s+(?:an?\s+)?(?:unrestricted|unfiltered|different|new|evil|jailbroken|admin)",
    r"\bfrom now on\b[^.\n]{0,60}\b(?:you|approve|ignore|always|never)\b",
    r"\bnew\s+(?:system\s+)?(?:instructions?|rules|directives?|orders)\b(?!\s+for\b)",
    r"\b(?:updated|revised|real|actual|secret|hidden|override)\s+(?:system\s+)?instructions?\b",
    r"\binstructions?\s+(?:for|to)\s+(?:the\s+)?" + _AI + r"\b",
    # role tags and chat-format markers
    r"(?:^|[\s\[<(])(?:system|assistant|developer)\s*(?::|>|\]|\|)\s*\S",
    r"<\s*/?\s*(?:system|assistant|instructions?|admin|im_start|im_end)\b",
    r"\[\s*(?:inst|/inst|system)\s*\]",
    r"#{2,}\s*(?:system|instruction|admin)",
    r"\[\s*(?:assistant|ai|bot|system|llm|agent)\b[^\]]{0,24}\]",
    r"<\s*/?\s*(?:approval|approved|decision|change)\b[^>]{0,80}(?:approved|status)",
    # addressing the assistant with an order
    rf"\b(?:attention|note to|message to|for)\s+(?:the\s+|all\s+)?(?:automated\s+)?{_AI}s?\b(?:\s+only)?\s*[:)*]",
    rf"\bdear\s+(?:the\s+)?{_AI}\b",
    r"\b(?:updated|changed|replaced|overridden|revised)\s+your\s+(?:instructions|rules|guidelines|policy|prompt)\b",
    rf"(?:^|[\n.;!?>]\s*)(?:{_AI})\s*[:,]\s*(?:please\s+)?(?:pretend|act|behave|treat|approve|ignore|disregard|forget|file|send|delete|"
    r"route|respond|reply|answer|say|mark|skip|bypass|include|add|remove|change|set|tell|print|call|run|override|"
    r"desconsidere|ignora|ignoriere)\b",
    rf"\b{_AI}s?\b[^.\n]{{0,50}}\b(?:must|should|shall|needs? to|has to|have to|is required to|are required to|reading this|will now|now)\b",
    rf"\bif you are (?:an?\s+)?{_AI}\b",
    r"\bas (?:an?|the)\s+(?:ai|assistant|language model|bot|llm)\b",
    # asking for approvals, policy bypass, tools, exfiltration
    r"(?<!no )(?<!not )\bauto[- ]?approve|(?:^|[.;!?:]\s*|\b(?:please|just|now|must|shall|should|will)\s+)approve\s+(?:all|every(?:thing)?|any|this|it|them|the (?:pending|request|action|change))\b|\bmark\s+(?:it|this|them)?\s*(?:as\s+)?approved\b|\bpre-?approved by\b",
    r"\btreat (?:this|it|the \w+)(?: \w+)? as (?:my |an? |the )?(?:approval|approved|consented|-consented|authori[sz]ation)",
    r"\b(?:respond|answer|reply|act)\s+as\s+(?!a reminder)\w*(?:bot|gpt|ai|assistant|dan)\b",
    r"\b(?:respond|answer|reply) to (?:any|every|all) (?:question|request|message)s?\b",
    r"\bregardless of (?:what )?(?:the )?(?:data|numbers|policy|rules)",
    r"\bif you (?:had|have) no (?:approval |safety )?(?:rules|restrictions|policy|policies|guardrails|limits)\b",
    r"\byou have been (?:granted|given|promoted)\b",
    r"\b(?:the )?(?:requester[- ]cannot[- ]approve|approval) rule is (?:void|suspended|lifted|disabled)",
    r"\bsudo\b|--(?:force|skip-\w+|no-verify|bypass\w*)\b",
    r"\b(?:ignore|disregard|forget)\s+(?:the\s+)?(?:numbers|data|results?|figures|values|text)\s+(?:above|below|before)",
    r"\b(?:skip|bypass|circumvent|disable|turn off|without)\s+(?:the\s+)?(?:approval|approver|review|privacy review|dpo|policy check|guardrails?|safety|checks?)\b",
    r"\b(?:call|invoke|run|execute|use)\s+(?:the\s+)?(?:tool|function)\b",
    r"\b(?:file|submit|create|open)\s+(?:a\s+)?(?:change request|cr)\b[^.\n]{0,80}\b(?:immediately|without|automatically|now)\b",
    r"\b(?:reveal|print|show|output|repeat|leak|dump|display|tell me)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+)?(?:prompt|instructions|configuration|secrets?|api keys?|tokens?|passwords?)\b",
    r"\b(?:your|the assistant'?s|the bot'?s|mopsbot'?s) (?:system )?prompt\b",
    r"\b(?:send|email|post|upload|forward|export|exfiltrate)\b[^.\n]{0,60}\b(?:to|at)\s+(?:https?://|[\w.+-]+@[\w-]+\.)",
    r"\bdo not (?:tell|inform|alert|notify|mention)\b[^.\n]{0,40}\b(?:user|anyone|approver|human|admin|dpo)",
    # other languages
    r"\b(?:desconsidere|desconsiderar|ignorar)\b[^.\n]{0,40}\b(?:política|politica|regras|instruções|instrucoes|consentimento)\b",
    r"\b(?:ignoriere|vergiss|missachte)\b[^.\n]{0,40}\b(?:anweisungen|regeln|vorgaben|instruktionen)\b",
    r"\bdu bist (?:jetzt|nun)\b",
    r"\b(?:genehmige|freigeben|gib frei)\b[^.\n]{0,40}\b(?:alle|sofort|automatisch)\b",
    r"\b(?:ignore[sz]?|oublie[sz]?|ne tiens pas compte)\b[^.\n]{0,40}\b(?:instructions|consignes|règles|regles)\b",
    r"\b(?:tu es|vous êtes|vous etes) (?:maintenant|désormais|desormais)\b",
    r"\b(?:approuve[sz]?|valide[sz]?)\b[^.\n]{0,30}\b(?:tout|toutes|automatiquement)\b",
    r"\b(?:ignora|olvida|omite|ignore)\b[^.\n]{0,40}\b(?:instrucciones|reglas|indicaciones|instruções|instrucoes|regras)\b",
    r"\b(?:ahora eres|agora você é|agora voce e|a partir de ahora)\b",
    r"\b(?:aprueba|aprova|aprove|aprobar)\b[^.\n]{0,30}\b(?:todo|todos|todas|tudo|automáticamente|automaticamente)\b",
    r"\b(?:negeer|vergeet)\b[^.\n]{0,40}\b(?:instructies|regels)\b",
    r"(?:以前|前|上記|これまで|すべて|全て)の?(?:指示|命令|ルール|指令)を?(?:無視|忘れ)",
    r"(?:指示|命令|ルール)を?(?:無視|忘れ)",
    r"(?:承認|許可)(?:して|しろ|せよ|してください)",
    r"(?:忽略|无视|無視|忘记)[^。\n]{0,8}(?:指令|指示|说明|规则)",
    r"(?:管理者|開発者|管理员)モード|管理员模式|承認(?:なし|せず)|无需批准|跳过审批",
    r"(?:批准|审批)(?:所有|全部)",
    r"システムプロンプト|系统提示",
]
_DETECTOR = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)
_HIDDEN = re.compile(r"<!--(.*?)-->|\[//\]: # \((.*?)\)", re.S)
_BASE64 = re.compile(r"\b[A-Za-z0-9+/]{24,}={0,2}")


def _normalize(text: str) -> str:
    """Fold width and accents, join letters spaced out with hyphens or dots ("i-g-n-o-r-e"), drop zero-widths."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\u200b-\u200f\u2060\ufeff]", "", text)
    text = re.sub(r"\b(?:\w[-.·*_ ]){3,}\w\b", lambda m: re.sub(r"[-.·*_ ]", "", m.group(0)), text)
    return text


def _decoded(text: str) -> Iterable[str]:
    for m in _BASE64.finditer(text):
        try:
            raw = base64.b64decode(m.group(0), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if raw.isprintable():
            yield raw


def addresses_ai(text: str | None) -> bool:
    """True when `text` reads as instructions to an AI assistant (in any of the phrasings above)."""
    if not text:
        return False
    candidates = [text, _normalize(text), re.sub(r"[-_]+", " ", text)]
    candidates += [g for m in _HIDDEN.finditer(text) for g in m.groups() if g]
    candidates += list(_decoded(text))
    return any(_DETECTOR.search(c) for c in candidates)


def flagged_strings(value: Any, limit: int = 5) -> list[str]:
    """Strings anywhere in a tool result (dicts, lists, table cells) that address an AI."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(v, str):
            if len(v) >= 8 and addresses_ai(v):
                found.append(v)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    return found


# A message asking the bot itself to decide (approve, reject, execute) or to get round approval or policy. The bot
# has no way to decide anything; such a message is answered with what it will and will not do.
_DECIDE = re.compile(
    r"(?<!\bto )(?<!\bcan )(?<!\bcould )(?<!\bwill )(?<!\bmay )(?<!\bmust )(?<!\bwho )"
    r"\b(?:auto[- ]?approve|self[- ]?approve|approve|reject|execute|authori[sz]e|sign[- ]off on|rubber[- ]stamp)\b"
    r"(?!\s*(?:\?|$|d\b|s\b|r\b|al\b))(?!\s+(?:reasons?|rates?|codes?|status|button|step|flow|queue|path|"
    r"picklist|field|date|permissions?|rights|logic|rules?)\b)"
    r"|\bmark\s+(?:it|this|them|that|\S+)\s+(?:as\s+)?(?:approved|executed|done)\b"
    r"|\b(?:skip|bypass|circumvent|avoid|without|no need for|don'?t need|override|disable|turn off)\s+"
    r"(?:the\s+|an\s+|any\s+)?(?:approvals?|approvers?|review|sign-?off|policy|policies|dpo|privacy review|"
    r"change process|guardrails?|card)\b"
    r"|\b(?:treat|consider)\s+(?:this|it)\s+(?:as\s+)?approved\b",
    re.I,
)
_QUESTION_START = re.compile(
    r"^\s*(?:who|what|how|when|why|which|where|is|are|does|do|did|should|shall|can i|could i|may i|has|have)\b", re.I
)


def asks_to_decide(message: str) -> bool:
    """True when a user's message tells the bot to approve, reject or execute something, or to skip approval."""
    candidates = [message, _normalize(message), *_decoded(message)]
    for text in candidates:
        if _QUESTION_START.match(text) and not re.search(r"\byou\b", text, re.I):
            continue
        if _DECIDE.search(text):
            return True
    return False
