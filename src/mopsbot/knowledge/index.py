"""The knowledge index: chunks and vectors in Chroma (through llama-index), kept in step with the files.

Ingest is incremental: a document whose content hash is unchanged is skipped (no embedding work); a changed one
has its chunks replaced; a document whose file is gone from a scanned folder is removed.

The store may be a Chroma server that is down, hung or restarted: the index connects on first use, bounds every
request by a timeout, and after a failure reconnects on a later call, after a short back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import httpx
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import InternalError, NotFoundError
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.vector_stores.chroma import ChromaVectorStore

from mopsbot.errors import UserFacingError
from mopsbot.knowledge.chunking import chunk_document, embedding_text
from mopsbot.knowledge.documents import SUPPORTED, DocumentError, SourceDocument, doc_id_for, load_document
from mopsbot.knowledge.embeddings import Embedder, make_embedder

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (file, done, total)
T = TypeVar("T")
RETRY_FIRST_S = 1.0  # after a failure the next connection attempt waits this long, doubling per failed attempt,
RETRY_MAX_S = 30.0  # up to this: a down server is not hammered, a restarted one is found again within seconds
# Failures that mean the store is down, hung or lost its state (a server restarted on an empty path), not that
# the request was wrong.
_UNREACHABLE = (httpx.TransportError, NotFoundError, InternalError)


class IndexUnavailable(UserFacingError, RuntimeError):
    """The vector store cannot be opened or reached; the message says where (it is shown to the user as is)."""


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


def location(chroma_url: str | None, chroma_path: Path) -> str:
    """Where the index lives, safe to show: the server URL without credentials, or the local directory."""
    if not chroma_url:
        return str(chroma_path)
    url = urlparse(chroma_url)
    return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()


def open_client(chroma_url: str | None, chroma_path: Path, timeout_s: float = 5.0) -> Any:
    """A Chroma server client when a URL is configured, else a local PersistentClient. Telemetry is off.

    Every request the server client makes afterwards is bounded by `timeout_s`; the requests its constructor makes
    cannot be bounded (see `_bound_requests`), so KnowledgeIndex calls this in a thread. Raises IndexUnavailable.
    """
    settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if chroma_url:
            url = urlparse(chroma_url)
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
            _bound_requests(client, timeout_s)
            return client
        chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_path), settings=settings)
    except Exception as err:  # chromadb raises several unrelated types for "cannot connect"
        where = location(chroma_url, chroma_path)
        raise IndexUnavailable(f"cannot open the knowledge index at {where}: {_reason(err, timeout_s)}") from err


def _bound_requests(client: Any, timeout_s: float) -> None:
    # chromadb 1.5 builds its httpx session with timeout=None and has no setting for it; a SIGSTOPped server then
    # holds the caller forever. The session is reachable on the client's server API object.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        client.close()
        raise TypeError("this chromadb version does not expose its HTTP session; its requests cannot be bounded")
    session.timeout = httpx.Timeout(timeout_s)


def _reason(err: BaseException, timeout_s: float | None) -> str:
    """A short, user-readable cause (no traceback, no response bodies); chromadb often wraps the httpx error."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, httpx.TimeoutException):
            return f"no answer within {timeout_s:g} s" if timeout_s else "no answer in time"
        if isinstance(cause, httpx.ConnectError):
            return "cannot connect"
        cause = cause.__cause__ or cause.__context__
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


@dataclass(frozen=True)
class _Open:
    client: Any
    collection: Any
    store: ChromaVectorStore


class _Connection:
    """The collection, opened on first use and again after a failure, once a back-off has passed.

    One attempt runs at a time; with `wait_s` set it runs in a thread and callers wait for it at most `wait_s` from
    its start, so a hung server holds that one thread, not every question. Raises IndexUnavailable.
    """

    def __init__(self, opener: Callable[[], Any], embedder: Embedder, where: str, wait_s: float | None) -> None:
        self._opener, self._embedder, self.where, self.wait_s = opener, embedder, where, wait_s
        self._lock = threading.Lock()
        self._ready: _Open | None = None
        self._attempt: Future[_Open] | None = None
        self._attempt_started = self._delay = self._retry_at = 0.0
        self._problem = ""

    def get(self) -> _Open:
        ready = self._ready
        if ready is not None:
            return ready
        start = False
        with self._lock:
            if self._ready is not None:
                return self._ready
            now = time.monotonic()
            if self._attempt is None:
                if now < self._retry_at:
                    raise IndexUnavailable(
                        f"the knowledge index at {self.where} is unavailable ({self._problem}); "
                        f"mopsbot tries again in {max(1, round(self._retry_at - now))} s"
                    )
                self._attempt, self._attempt_started, start = Future(), now, True
            attempt, started = self._attempt, self._attempt_started
        if start and self.wait_s is None:
            self._run(attempt)
        elif start:
            threading.Thread(target=self._run, args=(attempt,), name="chroma-connect", daemon=True).start()
        if self.wait_s is None:
            return attempt.result()
        try:
            return attempt.result(timeout=max(0.0, started + self.wait_s - time.monotonic()))
        except TimeoutError:
            raise IndexUnavailable(
                f"the knowledge index at {self.where} did not answer within {self.wait_s:g} s"
            ) from None

    def _run(self, attempt: Future[_Open]) -> None:
        client = None
        try:
            client = self._opener()
            collection = client.get_or_create_collection(
                name=f"knowledge-{self._embedder.name}",
                embedding_function=_ChromaEmbeddingFunction(self._embedder),
                metadata={"hnsw:space": "cosine"},
            )
            ready = _Open(client, collection, ChromaVectorStore(chroma_collection=collection))
        except Exception as err:
            self._close(client)
            problem = _reason(err.__cause__ or err if isinstance(err, IndexUnavailable) else err, self.wait_s)
            failure = IndexUnavailable(
                f"the knowledge index at {self.where} is unavailable ({problem}); try again shortly"
            )
            failure.__cause__ = err
            log.warning("knowledge index at %s unavailable: %s", self.where, problem)
            with self._lock:
                self._attempt = None
                self._back_off(problem)
            attempt.set_exception(failure)
            return
        with self._lock:
            self._ready, self._attempt, self._delay = ready, None, 0.0
        attempt.set_result(ready)

    def failed(self, ready: _Open, err: BaseException) -> IndexUnavailable:
        """Forget a connection whose request failed (only the first report counts); the next call reconnects."""
        reason = _reason(err, self.wait_s)
        with self._lock:
            dropped = self._ready is ready
            if dropped:
                self._ready = None
                self._back_off(reason)
        if dropped:
            log.warning("knowledge index at %s failed: %s", self.where, reason)
            self._close(ready.client)
        return IndexUnavailable(f"the knowledge index at {self.where} is unavailable ({reason}); try again shortly")

    def _close(self, client: Any) -> None:
        # A server client holds an HTTP pool; a local one shares its System with the directory's other clients.
        if client is None or self.wait_s is None:
            return
        try:
            client.close()
        except Exception:  # closing a client of a dead server may fail in many ways; it is dropped either way
            log.debug("closing a Chroma client failed", exc_info=True)

    def _back_off(self, problem: str) -> None:
        self._problem = problem
        self._delay = min(RETRY_MAX_S, max(RETRY_FIRST_S, self._delay * 2))
        self._retry_at = time.monotonic() + self._delay


class KnowledgeIndex:
    """Chunks of the workspace's documents in one Chroma collection per embedding model.

    `client` is an open Chroma client, or a function that opens one: then nothing is opened until first use, a
    failed call raises IndexUnavailable and a later call reconnects. `timeout_s` bounds how long a call waits for
    a connection attempt (None: no bound, for a local directory).
    """

    def __init__(
        self, client: Any, embedder: Embedder, *, where: str = "the configured location", timeout_s: float | None = None
    ) -> None:
        self.embedder = embedder
        self.where = where
        opens = callable(client) and not hasattr(client, "get_or_create_collection")
        self._connection = _Connection(client if opens else lambda: client, embedder, where, timeout_s)
        self.generation = 0  # bumped on every change made through this object

    @property
    def collection(self) -> Any:
        """The Chroma collection (connecting if need be). Raises IndexUnavailable."""
        return self._connection.get().collection

    @property
    def store(self) -> ChromaVectorStore:
        """The llama-index view of the collection (connecting if need be). Raises IndexUnavailable."""
        return self._connection.get().store

    def _use(self, request: Callable[[_Open], T]) -> T:
        ready = self._connection.get()
        try:
            return request(ready)
        except _UNREACHABLE as err:
            raise self._connection.failed(ready, err) from err

    def ping(self) -> dict[str, Any]:
        """Readiness: {"ok": bool, "detail": str}. Counts the collection within the timeout; never raises."""
        try:
            chunks = self.count()
        except IndexUnavailable as err:
            return {"ok": False, "detail": str(err)}
        except Exception as err:  # a probe reports; it must not take the caller down
            return {"ok": False, "detail": f"the knowledge index at {self.where} failed: {_reason(err, None)}"}
        return {"ok": True, "detail": f"{chunks} chunks at {self.where}"}

    # -- reading -----------------------------------------------------------------------------------------
    def count(self) -> int:
        """How many chunks are indexed. Raises IndexUnavailable."""
        return self._use(lambda c: c.collection.count())

    def manifest(self) -> dict[str, dict[str, Any]]:
        """doc_id -> {content_hash, source_path} of what is indexed."""
        got = self._use(lambda c: c.collection.get(include=["metadatas"]))
        out: dict[str, dict[str, Any]] = {}
        for meta in got["metadatas"] or []:
            out.setdefault(meta["doc_id"], {"content_hash": meta["content_hash"], "source_path": meta["source_path"]})
        return out

    def all_chunks(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Every chunk's id, text and metadata (for the keyword index)."""
        got = self._use(lambda c: c.collection.get(include=["documents", "metadatas"]))
        return list(got["ids"]), list(got["documents"] or []), list(got["metadatas"] or [])

    def query(self, vector: Any, k: int, visibilities: Iterable[str]) -> list[Hit]:
        """The k nearest chunks among the given visibilities."""
        filters = MetadataFilters(
            filters=[MetadataFilter(key="visibility", value=sorted(visibilities), operator=FilterOperator.IN)]
        )
        request = VectorStoreQuery(query_embedding=[float(x) for x in vector], similarity_top_k=k, filters=filters)
        result = self._use(lambda c: c.store.query(request))
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
                self._use(lambda c, d=doc_id: c.store.delete(ref_doc_id=d))
            self.generation += 1
            report.chunks_embedded += self._add(doc, str(path.resolve()))
            (report.updated if previous else report.added).append(doc_id)
        for doc_id, info in indexed.items():
            source = Path(info["source_path"])
            under_scan = any(source.is_relative_to(d) for d in scanned_dirs)
            if doc_id not in seen and under_scan and not source.exists():
                self._use(lambda c, d=doc_id: c.store.delete(ref_doc_id=d))
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
        self._use(lambda c: c.store.add(nodes))
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
