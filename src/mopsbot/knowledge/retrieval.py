"""Hybrid retrieval: dense vectors and BM25 keywords fused by reciprocal rank, filtered by the caller's context.

A result says plainly when nothing relevant was found (the best passage is below the relevance floor) instead
of passing weak matches off as answers.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from mopsbot.caller import AccessPolicy, CallerContext
from mopsbot.knowledge.embeddings import english_words
from mopsbot.knowledge.index import KnowledgeIndex

RRF_K = 60
CANDIDATES = 20
FRESHNESS_CHECK_S = 5.0  # how often a retriever asks the store whether another process changed it
_WORD = re.compile(r"[a-z][a-z0-9]*")
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
# Field names, ids and codes (Lead_Score__c, INC-2026-011, 2026-Q4_PSO_AI-Ops_EMEA): passages containing them
# verbatim form a third ranking in the fusion, since BM25 alone lets common words outweigh them.
_IDENTIFIER = re.compile(r"\b[\w-]*\w_\w[\w-]*\b|\b[A-Z]{2,}-\d+(?:-\d+)*\b")
_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(STOPWORDS_EN) | {"what", "whats", "how", "who", "when", "where", "which", "why", "our"}


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with its citation and how each retriever ranked it."""

    chunk_id: str
    doc_id: str
    title: str
    section: str
    path: str
    owner: str
    updated: str
    visibility: str
    text: str
    score: float
    dense_similarity: float | None
    dense_rank: int | None
    bm25_rank: int | None

    def citation(self) -> dict[str, str]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "path": self.path,
            "owner": self.owner,
            "updated": self.updated,
        }


@dataclass(frozen=True)
class SearchResult:
    query: str
    passages: list[Passage]
    relevant: bool
    visibilities: frozenset[str]
    best_similarity: float | None = None
    best_bm25: float | None = None
    missing_terms: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)


class _KeywordIndex:
    """BM25 over every chunk (title and section included), with a visibility mask per query."""

    def __init__(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]]) -> None:
        self.ids = ids
        self.metas = metas
        self.visibility = np.array([m["visibility"] for m in metas]) if metas else np.array([], dtype=str)
        self.texts = texts
        self._lowered = [t.lower() for t in texts]
        corpus = [f"{m['title']} {m['section']}\n{t}" for t, m in zip(texts, metas, strict=True)]
        self.bm25 = bm25s.BM25()
        if corpus:
            tokens = bm25s.tokenize(corpus, stopwords="en", stemmer=_STEMMER.stemWords, show_progress=False)
            self.bm25.index(tokens, show_progress=False)
        # stems that occur in documents of each visibility, to spot query terms no visible document mentions
        self.stems: dict[str, set[str]] = {}
        for doc, meta in zip(corpus, metas, strict=True):
            self.stems.setdefault(meta["visibility"], set()).update(_STEMMER.stemWords(_WORD.findall(doc.lower())))

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one small cache per index object, dropped with it
    def _known(self, visibilities: frozenset[str]) -> frozenset[str]:
        return frozenset().union(*(self.stems.get(v, set()) for v in visibilities))

    def missing_terms(self, words: list[str], visibilities: frozenset[str]) -> tuple[str, ...]:
        """Query words that no visible document mentions and that are not everyday English.

        Everyday words are left out because a paraphrase may use them; a product name, acronym or jargon term that
        appears nowhere (TikTok, GA4, "retainer") means the documents do not cover the question.
        """
        known = self._known(visibilities)
        common = english_words()
        return tuple(
            w
            for w in dict.fromkeys(words)
            if len(w) >= 3 and w not in _STOPWORDS and _STEMMER.stemWord(w) not in known and w not in common
        )

    def search(self, query: str, visibilities: frozenset[str], k: int) -> list[tuple[int, float]]:
        if not self.ids:
            return []
        mask = np.isin(self.visibility, list(visibilities)).astype(np.float32)
        # Tokens as strings, limited to the index's vocabulary (ids from a fresh tokenize call would not match it).
        raw = bm25s.tokenize(query, stopwords="en", stemmer=_STEMMER.stemWords, return_ids=False, show_progress=False)
        tokens = [t for t in raw[0] if t in self.bm25.vocab_dict]
        if not tokens:
            return []
        k = min(k, len(self.ids))
        docs, scores = self.bm25.retrieve([tokens], k=k, show_progress=False, weight_mask=mask)
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def exact(self, identifiers: list[str], visibilities: frozenset[str], k: int) -> list[int]:
        """Chunks containing the identifiers verbatim (case-insensitive), most occurrences first."""
        needles = [i.lower() for i in identifiers]
        counts = [
            (sum(text.count(n) for n in needles), i)
            for i, text in enumerate(self._lowered)
            if self.metas[i]["visibility"] in visibilities
        ]
        return [i for c, i in sorted(counts, key=lambda x: (-x[0], x[1])) if c > 0][:k]


class Retriever:
    """Searches a KnowledgeIndex for a caller; rebuilds its keyword index when the index changes."""

    def __init__(
        self, index: KnowledgeIndex, policy: AccessPolicy, top_k: int = 5, synonyms: dict[str, str] | None = None
    ) -> None:
        self.index = index
        self.policy = policy
        self.top_k = top_k
        self.synonyms = {k.lower(): v for k, v in (synonyms or {}).items()}
        self._keywords: _KeywordIndex | None = None
        self._keywords_version: tuple[int, int] = (-1, -1)
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Rebuild the keyword index from the vector store (after an ingest)."""
        with self._lock:
            ids, texts, metas = self.index.all_chunks()
            self._keywords = _KeywordIndex(ids, texts, metas)
            self._keywords_version = (self.index.generation, len(ids))

    def _keyword_index(self) -> _KeywordIndex:
        # The generation catches changes made in this process at once; the chunk count, checked every few seconds,
        # catches most changes made by another process (a replica or `mopsbot knowledge ingest`).
        now = time.monotonic()
        if self._keywords is None or self.index.generation != self._keywords_version[0]:
            self.refresh()
        elif now - self._checked_at > FRESHNESS_CHECK_S:
            self._checked_at = now
            if self.index.count() != self._keywords_version[1]:
                self.refresh()
        assert self._keywords is not None
        return self._keywords

    def search(self, query: str, caller: CallerContext, k: int | None = None) -> SearchResult:
        """The top passages the caller may see, fused from dense and keyword rankings."""
        expanded = self.expand(query)
        t0 = time.perf_counter()
        vector = self.index.embedder.embed([expanded])[0]
        embed_ms = (time.perf_counter() - t0) * 1e3
        result = self.search_vector(query, vector, caller, k)
        result.timings_ms["embed"] = embed_ms
        return result

    def expand(self, query: str) -> str:
        """The query with team shorthand spelled out ("opp" -> "opportunity"); field names kept as typed."""
        return re.sub(r"[A-Za-z]\w*", lambda m: self.synonyms.get(m.group(0).lower(), m.group(0)), query)

    def search_vector(
        self, query: str, vector: np.ndarray, caller: CallerContext, k: int | None = None
    ) -> SearchResult:
        """`search` with the query's vector already computed (the embedding is the costly part)."""
        k = k or self.top_k
        visible = self.policy.visible(caller)
        expanded = self.expand(query)
        words = _WORD.findall(expanded.lower())
        t1 = time.perf_counter()
        dense = self.index.query(vector, CANDIDATES, visible)
        t2 = time.perf_counter()
        keywords = self._keyword_index()
        sparse = keywords.search(expanded, visible, CANDIDATES)
        missing = keywords.missing_terms(words, visible)
        exact = keywords.exact(_IDENTIFIER.findall(query), visible, CANDIDATES) if _IDENTIFIER.search(query) else []
        t3 = time.perf_counter()

        fused: dict[str, dict[str, Any]] = {}
        for rank, hit in enumerate(dense, 1):
            entry = fused.setdefault(hit.chunk_id, {"text": hit.text, "meta": hit.metadata})
            entry.update(dense_rank=rank, similarity=hit.similarity)
        for rank, (i, score) in enumerate(sparse, 1):
            entry = fused.setdefault(keywords.ids[i], {"text": keywords.texts[i], "meta": keywords.metas[i]})
            entry.update(bm25_rank=rank, bm25=score)
        for rank, i in enumerate(exact, 1):
            entry = fused.setdefault(keywords.ids[i], {"text": keywords.texts[i], "meta": keywords.metas[i]})
            entry.update(exact_rank=rank)
        for entry in fused.values():
            entry["score"] = sum(
                1.0 / (RRF_K + entry[r]) for r in ("dense_rank", "bm25_rank", "exact_rank") if r in entry
            )
        ranked = sorted(fused.items(), key=lambda kv: -kv[1]["score"])[:k]
        passages = [_passage(cid, e) for cid, e in ranked]
        best_sim = max((h.similarity for h in dense), default=None)
        best_bm25 = max((s for _, s in sparse), default=None)
        relevant = (
            bool(passages) and best_sim is not None and best_sim >= self.index.embedder.relevance_floor and not missing
        )
        timings = {"dense": (t2 - t1) * 1e3, "keyword": (t3 - t2) * 1e3}
        return SearchResult(
            query, passages if relevant else [], relevant, visible, best_sim, best_bm25, missing, timings
        )


def _passage(chunk_id: str, e: dict[str, Any]) -> Passage:
    m = e["meta"]
    return Passage(
        chunk_id=chunk_id,
        doc_id=m["doc_id"],
        title=m["title"],
        section=m["section"],
        path=m["path"],
        owner=m.get("owner", ""),
        updated=m.get("updated", ""),
        visibility=m["visibility"],
        text=e["text"],
        score=e["score"],
        dense_similarity=e.get("similarity"),
        dense_rank=e.get("dense_rank"),
        bm25_rank=e.get("bm25_rank"),
    )
