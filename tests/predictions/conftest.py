"""The demo models trained once per session into a temporary models dir, over the seeded demo warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import TrainedModel
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import REPO, encode, training_rows


@pytest.fixture(scope="session")
def engine(warehouse: Path) -> Iterator[MetricsEngine]:
    e = MetricsEngine(REPO / "tools" / "metrics.yaml", warehouse)
    yield e
    e.close()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MOPSBOT_DATA_DIR whose models/ holds the session's trained artifacts (read-only for tests)."""
    return tmp_path_factory.mktemp("predictions-data")


@pytest.fixture(scope="session")
def predictions(engine: MetricsEngine, data_dir: Path) -> Predictions:
    p = Predictions(REPO / "tools" / "models", data_dir / "models", engine.cursor)
    for name in ("lead_score", "sql_acceptance"):
        p.train(name)
    return p


@pytest.fixture(scope="session")
def lead_model(predictions: Predictions) -> TrainedModel:
    return predictions.model("lead_score")


@pytest.fixture(scope="session")
def lead_training(engine: MetricsEngine, lead_model: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """lead_score's training matrix (encoded by the reference encoder) and labels."""
    rows, label = training_rows(engine.cursor(), lead_model)
    return encode(lead_model, rows), label
