"""Splitting documents into heading-sized chunks that keep their section path (for citations)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter

from mopsbot.knowledge.documents import SourceDocument

MAX_TOKENS = 220  # all-MiniLM-L6-v2 reads 256 word pieces; leave room for the title/section prefix
OVERLAP_TOKENS = 30
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """A passage of one document, with the section path it sits under."""

    chunk_id: str
    doc_id: str
    position: int
    section: tuple[str, ...]
    text: str

    @property
    def section_label(self) -> str:
        return " > ".join(self.section)


_markdown = MarkdownNodeParser(include_metadata=True, include_prev_next_rel=False)
_splitter = SentenceSplitter(chunk_size=MAX_TOKENS, chunk_overlap=OVERLAP_TOKENS)


def chunk_document(doc: SourceDocument) -> list[Chunk]:
    """Chunks in reading order; sections longer than MAX_TOKENS are split on sentence boundaries."""
    nodes = _markdown.get_nodes_from_documents([Document(text=doc.text)])
    chunks: list[Chunk] = []
    for node in nodes:
        text = node.get_content().strip()
        parents = [p for p in str(node.metadata.get("header_path", "/")).split("/") if p]
        first, _, rest = text.partition("\n")
        heading = _HEADING.match(first)
        if heading:
            section, body = [*parents, heading.group(2).strip()], rest.strip()
        else:
            section, body = parents, text
        if section and section[0] == doc.title and len(section) > 1:
            section = section[1:]  # the document title is shown separately
        section = section or [doc.title]
        if len(body.split()) < 3:
            continue
        for piece in _splitter.split_text(body):
            chunks.append(Chunk(f"{doc.doc_id}#{len(chunks)}", doc.doc_id, len(chunks), tuple(section), piece))
    return chunks


def embedding_text(doc: SourceDocument, chunk: Chunk) -> str:
    """What gets embedded and keyword-indexed: the passage with its document title and section in front."""
    return f"{doc.title} — {chunk.section_label}\n{chunk.text}"
