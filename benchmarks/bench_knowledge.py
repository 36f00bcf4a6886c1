"""Knowledge benchmark on a generated corpus of N documents (default 1,000).

    .venv/bin/python benchmarks/bench_knowledge.py [--docs 1000] [--queries 200] [--embeddings minilm]

Prints ingest throughput (chunks/s), hybrid query latency p50/p95, the ratio of mopsbot's retrieval (dense +
BM25 + fusion + filters, given the query vector) to a raw Chroma query for the same vector and filter (goal
<= 2x), and the time to re-ingest after changing one document (goal < 2 s).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from mopsbot.caller import AccessPolicy, CallerContext
from mopsbot.knowledge.embeddings import make_embedder
from mopsbot.knowledge.evaluate import load_cases
from mopsbot.knowledge.index import KnowledgeIndex, open_client
from mopsbot.knowledge.retrieval import Retriever

REPO = Path(__file__).resolve().parents[1]
CALLER = CallerContext("U07PR0002", "C07MOPS001", "ops")


def make_corpus(folder: Path, n: int, seed: int = 1) -> None:
    """N markdown documents built from the demo knowledge's sentences, so text statistics are realistic."""
    rng = random.Random(seed)
    sentences = []
    for path in (REPO / "knowledge").rglob("*.md"):
        body = path.read_text().split("---", 2)[2]
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if 40 < len(s.strip()) < 300 and "|" not in s]
    for i in range(n):
        sections = []
        for j in range(rng.randint(2, 5)):
            sections.append(
                f"## Section {j + 1}: {rng.choice(sentences)[:50]}\n\n" + " ".join(rng.sample(sentences, 5))
            )
        visibility = rng.choice(["public", "public", "ops", "restricted"])
        (folder / f"doc-{i:04d}.md").write_text(
            f"---\ntitle: Generated document {i}\nowner: Priya Raman\nvisibility: {visibility}\n"
            f"updated: 2026-10-01\ntags: [generated]\n---\n# Generated document {i}\n\n" + "\n\n".join(sections) + "\n"
        )


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embeddings", default="minilm", choices=["minilm", "static"])
    args = parser.parse_args()
    questions = [c.question for c in load_cases(REPO / "evals" / "retrieval" / "questions.yaml")]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.docs)
        index = KnowledgeIndex(open_client(None, Path(tmp) / "chroma"), make_embedder(args.embeddings))
        start = time.perf_counter()
        report = index.ingest([corpus])
        ingest_s = time.perf_counter() - start
        print(
            f"ingest: {len(report.added)} documents, {report.chunks_embedded} chunks in {ingest_s:.1f} s "
            f"= {report.chunks_embedded / ingest_s:.1f} chunks/s ({index.embedder.name})",
            flush=True,
        )

        retriever = Retriever(index, AccessPolicy())
        retriever.search("warm up", CALLER)
        queries = [questions[i % len(questions)] for i in range(args.queries)]
        full, ours, raw = [], [], []
        visible = sorted(retriever.policy.visible(CALLER))
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(q, CALLER)
            full.append((time.perf_counter() - t0) * 1e3)
            vector = index.embedder.embed([retriever.expand(q)])[0]
            t0 = time.perf_counter()
            retriever.search_vector(q, vector, CALLER)
            ours.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            index.collection.query(
                query_embeddings=[vector.tolist()], n_results=5, where={"visibility": {"$in": visible}}
            )
            raw.append((time.perf_counter() - t0) * 1e3)
        print(f"query (embed + hybrid search): p50 {pct(full, 0.5):.1f} ms, p95 {pct(full, 0.95):.1f} ms")
        print(
            f"retrieval given the vector: mopsbot p50 {pct(ours, 0.5):.2f} ms vs raw Chroma p50 {pct(raw, 0.5):.2f} ms "
            f"-> ratio {statistics.median(ours) / statistics.median(raw):.2f}x (goal <= 2x)"
        )

        target = corpus / "doc-0007.md"
        target.write_text(
            target.read_text() + "\n\n## Added later\n\nThe webinar dry run moves to three days before.\n"
        )
        t0 = time.perf_counter()
        again = index.ingest([corpus])
        reingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        retriever.search("webinar dry run three days", CALLER)
        first_query_s = time.perf_counter() - t0
        print(
            f"re-ingest after changing one document: {reingest_s:.2f} s ({again.chunks_embedded} chunks embedded, "
            f"{len(again.unchanged)} unchanged; goal < 2 s); first query after it (keyword index rebuild) "
            f"{first_query_s:.2f} s"
        )


if __name__ == "__main__":
    main()
