"""The bot loads only artifacts it can trust: unchanged since their manifest was written, real skops files, of
types skops trusts, and linear models it can explain exactly. Everything else is refused with a clear reason."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.predictions.model import ArtifactRefused, write_manifest
from mopsbot.predictions.service import Predictions
from tests.predictions.reference import REPO

VERSION = "2026.11"


class Payload:
    """A custom type whose loading would leave a trace: __setstate__ writes the file named in its state."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("executed", encoding="utf-8")
        self.__dict__.update(state)


class MkdirOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def copied(predictions: Predictions, data_dir: Path, tmp_path: Path) -> Path:
    """A copy of the trained models dir that a test may damage."""
    models = tmp_path / "models"
    shutil.copytree(data_dir / "models", models)
    return models


def _fresh(engine: MetricsEngine, models: Path) -> Predictions:
    return Predictions(REPO / "tools" / "models", models, engine.cursor)


def _refusal(engine: MetricsEngine, models: Path) -> str:
    with pytest.raises(ArtifactRefused) as info:
        _fresh(engine, models).explain("lead_score", 4411)
    return str(info.value)


def _replace_model(models: Path, write) -> Path:
    """Put another file in lead_score's model.skops and write a manifest that matches it."""
    folder = models / "lead_score" / VERSION
    write(folder / "model.skops")
    write_manifest(folder, source="a test")
    return folder


def test_the_untouched_copy_loads(engine: MetricsEngine, copied: Path) -> None:
    assert 0 < _fresh(engine, copied).explain("lead_score", 4411).score < 100


@pytest.mark.parametrize("name", ["model.skops", "spec.json"])
def test_one_changed_byte_is_refused(engine: MetricsEngine, copied: Path, name: str) -> None:
    path = copied / "lead_score" / VERSION / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    message = _refusal(engine, copied)
    assert f"{name} does not match its manifest" in message
    assert "mopsbot models train lead_score" in message


def test_a_pickle_renamed_model_skops_is_refused_and_not_unpickled(
    engine: MetricsEngine, copied: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    _replace_model(copied, lambda p: p.write_bytes(pickle.dumps(MkdirOnUnpickle(marker))))
    message = _refusal(engine, copied)
    assert "model.skops is not a skops file" in message
    assert not marker.exists()


def test_a_decision_tree_is_refused(engine: MetricsEngine, copied: Path) -> None:
    tree = DecisionTreeClassifier(max_depth=2).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    _replace_model(copied, lambda p: sio.dump(tree, p))
    message = _refusal(engine, copied)
    # skops lists the tree's internals (sklearn.tree._tree.Tree) as untrusted, so this is refused before the type check
    assert "Tree" in message


def test_a_trusted_but_non_linear_model_is_refused_as_not_linear(engine: MetricsEngine, copied: Path) -> None:
    x = np.random.default_rng(0).random((40, 29))
    nb = GaussianNB().fit(x, (x[:, 0] > 0.5).astype(int))
    _replace_model(copied, lambda p: sio.dump(nb, p))
    message = _refusal(engine, copied)
    assert "GaussianNB" in message
    assert "LogisticRegression" in message  # says which kinds it can explain


def test_a_pipeline_calling_os_system_is_refused_naming_the_type(engine: MetricsEngine, copied: Path) -> None:
    pipeline = make_pipeline(FunctionTransformer(func=os.system))
    _replace_model(copied, lambda p: sio.dump(pipeline, p))
    message = _refusal(engine, copied)
    assert "does not trust" in message
    assert f"{os.system.__module__}.system" in message


def test_a_custom_class_is_refused_and_nothing_runs(engine: MetricsEngine, copied: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    control = tmp_path / "control.skops"
    sio.dump(Payload(str(tmp_path / "control-ran")), control)
    sio.load(control, trusted=sio.get_untrusted_types(file=control))  # the payload does run when trusted
    assert (tmp_path / "control-ran").exists()

    _replace_model(copied, lambda p: sio.dump(Payload(str(marker)), p))
    message = _refusal(engine, copied)
    assert "does not trust" in message
    assert f"{__name__}.Payload" in message
    assert not marker.exists()


def test_an_estimator_with_other_inputs_than_the_spec_is_refused(engine: MetricsEngine, copied: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((40, 3))
    three_inputs = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    _replace_model(copied, lambda p: sio.dump(three_inputs, p))
    assert "inputs do not match spec.json" in _refusal(engine, copied)


def test_a_missing_artifact_says_how_to_train_it(engine: MetricsEngine, tmp_path: Path) -> None:
    message = _refusal(engine, tmp_path / "empty-models")
    assert "not trained yet" in message
    assert "mopsbot models train lead_score" in message


def test_a_missing_spec_is_refused(engine: MetricsEngine, copied: Path) -> None:
    (copied / "lead_score" / VERSION / "spec.json").unlink()
    assert "spec.json does not match its manifest" in _refusal(engine, copied)
