"""Model artifacts are checked against the hashes the audit chain recorded at training or registration: a manifest
recomputed after editing the coefficients no longer makes an artifact loadable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from mopsbot.audit.artifacts import AuditLedger
from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import ArtifactRefused, file_hashes, write_manifest
from mopsbot.predictions.service import Predictions
from mopsbot.store.db import Store
from tests.predictions.reference import REPO

VERSION = "2026.11"


@pytest.fixture
def ledger(tmp_path: Path) -> AuditLedger:
    return AuditLedger(Store.open(f"sqlite:///{tmp_path / 'state.db'}"))


@pytest.fixture
def models(predictions: Predictions, data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(data_dir / "models", copy)
    return copy


def _predictions(engine: MetricsEngine, models: Path, ledger: AuditLedger) -> Predictions:
    return Predictions(REPO / "tools" / "models", models, engine.cursor, ledger)


def test_training_records_the_artifact_and_it_loads(engine: MetricsEngine, tmp_path: Path, ledger) -> None:
    p = _predictions(engine, tmp_path / "fresh", ledger)
    p.train("lead_score")
    assert ledger.lookup("lead_score", VERSION) == file_hashes(tmp_path / "fresh" / "lead_score" / VERSION)
    assert 0 < p.explain("lead_score", 4411).score < 100


def test_an_artifact_the_audit_log_never_saw_is_refused(engine: MetricsEngine, models: Path, ledger) -> None:
    with pytest.raises(ArtifactRefused, match="no record in the audit log"):
        _predictions(engine, models, ledger).explain("lead_score", 4411)


def test_edited_coefficients_with_a_recomputed_manifest_are_refused(
    engine: MetricsEngine, models: Path, ledger
) -> None:
    folder = models / "lead_score" / VERSION
    ledger.record("lead_score", VERSION, file_hashes(folder), "U07NP0011", "test")
    assert 0 < _predictions(engine, models, ledger).explain("lead_score", 4411).score < 100
    estimator = sio.load(folder / "model.skops", trusted=sio.get_untrusted_types(file=folder / "model.skops"))
    estimator.coef_ = np.abs(estimator.coef_) * 3  # every factor now pushes the score up
    sio.dump(estimator, folder / "model.skops")
    write_manifest(folder, source="an attacker")  # the manifest agrees with the edited file
    with pytest.raises(ArtifactRefused, match="differs from the one recorded in the audit log"):
        _predictions(engine, models, ledger).explain("lead_score", 4411)
