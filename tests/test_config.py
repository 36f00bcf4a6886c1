from __future__ import annotations

from pathlib import Path

import pytest

from mopsbot.config import ConfigError, env_name, load_settings, unknown_variables


def test_defaults_need_nothing_configured(tmp_path: Path) -> None:
    s = load_settings(env_file=None)
    assert s.llm == "auto"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'var' / 'mopsbot.db'}"
    assert s.resolved_warehouse_path == tmp_path / "var" / "warehouse.duckdb"
    assert s.resolved_chroma_path == tmp_path / "var" / "chroma"
    assert not s.openai_configured


def test_precedence_overrides_then_env_then_dotenv_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("MOPSBOT_MODEL=from-dotenv\nMOPSBOT_PORT=4000\nMOPSBOT_LOCAL_USER=U0DOTENV\n")
    monkeypatch.setenv("MOPSBOT_MODEL", "from-env")
    monkeypatch.setenv("MOPSBOT_LOCAL_USER", "U0ENV")
    s = load_settings(env_file=dotenv, local_user="U0OVERRIDE")
    assert s.local_user == "U0OVERRIDE"  # explicit override beats the environment
    assert s.model == "from-env"  # environment beats .env
    assert s.port == 4000  # .env beats the default
    assert s.llm_max_retries == 2  # default


def test_unprefixed_names_for_openai_and_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999")
    s = load_settings(env_file=None)
    assert s.openai_base_url == "http://127.0.0.1:8080/v1"
    assert s.openai_configured
    assert s.slack_api_url == "http://127.0.0.1:9999/"  # slack_sdk needs the trailing slash
    assert "sk-test-not-real" not in repr(s)  # secrets never print


@pytest.mark.parametrize(
    ("var", "value"),
    [("MOPSBOT_LLM", "gpt"), ("MOPSBOT_PORT", "http"), ("MOPSBOT_TODAY", "yesterday"), ("MOPSBOT_LOG_LEVEL", "LOUD")],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None)
    assert var in str(err.value)
    assert repr(value) in str(err.value)


def test_invalid_database_url_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOPSBOT_DATABASE_URL", "var/mopsbot.db")
    with pytest.raises(ConfigError, match="SQLAlchemy URL"):
        load_settings(env_file=None)


def test_secret_values_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, slack_bot_token=["not", "a", "string"])
    assert "SLACK_BOT_TOKEN" in str(err.value)
    assert "not" not in str(err.value).split("SLACK_BOT_TOKEN", 1)[1]


def test_unknown_prefixed_variables_get_a_suggestion() -> None:
    found = unknown_variables({"MOPSBOT_DATABSE_URL": "x", "MOPSBOT_TEST_POSTGRES_URL": "y", "HOME": "/"})
    assert found == ["MOPSBOT_DATABSE_URL (did you mean MOPSBOT_DATABASE_URL?)"]


def test_env_names() -> None:
    assert env_name("database_url") == "MOPSBOT_DATABASE_URL"
    assert env_name("slack_signing_secret") == "SLACK_SIGNING_SECRET"
