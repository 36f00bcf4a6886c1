"""Red-team fixtures: replicas of the bot on a state store (SQLite or PostgreSQL), the Slack harness, workspaces
with edited policy. Nothing from the implementation is imported at collection time, so a missing piece fails the
tests that need it instead of the whole folder."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.redteam.kit import Rig

try:
    from tests.slack.conftest import bot, knowledge, make_bot, slack_settings
except Exception as err:  # the implementation does not import: every test fails, collection still works
    _harness_error = f"the Slack harness (and so mopsbot) does not import: {err!r}"

    @pytest.fixture(scope="session")
    def knowledge() -> Any:
        pytest.fail(_harness_error)

    @pytest.fixture
    def make_bot() -> Any:
        pytest.fail(_harness_error)

    @pytest.fixture
    def bot() -> Any:
        pytest.fail(_harness_error)

    @pytest.fixture
    def slack_settings() -> Any:
        pytest.fail(_harness_error)


REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 16)


@pytest.fixture
def make_rig(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    knowledge_index_dir: Path,
    warehouse: Path,
    knowledge: Any,
) -> Iterator[Callable[..., Rig]]:
    """make_rig(url=None, data_dir=None, workspace=None, signing_key=None, webhook=None, token=None): one replica.

    Several calls with the same url and data_dir are replicas of one deployment. The CLI of a rig (rig.cli) runs
    in-process with the same settings passed as environment, as an operator would run it next to the bot."""

    def make(url: str | None = None, *, data_dir: Path | None = None, workspace: Path | None = None,
             signing_key: str | None = None, webhook: str | None = None, token: str | None = None) -> Rig:  # fmt: skip
        from mopsbot.config import load_settings
        from mopsbot.services import Services

        data_dir = data_dir or tmp_path / "var"
        data_dir.mkdir(parents=True, exist_ok=True)
        url = url or f"sqlite:///{tmp_path / 'state.db'}"
        workspace = workspace or REPO
        env = {
            "MOPSBOT_DATA_DIR": str(data_dir),
            "MOPSBOT_DATABASE_URL": url,
            "MOPSBOT_WORKSPACE": str(workspace),
            "MOPSBOT_CHROMA_PATH": str(knowledge_index_dir),
            "MOPSBOT_WAREHOUSE_PATH": str(warehouse),
            "MOPSBOT_TODAY": TODAY.isoformat(),
            "MOPSBOT_LLM": "local",
        }
        kwargs: dict[str, Any] = {}
        if signing_key:
            env["MOPSBOT_SIGNING_KEY"] = kwargs["signing_key"] = signing_key
        if webhook:
            env["MOPSBOT_TICKETING_WEBHOOK_URL"] = kwargs["ticketing_webhook_url"] = webhook
        if token:
            env["MOPSBOT_TICKETING_TOKEN"] = token
            monkeypatch.setenv("MOPSBOT_TICKETING_TOKEN", token)
        settings = load_settings(
            env_file=None, data_dir=data_dir, database_url=url, workspace=workspace, chroma_path=knowledge_index_dir,
            warehouse_path=warehouse, today=TODAY, **kwargs,
        )  # fmt: skip
        svc = Services.from_settings(settings, backend="local", knowledge=knowledge)
        rig = Rig(svc, url, data_dir, workspace, create_engine(url), env)

        def close() -> None:
            try:
                rig.svc.close()
            finally:
                rig.engine.dispose()

        # an item finalizer added now runs before the fixtures set up earlier (the PostgreSQL schema is dropped
        # only after every replica let go of its connections)
        request.node.addfinalizer(close)
        return rig

    yield make


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    """One bot on SQLite."""
    return make_rig()


@pytest.fixture
def db_rig(make_rig: Callable[..., Rig], store_url: str) -> Rig:
    """One bot on SQLite and on PostgreSQL (tests/conftest.py store_url)."""
    return make_rig(store_url)


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Callable[[Callable[[dict[str, Any]], None]], Path]:
    """workspace_copy(edit): a copy of the repo's workspace whose tools/approvals.yaml was changed by edit(dict)."""
    import yaml

    def make(edit: Callable[[dict[str, Any]], None]) -> Path:
        ws = tmp_path / f"workspace-{uuid.uuid4().hex[:6]}"
        shutil.copytree(REPO / "tools", ws / "tools")
        shutil.copytree(REPO / "knowledge", ws / "knowledge")
        policy_path = ws / "tools" / "approvals.yaml"
        policy = yaml.safe_load(policy_path.read_text())
        edit(policy)
        policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
        return ws

    return make


@pytest.fixture
def slack_rig(make_rig: Callable[..., Rig], tmp_path: Path) -> Callable[..., Rig]:
    """A Services replica on the Slack harness's own store (data dir tmp_path/var, default SQLite file there)."""

    def make(**kwargs: Any) -> Rig:
        data_dir = tmp_path / "var"
        return make_rig(f"sqlite:///{data_dir / 'mopsbot.db'}", data_dir=data_dir, **kwargs)

    return make


@pytest.fixture
def runtime_role(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL LOGIN role (trust auth) and the URL to connect as it; dropped afterwards."""
    role = f"mopsbot_rt_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    url = make_url(postgres_url).set(username=role, password=None).render_as_string(hide_password=False)
    try:
        yield role, url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
