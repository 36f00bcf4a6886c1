"""Loading source documents (markdown with front matter, text, HTML, PDF) into one normalized shape."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import frontmatter
import yaml

SUPPORTED = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
VISIBILITIES = ("public", "ops", "restricted")


class DocumentError(ValueError):
    """A file could not be read or has invalid front matter; the message starts with the file name."""


@dataclass(frozen=True)
class SourceDocument:
    """A document ready for chunking: markdown-ish text plus the metadata its citations show."""

    doc_id: str
    title: str
    text: str
    path: str
    content_hash: str
    owner: str = ""
    visibility: str = "ops"
    updated: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def doc_id_for(path: Path) -> str:
    """A stable id from the file name: lowercase slug of the stem."""
    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")


def load_document(path: Path, root: Path | None = None) -> SourceDocument:
    """Read one file. Raises DocumentError (naming the file) for unreadable files and invalid front matter.

    Files without front matter (text, HTML, PDF) default to `ops` visibility: a document nobody classified is
    not shown in public channels.
    """
    shown = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DocumentError(f"{shown}: unsupported file type {suffix or '(none)'}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DocumentError(f"{shown}: cannot read ({err.strerror})") from None
    digest = hashlib.sha256(raw).hexdigest()
    if suffix == ".pdf":
        meta, text = {}, _pdf_text(raw, shown)
    else:
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentError(f"{shown}: not UTF-8 text") from None
        if suffix in (".html", ".htm"):
            meta, text = _html(decoded)
        else:
            meta, text = _front_matter(decoded, shown)
    if not text.strip():
        raise DocumentError(f"{shown}: no text found")
    return SourceDocument(
        doc_id=doc_id_for(path),
        title=str(meta.get("title") or _first_heading(text) or path.stem),
        text=text,
        path=shown,
        content_hash=digest,
        owner=str(meta.get("owner") or ""),
        visibility=_visibility(meta.get("visibility", "ops"), shown),
        updated=_date(meta.get("updated"), shown),
        tags=tuple(str(t) for t in (meta.get("tags") or [])),
    )


def _front_matter(text: str, shown: str) -> tuple[dict, str]:
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 2}" if mark else ""  # +2: the opening '---' and 0-based lines
        raise DocumentError(f"{shown}: invalid front matter{line}: {getattr(err, 'problem', err)}") from None
    if not isinstance(post.metadata, dict):
        raise DocumentError(f"{shown}: front matter must be a mapping")
    return dict(post.metadata), post.content


def _visibility(value: object, shown: str) -> str:
    if value not in VISIBILITIES:
        raise DocumentError(f"{shown}: visibility must be one of {', '.join(VISIBILITIES)} (got {value!r})")
    return str(value)


def _date(value: object, shown: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise DocumentError(f"{shown}: updated must be a date YYYY-MM-DD (got {value!r})") from None


def _first_heading(text: str) -> str | None:
    m = re.search(r"^#\s+(.+)$", text, flags=re.M)
    return m.group(1).strip() if m else None


def _html(text: str) -> tuple[dict, str]:
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "footer"]):
        tag.decompose()
    meta = {}
    if soup.title and soup.title.string:
        meta["title"] = soup.title.string.strip()
    for m in soup.find_all("meta"):
        name, content = m.get("name"), m.get("content")
        if name in ("owner", "visibility", "updated") and content:
            meta[name] = content
        if name == "tags" and content:
            meta["tags"] = [t.strip() for t in str(content).split(",") if t.strip()]
    body = soup.body or soup
    return meta, markdownify(str(body), heading_style="ATX").strip()


def _pdf_text(raw: bytes, shown: str) -> str:
    from io import BytesIO

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as err:
        raise DocumentError(f"{shown}: broken PDF ({err})") from None
    # PDFs carry no headings we can trust; each page becomes a section so citations can say "page N".
    return "\n\n".join(f"## Page {i}\n\n{t.strip()}" for i, t in enumerate(pages, 1) if t.strip())
