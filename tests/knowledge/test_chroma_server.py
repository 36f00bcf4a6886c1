"""The index works against a Chroma server (MOPSBOT_CHROMA_URL) as it does with the local PersistentClient."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mopsbot.caller import AccessPolicy, CallerContext
from mopsbot.knowledge.index import IndexUnavailable, KnowledgeIndex, open_client
from mopsbot.knowledge.retrieval import Retriever

from .conftest import HashingEmbedder
from .test_index import write_doc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            open_client(url, data).heartbeat()
            break
        except Exception:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the Chroma server did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_ingest_and_search_through_a_chroma_server(chroma_url: str, tmp_path: Path, embedder: HashingEmbedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_doc(folder, "webinars", "public", "Webinars need a dry run two days before the live date.")
    write_doc(folder, "sync", "ops", "The Marketo sync user password expires every 90 days.")
    index = KnowledgeIndex(open_client(chroma_url, tmp_path / "unused"), embedder)
    assert sorted(index.ingest([folder]).added) == ["sync", "webinars"]
    assert index.ingest([folder]).chunks_embedded == 0
    result = Retriever(index, AccessPolicy()).search("details", CallerContext("U1", "C1", "public"), k=10)
    assert {p.doc_id for p in result.passages} == {"webinars"}


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable, match=re.escape("cannot open the knowledge index at http://127.0.0.1:9")):
        open_client("http://127.0.0.1:9", tmp_path)
