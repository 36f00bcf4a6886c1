"""Assembling the knowledge index and retriever from settings and the workspace's tools/knowledge.yaml."""

from __future__ import annotations

from dataclasses import dataclass

from mopsbot.caller import AccessPolicy
from mopsbot.config import Settings
from mopsbot.knowledge.embeddings import Embedder, make_embedder
from mopsbot.knowledge.index import KnowledgeIndex, location, open_client
from mopsbot.knowledge.retrieval import Retriever
from mopsbot.workspace import load_yaml


@dataclass
class Knowledge:
    index: KnowledgeIndex
    retriever: Retriever


def _knowledge_config(settings: Settings) -> dict:
    path = settings.tools_dir / "knowledge.yaml"
    return load_yaml(path) if path.exists() else {}


def access_policy(settings: Settings) -> AccessPolicy:
    """Who may see restricted documents, from tools/knowledge.yaml (nobody, if the file is absent)."""
    spec = _knowledge_config(settings).get("restricted_access") or {}
    return AccessPolicy(frozenset(spec.get("users") or []), frozenset(spec.get("channels") or []))


def embedder_for(settings: Settings) -> Embedder:
    client = None
    if settings.embeddings == "openai" and settings.openai_configured:
        from openai import OpenAI

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        client = OpenAI(base_url=settings.openai_base_url, api_key=key, timeout=settings.llm_timeout_s)
    return make_embedder(
        settings.embeddings,
        openai_client=client,
        model=settings.embedding_model,
        dimension=settings.embedding_dimension,
    )


def open_knowledge(settings: Settings, embedder: Embedder | None = None) -> Knowledge:
    """The index (local Chroma or a Chroma server, per settings) and a retriever bound to the access policy.

    Nothing is opened yet: the index connects on first use, so a replica starts while the Chroma server is down.
    """
    url, path, timeout_s = settings.chroma_url, settings.resolved_chroma_path, settings.chroma_timeout_s
    index = KnowledgeIndex(
        lambda: open_client(url, path, timeout_s),
        embedder or embedder_for(settings),
        where=location(url, path),
        timeout_s=timeout_s if url else None,  # a local directory is opened in the caller's thread
    )
    synonyms = {str(k): str(v) for k, v in (_knowledge_config(settings).get("synonyms") or {}).items()}
    return Knowledge(index, Retriever(index, access_policy(settings), synonyms=synonyms))
