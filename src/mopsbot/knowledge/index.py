"""The knowledge index: chunks and vectors in Chroma (through llama-index), kept in step with the files.

Ingest is incremental: a document whose content hash is unchanged is skipped (no embedding work); a changed one
has its chunks replaced; a document whose file is gone from a scanned folder is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.vector_stores.chroma import ChromaVectorStore

from mopsbot.knowledge.chunking import chunk_document, embedding_text
from mopsbot.knowledge.documents import SUPPORTED, DocumentError, SourceDocument, doc_id_for, load_document
from mopsbot.knowledge.embeddings import Embedder, make_embedder

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (file, done, total)


class IndexUnavailable(RuntimeError):
    """The vector store cannot be opened or reached; the message says where."""


class _ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Hands our embedder to Chroma, so Chroma never falls back to its downloading default."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "mopsbot"

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _ChromaEmbeddingFunction:
        """Rebuild from a stored collection config (only the offline embedders need no settings)."""
        by_name = {"minilm-l6-int8": "minilm", "tokenlearn-static-64": "static"}
        name = config.get("embedder", "")
        if name not in by_name:
            raise ValueError(f"embedder {name!r} needs settings; open the collection through KnowledgeIndex")
        return _ChromaEmbeddingFunction(make_embedder(by_name[name]))


@dataclass(frozen=True)
class Hit:
    """One chunk returned by a vector query, with its cosine similarity."""

    chunk_id: str
    text: str
    metadata: dict[str, Any]
    similarity: float


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "file: reason"
    chunks_embedded: int = 0


def open_client(chroma_url: str | None, chroma_path: Path) -> Any:
    """A Chroma server client when a URL is configured, else a local PersistentClient. Telemetry is off."""
    settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if chroma_url:
            url = urlparse(chroma_url)
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_path), settings=settings)
    except Exception as err:  # chromadb raises several unrelated types for "cannot connect"
        raise IndexUnavailable(f"cannot open the knowledge index at {chroma_url or chroma_path}: {err}") from err


class KnowledgeIndex:
    """Chunks of the workspace's documents in one Chroma collection per embedding model."""

    def __init__(self, client: Any, embedder: Embedder) -> None:
        self.embedder = embedder
        self.collection = client.get_or_create_collection(
            name=f"knowledge-{embedder.name}",
            embedding_function=_ChromaEmbeddingFunction(embedder),
            metadata={"hnsw:space": "cosine"},
        )
        self.store = ChromaVectorStore(chroma_collection=self.collection)
        self.generation = 0  # bumped on every change made through this object

    # -- reading -----------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, dict[str, Any]]:
        """doc_id -> {content_hash, source_path} of what is indexed."""
        got = self.collection.get(include=["metadatas"])
        out: dict[str, dict[str, Any]] = {}
        for meta in got["metadatas"] or []:
            out.setdefault(meta["doc_id"], {"content_hash": meta["content_hash"], "source_path": meta["source_path"]})
        return out

    def all_chunks(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Every chunk's id, text and metadata (for the keyword index)."""
        got = self.collection.get(include=["documents", "metadatas"])
        return list(got["ids"]), list(got["documents"] or []), list(got["metadatas"] or [])

    def query(self, vector: Any, k: int, visibilities: Iterable[str]) -> list[Hit]:
        """The k nearest chunks among the given visibilities."""
        filters = MetadataFilters(
            filters=[MetadataFilter(key="visibility", value=sorted(visibilities), operator=FilterOperator.IN)]
        )
        result = self.store.query(
            VectorStoreQuery(query_embedding=[float(x) for x in vector], similarity_top_k=k, filters=filters)
        )
        return [
            Hit(node.node_id, node.get_content(), dict(node.metadata), float(sim))
            for node, sim in zip(result.nodes or [], result.similarities or [], strict=True)
        ]

    # -- writing -----------------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        """Bring the index in step with `paths` (files or folders). Bad files are reported and skipped."""
        report = IngestReport()
        files, scanned_dirs = _collect(paths, report)
        indexed = self.manifest()
        seen: set[str] = set()
        for done, (path, root) in enumerate(files, 1):
            if progress:
                progress(str(path), done, len(files))
            doc_id = doc_id_for(path)
            if doc_id in seen:
                report.skipped.append(f"{path}: another file already has the document id {doc_id}")
                continue
            seen.add(doc_id)
            try:
                doc = load_document(path, root)
            except DocumentError as err:
                report.skipped.append(str(err))
                continue
            previous = indexed.get(doc_id)
            if previous and previous["content_hash"] == doc.content_hash:
                report.unchanged.append(doc_id)
                continue
            if previous:
                self.store.delete(ref_doc_id=doc_id)
            self.generation += 1
            report.chunks_embedded += self._add(doc, str(path.resolve()))
            (report.updated if previous else report.added).append(doc_id)
        for doc_id, info in indexed.items():
            source = Path(info["source_path"])
            under_scan = any(source.is_relative_to(d) for d in scanned_dirs)
            if doc_id not in seen and under_scan and not source.exists():
                self.store.delete(ref_doc_id=doc_id)
                self.generation += 1
                report.removed.append(doc_id)
        return report

    def _add(self, doc: SourceDocument, source_path: str) -> int:
        chunks = chunk_document(doc)
        if not chunks:
            return 0
        vectors = self.embedder.embed([embedding_text(doc, c) for c in chunks])
        nodes = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            node = TextNode(
                id_=chunk.chunk_id,
                text=chunk.text,
                embedding=[float(x) for x in vector],
                metadata={
                    "doc_id": doc.doc_id,
                    "title": doc.title,
                    "section": chunk.section_label,
                    "position": chunk.position,
                    "owner": doc.owner,
                    "visibility": doc.visibility,
                    "updated": doc.updated,
                    "tags": ", ".join(doc.tags),
                    "path": doc.path,
                    "source_path": source_path,
                    "content_hash": doc.content_hash,
                },
            )
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc.doc_id)
            nodes.append(node)
        self.store.add(nodes)
        return len(nodes)


def _collect(paths: Iterable[Path], report: IngestReport) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(file, root it is shown relative to) for every supported file, and the folders that were scanned."""
    files: list[tuple[Path, Path]] = []
    dirs: list[Path] = []
    for raw in paths:
        path = raw.resolve()
        if path.is_dir():
            dirs.append(path)
            files.extend((f, path) for f in sorted(path.rglob("*")) if f.is_file() and f.suffix.lower() in SUPPORTED)
        elif path.is_file():
            files.append((path, path.parent))
        else:
            report.skipped.append(f"{raw}: no such file or folder")
    return files, dirs
