"""Incremental ingest: unchanged files cost no embedding, changed ones are replaced, deleted ones removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mopsbot.knowledge.index import KnowledgeIndex, open_client

from .conftest import HashingEmbedder


def write_doc(folder: Path, name: str, visibility: str, body: str) -> Path:
    path = folder / f"{name}.md"
    path.write_text(
        f"---\ntitle: {name.title()}\nowner: Priya Raman\nvisibility: {visibility}\nupdated: 2026-10-01\n"
        f"tags: [test]\n---\n# {name.title()}\n\n## Details\n\n{body}\n"
    )
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    write_doc(folder, "webinars", "public", "Webinars need a dry run two days before the live date.")
    write_doc(folder, "sync", "ops", "The Marketo sync user is mkto-sync and its password expires every 90 days.")
    write_doc(folder, "contracts", "restricted", "The TechTarget contract is worth USD 96,000 a year.")
    return folder


@pytest.fixture
def index(tmp_path: Path, embedder: HashingEmbedder) -> KnowledgeIndex:
    return KnowledgeIndex(open_client(None, tmp_path / "chroma"), embedder)


def test_second_run_without_changes_embeds_nothing(
    index: KnowledgeIndex, corpus: Path, embedder: HashingEmbedder
) -> None:
    first = index.ingest([corpus])
    assert sorted(first.added) == ["contracts", "sync", "webinars"]
    assert first.chunks_embedded == embedder.calls > 0
    calls = embedder.calls
    second = index.ingest([corpus])
    assert sorted(second.unchanged) == ["contracts", "sync", "webinars"]
    assert (second.added, second.updated, second.removed, second.chunks_embedded) == ([], [], [], 0)
    assert embedder.calls == calls


def test_a_changed_file_is_re_embedded_alone(index: KnowledgeIndex, corpus: Path, embedder: HashingEmbedder) -> None:
    index.ingest([corpus])
    before = index.collection.count()
    write_doc(corpus, "webinars", "public", "Webinars need a dry run. Recordings go live within 24 hours.")
    calls = embedder.calls
    report = index.ingest([corpus])
    assert report.updated == ["webinars"] and sorted(report.unchanged) == ["contracts", "sync"]
    changed_chunks = len(index.collection.get(where={"doc_id": "webinars"})["ids"])
    assert embedder.calls - calls == report.chunks_embedded == changed_chunks  # only the changed document
    assert index.collection.count() == before
    texts = index.collection.get(where={"doc_id": "webinars"})["documents"]
    assert any("Recordings go live" in t for t in texts)
    assert not any(t.endswith("before the live date.") for t in texts)  # old chunks are gone


def test_a_deleted_file_leaves_the_index(index: KnowledgeIndex, corpus: Path) -> None:
    index.ingest([corpus])
    (corpus / "sync.md").unlink()
    report = index.ingest([corpus])
    assert report.removed == ["sync"]
    assert "sync" not in index.manifest()


def test_ingesting_one_file_does_not_remove_the_others(index: KnowledgeIndex, corpus: Path) -> None:
    index.ingest([corpus])
    report = index.ingest([corpus / "sync.md"])
    assert report.unchanged == ["sync"] and report.removed == []
    assert set(index.manifest()) == {"webinars", "sync", "contracts"}


def test_bad_files_are_reported_by_name_and_the_rest_is_indexed(index: KnowledgeIndex, corpus: Path) -> None:
    (corpus / "broken.md").write_text("---\nvisibility: everyone\n---\n# Broken\n\ntext text text\n")
    (corpus / "scan.pdf").write_bytes(b"%PDF-1.4 garbage")
    report = index.ingest([corpus, corpus / "missing.md"])
    assert sorted(report.added) == ["contracts", "sync", "webinars"]
    assert any(s.startswith("broken.md: visibility must be one of") for s in report.skipped)
    assert any(s.startswith("scan.pdf:") for s in report.skipped)
    assert any("missing.md: no such file or folder" in s for s in report.skipped)


def test_chunks_carry_citation_metadata(index: KnowledgeIndex, corpus: Path) -> None:
    index.ingest([corpus])
    meta = index.collection.get(where={"doc_id": "sync"}, include=["metadatas"])["metadatas"][0]
    assert {k: meta[k] for k in ("doc_id", "title", "section", "owner", "visibility", "updated", "tags", "path")} == {
        "doc_id": "sync",
        "title": "Sync",
        "section": "Details",
        "owner": "Priya Raman",
        "visibility": "ops",
        "updated": "2026-10-01",
        "tags": "test",
        "path": "sync.md",
    }
