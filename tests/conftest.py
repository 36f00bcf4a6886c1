"""Shared fixtures: isolated settings, a seeded demo warehouse, state-store URLs for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mopsbot.config import load_settings
from mopsbot.demo.generator import generate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's environment or .env; the data dir is per test."""
    for key in list(os.environ):
        if key.startswith(("MOPSBOT_", "OPENAI_", "SLACK_")) and not key.startswith("MOPSBOT_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOPSBOT_WORKSPACE", str(REPO))


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse at the default seed and scale, generated once per test session."""
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    generate(path)
    return path


def _postgres_url() -> str | None:
    return os.environ.get("MOPSBOT_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards.

    Skips when MOPSBOT_TEST_POSTGRES_URL is unset, unless MOPSBOT_TEST_REQUIRE_POSTGRES=1 (as in CI).
    """
    url = _postgres_url()
    required = os.environ.get("MOPSBOT_TEST_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("MOPSBOT_TEST_REQUIRE_POSTGRES=1 but MOPSBOT_TEST_POSTGRES_URL is not set")
        pytest.skip("set MOPSBOT_TEST_POSTGRES_URL to run the PostgreSQL tests")
    schema = f"mopsbot_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as err:
        admin.dispose()
        if required:
            pytest.fail(f"PostgreSQL required but unreachable at {url}: {err}")
        pytest.skip(f"PostgreSQL unreachable: {err}")
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state store URL on each supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def knowledge_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chroma directory holding the demo knowledge/ embedded with the default (MiniLM) embedder, built once."""
    from mopsbot.knowledge.service import open_knowledge

    path = tmp_path_factory.mktemp("chroma")
    settings = load_settings(env_file=None, chroma_path=path, workspace=REPO)
    report = open_knowledge(settings).index.ingest([settings.knowledge_dir])
    assert not report.skipped, report.skipped
    return path


@pytest.fixture(scope="session")
def trained_data_dir(tmp_path_factory: pytest.TempPathFactory, warehouse: Path) -> Path:
    """A data dir whose models/ holds the demo models trained on the session warehouse (once per session)."""
    from mopsbot.metrics.engine import MetricsEngine
    from mopsbot.predictions.service import Predictions

    data_dir = tmp_path_factory.mktemp("data")
    engine = MetricsEngine(REPO / "tools" / "metrics.yaml", warehouse)
    predictions = Predictions(REPO / "tools" / "models", data_dir / "models", engine.cursor)
    for name in predictions.cards:
        predictions.train(name)
    engine.close()
    return data_dir


def copy_trained_models(trained: Path, data_dir: Path) -> None:
    """Copy the session's trained models into a data dir and record them in its store's audit log, as training
    or `mopsbot models register` does for an operator (the bot refuses artifacts the audit log does not know)."""
    import shutil

    shutil.copytree(trained / "models", data_dir / "models")
    record_models(data_dir)


def record_models(data_dir: Path) -> None:
    """Record the artifacts under data_dir/models in data_dir's store, as training or registration does."""
    from mopsbot.audit.artifacts import AuditLedger
    from mopsbot.predictions.model import file_hashes
    from mopsbot.store.db import Store

    store = Store.open(f"sqlite:///{data_dir / 'mopsbot.db'}")
    ledger = AuditLedger(store)
    for folder in sorted((data_dir / "models").glob("*/*")):
        ledger.record(folder.parent.name, folder.name, file_hashes(folder), "test-setup", "trained for the tests")
    store.close()
