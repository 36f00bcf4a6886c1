"""Trained models: the feature encoding, the fitted linear estimator, its measured quality, and safe storage.

An artifact is a folder `<data_dir>/models/<name>/<version>/` with `model.skops` (the estimator, saved with skops:
loading it runs no arbitrary code, and any type outside skops' trusted list is refused), `spec.json` (encoding,
training statistics, metrics) and `manifest.json` (SHA-256 of both, written when the bot trains or registers the
model). A file changed afterwards no longer matches its manifest and is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mopsbot.errors import UserFacingError
from mopsbot.predictions.card import ModelCard

MIN_BAND_ROWS = 30  # fewer holdout rows in a score band: too few to judge its calibration
LINEAR = ("LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet")


class ArtifactRefused(UserFacingError):
    """A model artifact that is missing, changed since it was written, or not a type the bot will load."""


@dataclass
class Encoding:
    """How raw entity values become the model's columns; one-hot groups map back to their feature."""

    numeric: list[str]
    categories: dict[str, list[str]]  # categorical feature -> known values (one column each)
    transforms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, card: ModelCard, rows: dict[str, np.ndarray]) -> Encoding:
        numeric = [f.name for f in card.features if f.type != "categorical"]
        cats = {
            f.name: sorted({str(v) for v in rows[f.name] if v is not None})
            for f in card.features
            if f.type == "categorical"
        }
        return cls(numeric, cats, {f.name: f.transform for f in card.features if f.transform})

    def columns(self) -> list[tuple[str, str | None]]:
        """(feature, category) per model column, in order."""
        cols: list[tuple[str, str | None]] = [(n, None) for n in self.numeric]
        for name, values in self.categories.items():
            cols += [(name, v) for v in values]
        return cols

    def groups(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, (feature, _) in enumerate(self.columns()):
            out.setdefault(feature, []).append(i)
        return out

    def encode(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        """The model matrix for column arrays of raw values (unknown categories encode as all zeros)."""
        n = len(next(iter(rows.values())))
        parts = []
        for name in self.numeric:
            col = np.asarray(rows[name], dtype=float)
            if self.transforms.get(name) == "log1p":
                col = np.log1p(np.maximum(col, 0))
            parts.append(col.reshape(n, 1))
        for name, values in self.categories.items():
            raw = np.asarray(rows[name]).astype(str)
            parts.append(np.stack([(raw == v).astype(float) for v in values], axis=1))
        return np.hstack(parts) if parts else np.zeros((n, 0))


@dataclass
class Spec:
    """Everything about a trained model besides the estimator itself."""

    name: str
    version: str
    kind: str
    encoding: Encoding
    baseline: list[float]  # mean of each model column over the training rows: the reference point
    average_prediction: float  # mean predicted probability (classifier) or value (regressor) over training
    ranges: dict[str, list[float]]  # numeric feature -> [min, max] seen in training (raw units)
    metrics: dict[str, Any]  # auc, brier (classifier), r2, mae (regressor), rows, positives, calibration
    trained_at: str
    training_rows: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        data["encoding"] = Encoding(**data["encoding"])
        return cls(**data)


@dataclass
class TrainedModel:
    card: ModelCard
    spec: Spec
    estimator: Any

    @property
    def weights(self) -> tuple[np.ndarray, float]:
        coef = np.asarray(self.estimator.coef_, dtype=float).reshape(-1)
        intercept = float(np.asarray(self.estimator.intercept_, dtype=float).reshape(-1)[0])
        return coef, intercept

    def raw_output(self, matrix: np.ndarray) -> np.ndarray:
        """Log-odds (classifier) or the prediction (regressor), computed by the estimator itself."""
        if self.spec.kind == "classifier":
            return np.asarray(self.estimator.decision_function(matrix), dtype=float)
        return np.asarray(self.estimator.predict(matrix), dtype=float)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        out = self.raw_output(matrix)
        return 1 / (1 + np.exp(-out)) if self.spec.kind == "classifier" else out


def calibration_table(prob: np.ndarray, label: np.ndarray, edges: tuple[float, ...] = (0, 0.2, 0.4, 0.6, 0.8, 1.0)):
    """Per score band: rows, mean predicted, observed rate, and whether they agree (within 5 points or 2 SE)."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        mask = (prob >= lo) & ((prob < hi) if hi < 1 else (prob <= hi))
        n = int(mask.sum())
        if not n:
            rows.append(
                {
                    "band": f"{round(lo * 100)}-{round(hi * 100)}",
                    "rows": 0,
                    "predicted": None,
                    "observed": None,
                    "well_calibrated": None,
                }
            )
            continue
        pred, obs = float(prob[mask].mean()), float(label[mask].mean())
        se = (max(obs * (1 - obs), 1e-9) / n) ** 0.5
        verdict = None if n < MIN_BAND_ROWS else abs(pred - obs) <= max(0.05, 2 * se)
        rows.append(
            {
                "band": f"{round(lo * 100)}-{round(hi * 100)}",
                "rows": n,
                "predicted": round(pred, 4),
                "observed": round(obs, 4),
                "well_calibrated": verdict,
            }
        )
    return rows


def fit(card: ModelCard, rows: dict[str, np.ndarray], label: np.ndarray, seed: int = 7) -> TrainedModel:
    """Fit the card's linear model; quality is measured on a 20% holdout, the final model uses all rows."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import brier_score_loss, mean_absolute_error, r2_score, roc_auc_score

    encoding = Encoding.fit(card, rows)
    x = encoding.encode(rows)
    y = np.asarray(label, dtype=float)
    rng = np.random.default_rng(seed)
    test = rng.random(len(y)) < 0.2

    def make():
        if card.kind == "classifier":
            return LogisticRegression(C=10.0, max_iter=2000)
        return Ridge(alpha=1.0)

    held = make().fit(x[~test], y[~test])
    if card.kind == "classifier":
        p = held.predict_proba(x[test])[:, 1]
        metrics = {
            "auc": round(float(roc_auc_score(y[test], p)), 4),
            "brier": round(float(brier_score_loss(y[test], p)), 4),
            "base_rate": round(float(y.mean()), 4),
            "calibration": calibration_table(p, y[test]),
        }
    else:
        p = held.predict(x[test])
        metrics = {"r2": round(float(r2_score(y[test], p)), 4), "mae": round(float(mean_absolute_error(y[test], p)), 4)}
    metrics |= {"holdout_rows": int(test.sum()), "training_rows": int((~test).sum())}
    estimator = make().fit(x, y)
    fitted = estimator.predict_proba(x)[:, 1] if card.kind == "classifier" else estimator.predict(x)
    ranges = {
        f.name: [float(np.min(rows[f.name])), float(np.max(rows[f.name]))]
        for f in card.features
        if f.type != "categorical"
    }
    spec = Spec(
        name=card.name,
        version=card.version,
        kind=card.kind,
        encoding=encoding,
        baseline=[float(v) for v in x.mean(axis=0)],
        average_prediction=float(np.mean(fitted)),
        ranges=ranges,
        metrics=metrics,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        training_rows=len(y),
    )
    return TrainedModel(card, spec, estimator)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(model: TrainedModel, root: Path) -> Path:
    """Write model.skops, spec.json and manifest.json under root/<name>/<version>/; returns the folder."""
    import skops.io as sio

    folder = root / model.spec.name / model.spec.version
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(model.estimator, folder / "model.skops")
    (folder / "spec.json").write_text(model.spec.to_json(), encoding="utf-8")
    write_manifest(folder, source="trained by mopsbot")
    return folder


def write_manifest(folder: Path, source: str) -> None:
    manifest = {
        "model.skops": _sha256(folder / "model.skops"),
        "spec.json": _sha256(folder / "spec.json"),
        "source": source,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def file_hashes(folder: Path) -> dict[str, str]:
    return {name: _sha256(folder / name) for name in ("model.skops", "spec.json") if (folder / name).exists()}


def load(card: ModelCard, root: Path, ledger: Any = None) -> TrainedModel:
    """The card's artifact, verified against its manifest and (with a ledger) against the hashes the audit chain
    recorded when it was trained or registered, then loaded without executing code. Raises ArtifactRefused."""
    import skops.io as sio

    folder = root / card.name / card.version
    where = f"model {card.name} {card.version}"
    if not (folder / "manifest.json").exists() or not (folder / "model.skops").exists():
        raise ArtifactRefused(f"{where} is not trained yet: run `mopsbot models train {card.name}`")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in ("model.skops", "spec.json"):
        if not (folder / name).exists() or manifest.get(name) != _sha256(folder / name):
            raise ArtifactRefused(
                f"{where}: {name} does not match its manifest (changed after it was written); "
                f"refusing to load it. Retrain with `mopsbot models train {card.name}`."
            )
    if ledger is not None:
        recorded = ledger.lookup(card.name, card.version)
        if recorded is None:
            raise ArtifactRefused(
                f"{where} was not trained or registered through mopsbot (no record in the audit log); refusing to "
                f"load it. Run `mopsbot models train {card.name}` or `mopsbot models register`."
            )
        if recorded != file_hashes(folder):
            raise ArtifactRefused(
                f"{where}: the artifact differs from the one recorded in the audit log when it was trained or "
                "registered; refusing to load it."
            )
    try:
        untrusted = sio.get_untrusted_types(file=folder / "model.skops")
    except Exception as err:
        raise ArtifactRefused(f"{where}: model.skops is not a skops file ({type(err).__name__})") from None
    if untrusted:
        raise ArtifactRefused(f"{where}: model.skops holds types the bot does not trust: {', '.join(untrusted)}")
    estimator = sio.load(folder / "model.skops", trusted=[])
    kind = type(estimator).__name__
    if kind not in LINEAR:
        raise ArtifactRefused(f"{where}: a {kind}; exact explanations need one of {', '.join(LINEAR)}")
    if (kind == "LogisticRegression") != (card.kind == "classifier"):
        raise ArtifactRefused(f"{where}: the card says {card.kind}, but the artifact is a {kind}")
    try:
        spec = Spec.from_json((folder / "spec.json").read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as err:
        raise ArtifactRefused(f"{where}: spec.json is not a valid model spec ({type(err).__name__}: {err})") from None
    expected = {f.name: f.type for f in card.features}
    encoded = {n: "numeric" for n in spec.encoding.numeric} | {n: "categorical" for n in spec.encoding.categories}
    if {n: ("categorical" if t == "categorical" else "numeric") for n, t in expected.items()} != encoded:
        raise ArtifactRefused(
            f"{where}: spec.json encodes {', '.join(sorted(encoded))} but the card's features are "
            f"{', '.join(sorted(expected))}"
        )
    if spec.kind != card.kind:
        raise ArtifactRefused(f"{where}: spec.json is for a {spec.kind}, the card for a {card.kind}")
    if len(np.asarray(estimator.coef_).reshape(-1)) != len(spec.encoding.columns()):
        raise ArtifactRefused(f"{where}: the estimator's inputs do not match spec.json's encoding")
    return TrainedModel(card, spec, estimator)
