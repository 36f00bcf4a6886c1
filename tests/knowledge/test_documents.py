"""Loading each supported format, and bad files rejected with their name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mopsbot.knowledge.chunking import chunk_document
from mopsbot.knowledge.documents import DocumentError, load_document


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (enough structure for a real PDF reader)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_markdown_front_matter_becomes_metadata(tmp_path: Path) -> None:
    f = tmp_path / "SOP Webinar.md"
    f.write_text(
        "---\ntitle: Webinar SOP\nowner: Jordan Blake\nvisibility: public\nupdated: 2026-09-14\n"
        "tags: [webinar]\n---\n# Webinar SOP\n\nIntro text here.\n\n## Dry run\n\nDo a dry run two days before.\n"
    )
    doc = load_document(f, tmp_path)
    assert (doc.doc_id, doc.title, doc.owner, doc.visibility, doc.updated, doc.tags, doc.path) == (
        "sop-webinar",
        "Webinar SOP",
        "Jordan Blake",
        "public",
        "2026-09-14",
        ("webinar",),
        "SOP Webinar.md",
    )
    sections = [c.section for c in chunk_document(doc)]
    assert ("Dry run",) in sections


def test_long_sections_are_split_and_keep_their_section_path(tmp_path: Path) -> None:
    body = " ".join(f"Sentence number {i} explains one more detail of the routing rules." for i in range(120))
    f = tmp_path / "long.md"
    f.write_text(f"---\ntitle: Long\nvisibility: ops\n---\n# Long\n\n## Routing\n\n### Tie breaks\n\n{body}\n")
    chunks = chunk_document(load_document(f))
    assert len(chunks) > 3
    assert all(c.section == ("Routing", "Tie breaks") for c in chunks)
    assert all(len(c.text.split()) < 260 for c in chunks)


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("title: [unclosed\n", "invalid front matter line"),
        ("title: X\nvisibility: secret\n", "visibility must be one of"),
        ("title: X\nupdated: last week\n", "updated must be a date"),
    ],
)
def test_invalid_front_matter_names_the_file(tmp_path: Path, front: str, message: str) -> None:
    f = tmp_path / "bad.md"
    f.write_text(f"---\n{front}---\n# X\n\ntext text text\n")
    with pytest.raises(DocumentError, match=rf"^bad\.md: {message}"):
        load_document(f, tmp_path)


def test_html_keeps_headings_and_meta(tmp_path: Path) -> None:
    f = tmp_path / "form-outage.html"
    f.write_text(
        "<html><head><title>Form outage</title><meta name='visibility' content='ops'>"
        "<script>var x = 1;</script></head><body><h1>Form outage</h1><p>Check the embed.</p>"
        "<h2>Fix</h2><p>Roll back the CSP change within 30 minutes.</p></body></html>"
    )
    doc = load_document(f)
    assert doc.title == "Form outage" and doc.visibility == "ops"
    assert "var x" not in doc.text
    assert any(c.section == ("Fix",) and "CSP" in c.text for c in chunk_document(doc))


def test_text_without_front_matter_is_ops_only(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("Dedupe runs nightly at 02:00 UTC.\n")
    assert load_document(f).visibility == "ops"  # unclassified documents never reach public channels


def test_pdf_pages_become_sections(tmp_path: Path) -> None:
    f = tmp_path / "contract.pdf"
    f.write_bytes(minimal_pdf("Renewal notice is due 60 days before the end of term."))
    doc = load_document(f)
    assert "Renewal notice" in doc.text
    assert [c.section for c in chunk_document(doc)] == [("Page 1",)]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "broken PDF|no text found"),
        ("latin1.md", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("image.png", b"\x89PNG", "unsupported file type"),
        ("empty.md", b"---\ntitle: Empty\n---\n", "no text found"),
    ],
)
def test_bad_files_are_named_in_the_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(DocumentError, match=rf"^{name.replace('.', '[.]')}: ({message})"):
        load_document(f, tmp_path)
