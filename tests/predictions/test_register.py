"""A team registers its own scikit-learn model with a card (`mopsbot models register`) and explains with it; the
bot checks it first and keeps nothing it refuses. The workspace is a temporary copy of knowledge/ and tools/."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from typer.testing import CliRunner

from mopsbot.cli import app
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import Encoding, Spec, write_manifest
from tests.conftest import record_models
from tests.predictions.reference import REPO

runner = CliRunner()
REGIONS = ["APAC", "EMEA", "LATAM", "NA"]
NAME = "team_fit"
CARD: dict[str, Any] = {
    "name": NAME,
    "title": "Team Fit Score",
    "version": "1.0",
    "owner": "U07LV0004",
    "kind": "classifier",
    "purpose": "Field marketing's own fit score for event follow-up.",
    "target": "an opportunity is ever created",
    "entity": "lead",
    "entity_table": "dim_lead",
    "entity_key": "lead_id",
    "tiers": {"hot": {"min": 20}, "cold": {"min": 0}},
    "features": [
        {"name": "seniority_level", "business_name": "Job seniority", "type": "numeric"},
        {"name": "intent_score", "business_name": "6sense intent score", "type": "numeric"},
        {"name": "region", "business_name": "Region", "type": "categorical"},
    ],
    "population": "created_at IS NOT NULL",
}


def _matrix(rows: list[tuple]) -> np.ndarray:
    return np.array([[s, i, *(float(r == name) for name in REGIONS)] for s, i, r, *_ in rows], dtype=float)


@pytest.fixture(scope="module")
def team_model(engine: MetricsEngine) -> tuple[LogisticRegression, Spec]:
    """A logistic regression the team fitted themselves, and its spec.json contents."""
    sql = (
        "SELECT seniority_level, intent_score, region, (opportunity_at IS NOT NULL)::INT FROM dim_lead "
        "WHERE created_at < DATE '2026-08-01'"
    )
    rows = engine.cursor().execute(sql).fetchall()
    x, y = _matrix(rows), np.array([r[3] for r in rows], dtype=float)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    p = clf.predict_proba(x)[:, 1]
    spec = Spec(
        name=NAME,
        version="1.0",
        kind="classifier",
        encoding=Encoding(numeric=["seniority_level", "intent_score"], categories={"region": REGIONS}),
        baseline=x.mean(axis=0).tolist(),
        average_prediction=float(p.mean()),
        ranges={"seniority_level": [0.0, 4.0], "intent_score": [float(x[:, 1].min()), float(x[:, 1].max())]},
        metrics={"auc": round(float(roc_auc_score(y, p)), 4), "brier": round(float(brier_score_loss(y, p)), 4)},
        trained_at="2026-11-01T00:00:00+00:00",
        training_rows=len(y),
    )
    return clf, spec


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, warehouse: Path) -> Path:
    ws = tmp_path / "workspace"
    for part in ("knowledge", "tools"):
        shutil.copytree(REPO / part, ws / part)
    monkeypatch.setenv("MOPSBOT_WORKSPACE", str(ws))
    monkeypatch.setenv("MOPSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOPSBOT_WAREHOUSE_PATH", str(warehouse))
    return ws


def _files(tmp_path: Path, estimator: Any, spec: Spec | str, card: dict[str, Any] = CARD) -> list[str]:
    """Write the team's card, artifact and spec where a team would keep them; the register arguments."""
    own = tmp_path / "team"
    own.mkdir(exist_ok=True)
    (own / "card.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    sio.dump(estimator, own / "model.skops")
    (own / "spec.json").write_text(spec if isinstance(spec, str) else spec.to_json(), encoding="utf-8")
    return [str(own / "card.yaml"), str(own / "model.skops"), str(own / "spec.json")]


def _register(files: list[str]):
    return runner.invoke(app, ["models", "register", *files])


def _refused(result, workspace: Path, tmp_path: Path) -> str:
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "data" / "models" / NAME / "1.0").exists()  # nothing refused stays behind
    assert not (workspace / "tools" / "models" / f"{NAME}.yaml").exists()
    assert "Traceback" not in result.output
    return result.output


def _install(workspace: Path, tmp_path: Path, estimator: Any, spec: Spec) -> None:
    """Put a team's model where `models register` puts it: artifact, spec and manifest in the data dir, the card
    in the workspace's tools/models/."""
    folder = tmp_path / "data" / "models" / NAME / "1.0"
    folder.mkdir(parents=True)
    sio.dump(estimator, folder / "model.skops")
    (folder / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    write_manifest(folder, source="a test")
    (workspace / "tools" / "models" / f"{NAME}.yaml").write_text(yaml.safe_dump(CARD), encoding="utf-8")


def test_a_teams_own_model_explains_leads_from_the_cli(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec], engine: MetricsEngine
) -> None:
    clf, spec = team_model
    _install(workspace, tmp_path, clf, spec)
    # copied in by hand, with a manifest that matches: refused until the audit log knows the artifact
    refused = runner.invoke(app, ["models", "explain", "4411", "--model", NAME, "--json"])
    assert refused.exit_code == 2 and "no record in the audit log" in " ".join(refused.output.split())
    record_models(tmp_path / "data")
    result = runner.invoke(app, ["models", "explain", "4411", "--model", NAME, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    row = engine.cursor().execute("SELECT seniority_level, intent_score, region FROM dim_lead WHERE lead_id = 4411")
    assert d["score"] == pytest.approx(100 * clf.predict_proba(_matrix(row.fetchall()))[0, 1], abs=1e-9)
    assert d["tier"] == ("hot" if round(d["score"]) >= 20 else "cold")
    assert [f["business_name"] for f in d["factors"]] == ["Job seniority", "6sense intent score", "Region"]
    assert sum(f["contribution"] for f in d["factors"]) == pytest.approx(d["output"] - d["baseline_output"], abs=1e-9)
    assert d["calibration"] is None  # the team measured no calibration table
    card = json.loads(runner.invoke(app, ["models", "card", NAME, "--json"]).output)
    assert card["metrics"] == spec.metrics and card["owner"] == "U07LV0004"


def test_a_team_registers_its_own_model_and_explains_with_it(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec], engine: MetricsEngine
) -> None:
    clf, spec = team_model
    result = _register(_files(tmp_path, clf, spec))
    assert result.exit_code == 0, result.output
    assert f"registered {NAME} 1.0" in result.output
    assert (workspace / "tools" / "models" / f"{NAME}.yaml").exists()
    assert not (REPO / "tools" / "models" / f"{NAME}.yaml").exists()

    explained = runner.invoke(app, ["models", "explain", "4411", "--model", NAME, "--json"])
    assert explained.exit_code == 0, explained.output
    d = json.loads(explained.output)
    row = engine.cursor().execute("SELECT seniority_level, intent_score, region FROM dim_lead WHERE lead_id = 4411")
    x = _matrix(row.fetchall())
    assert d["score"] == pytest.approx(100 * clf.predict_proba(x)[0, 1], abs=1e-9)
    assert d["tier"] == ("hot" if round(d["score"]) >= 20 else "cold")
    assert [f["feature"] for f in d["factors"]] == ["seniority_level", "intent_score", "region"]
    assert sum(f["contribution"] for f in d["factors"]) == pytest.approx(d["output"] - d["baseline_output"], abs=1e-9)
    assert d["average_score"] == pytest.approx(100 * spec.average_prediction)

    listed = {r["name"]: r for r in json.loads(runner.invoke(app, ["models", "list", "--json"]).output)}
    assert listed[NAME]["state"].startswith("trained ") and listed[NAME]["quality"] == spec.metrics["auc"]


def test_a_non_linear_model_is_refused_and_leaves_nothing_behind(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    _, spec = team_model
    x = np.random.default_rng(1).random((50, 6))
    nb = GaussianNB().fit(x, (x[:, 0] > 0.5).astype(int))
    output = _refused(_register(_files(tmp_path, nb, spec)), workspace, tmp_path)
    assert "GaussianNB" in output


def test_untrusted_types_are_refused(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    _, spec = team_model
    output = _refused(
        _register(_files(tmp_path, make_pipeline(FunctionTransformer(os.system)), spec)), workspace, tmp_path
    )
    assert "does not trust" in output and "system" in output


def test_a_model_with_other_inputs_than_its_spec_is_refused(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    _, spec = team_model
    x = np.random.default_rng(1).random((50, 2))
    two = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    assert "inputs do not match" in _refused(_register(_files(tmp_path, two, spec)), workspace, tmp_path)


def test_an_invalid_card_is_refused_naming_the_file(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    clf, spec = team_model
    output = _refused(_register(_files(tmp_path, clf, spec, {**CARD, "kind": "ranker"})), workspace, tmp_path)
    assert "card.yaml" in output and "kind" in output


def test_a_spec_for_other_features_than_the_card_is_refused(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    clf, spec = team_model
    other = replace(spec, encoding=Encoding(numeric=["web_visits_30d", "intent_score"], categories={"region": REGIONS}))
    _refused(_register(_files(tmp_path, clf, other)), workspace, tmp_path)


def test_a_regressor_for_a_classifier_card_is_refused(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    _, spec = team_model
    x = np.random.default_rng(1).random((50, 6))
    _refused(_register(_files(tmp_path, LinearRegression().fit(x, x[:, 0]), spec)), workspace, tmp_path)


def test_a_malformed_spec_is_refused(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    clf, _ = team_model
    _refused(_register(_files(tmp_path, clf, "{not json")), workspace, tmp_path)


def test_a_refused_registration_keeps_the_model_already_registered(
    workspace: Path, tmp_path: Path, team_model: tuple[LogisticRegression, Spec]
) -> None:
    clf, spec = team_model
    assert _register(_files(tmp_path, clf, spec)).exit_code == 0
    x = np.random.default_rng(1).random((50, 6))
    assert _register(_files(tmp_path, GaussianNB().fit(x, (x[:, 0] > 0.5).astype(int)), spec)).exit_code == 2
    still = runner.invoke(app, ["models", "explain", "4411", "--model", NAME, "--json"])
    assert still.exit_code == 0, still.output
