"""Run folders on disk: what a training run writes, and reading it back.

A run folder holds

- ``config.json``: every setting (model, estimator parameters, data source and split, seed,
  limit) and the versions of aekit, torch, numpy and Python; written after the first epoch
  (``status: "running"``) and again, ``"finished"``, at the end;
- ``checkpoint.safetensors``: the training state after the last finished epoch (``--resume``
  continues from it);
- ``history.csv``: one row per epoch (loss and each part, train and ``val_``), rewritten after
  every epoch;
- ``model.safetensors``: the fitted estimator (``aekit.load(run_dir)`` reads it);
- ``metrics.json``: evaluation on the dataset's test split, or on a held-out part of user data (with
  the disentanglement metrics when the data has known factors of variation, e.g. ``sprites``);
- ``report.html``: the page built by :func:`aekit.report.build_report`;
- ``explorer.html``: the latent explorer, :func:`aekit.report.build_explorer`, linked from the report;
- ``evaluation.json``: written by :func:`aekit.run.evaluate_run` (``aekit evaluate``);
- ``codec-<bits>bit-<model hash>.npz``: the codec tables of :func:`aekit.run.run_codec`;
- ``tensorboard/``: TensorBoard event files (``train/``, ``validation/``), when the run was
  fitted with ``aekit fit --tensorboard``.

This module only reads and writes; the commands that train into a run folder or use its model
are in :mod:`aekit.run`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._utils import atomic_write_text
from ._version import __version__
from .checkpoint import read_safetensors
from .datasets import available_datasets, load_dataset
from .train import CHECKPOINT_NAME

__all__ = [
    "CHECKPOINT_NAME", "CONFIG_NAME", "EVALUATION_NAME", "EXPLORER_NAME", "HISTORY_NAME", "HOLDOUT_FRACTION", "METRICS_NAME",
    "MODEL_NAME", "REPORT_NAME", "TENSORBOARD_NAME", "DEFAULT_SPLIT", "RunData", "RunWriter", "checkpoint_history", "data_source", "in_range",
    "load_estimator", "load_run_data", "read_history", "read_run", "run_data", "run_samples", "Samples", "training_samples",
    "versions",
    "write_history", "write_json",
]

CONFIG_NAME, HISTORY_NAME, MODEL_NAME = "config.json", "history.csv", "model.safetensors"
METRICS_NAME, REPORT_NAME, EVALUATION_NAME = "metrics.json", "report.html", "evaluation.json"
TENSORBOARD_NAME = "tensorboard"  # folder of TensorBoard event files (aekit fit --tensorboard)
EXPLORER_NAME = "explorer.html"
HOLDOUT_FRACTION = 0.2  # of user data without a test split, kept for evaluation
DEFAULT_SPLIT = "test"  # what every command over a run's model reads by default


@dataclass
class RunData:
    """Training and evaluation data of a run, as :func:`load_run_data` builds them."""

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_eval: np.ndarray
    y_eval: np.ndarray | None
    image_shape: tuple[int, ...] | None
    eval_split: str  # "test", or "held-out"
    eval_description: str
    feature_names: tuple[str, ...] | None = None  # a table's column names, when its file has them
    factors_eval: np.ndarray | None = None  # (n_eval, n_factors) known factors of variation (Dataset.factors)
    factor_names: tuple[str, ...] | None = None


def load_run_data(data: str | Path = "digits", *, seed: int = 0, limit: int | None = None, root=None) -> RunData:
    """Training and evaluation data for a run.

    Built-in datasets give their train and test splits. User files have no test split: a seeded
    random ``HOLDOUT_FRACTION`` (20%) of the samples is held out for evaluation. ``limit`` keeps the
    first ``limit`` samples of each part (for quick runs). ``root``: the folder of MNIST-style IDX
    files, as for :func:`aekit.load_dataset`.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 2):
        raise ValueError(f"limit must be an integer >= 2, got {limit!r}")
    data = str(data)
    train = load_dataset(data, "train", root)
    factors = None
    if data in available_datasets():
        test = load_dataset(data, "test", root)
        parts = (train.X, train.y, test.X, test.y)
        split, description = "test", f"the test split of {data}"
        factors = test.factors
    else:
        n = len(train.X)
        n_eval = max(1, round(n * HOLDOUT_FRACTION))
        if n - n_eval < 2:
            raise ValueError(f"{data}: {n} samples are too few to train on and hold out a part for evaluation")
        order = np.random.default_rng(seed).permutation(n)
        ev, tr = np.sort(order[:n_eval]), np.sort(order[n_eval:])
        y = train.y
        parts = (np.asarray(train.X[tr]), None if y is None else y[tr], np.asarray(train.X[ev]), None if y is None else y[ev])
        factors = None if train.factors is None else train.factors[ev]
        split = "held-out"
        description = f"a held-out {HOLDOUT_FRACTION:.0%} of {Path(data).name} (seed {seed})"
    X_tr, y_tr, X_ev, y_ev, f_ev = (None if a is None else a[:limit] for a in (*parts, factors))
    return RunData(X_tr, y_tr, X_ev, y_ev, train.image_shape, split, description, train.feature_names,
                   f_ev, train.factor_names)


def versions() -> dict[str, str]:
    import torch

    return {"aekit": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def data_source(data) -> str:
    """Built-in names stay names; paths become absolute so the run folder can be used from anywhere."""
    data = str(data)
    return data if data in available_datasets() else str(Path(data).expanduser().resolve())


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(_finite(obj), indent=2) + "\n")


def _finite(obj):
    """JSON-safe: NaN and infinities become null (json.dumps would write invalid JSON)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """history.csv: one row per epoch, columns in order of first appearance."""
    columns: list[str] = []
    for record in history:
        columns += [k for k in record if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())


def read_history(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def checkpoint_history(run_dir: Path) -> list[dict[str, float]]:
    """The epochs already recorded in a run's checkpoint (what training resumes after)."""
    _, meta = read_safetensors(run_dir / CHECKPOINT_NAME)
    return list(json.loads(meta.get("extra", "{}")).get("history", []))


class RunWriter:
    """Training callback that writes the run folder as training goes: config.json after the first
    epoch (first removing an overwritten run's stale outputs), history.csv after every epoch.
    Nothing is written before an epoch has finished, so settings that fail validation leave no
    half-made run folder behind."""

    def __init__(self, run_dir: Path, config: dict[str, Any], prior: list[dict[str, float]], stale: tuple[str, ...]):
        self.run_dir, self.config, self.history, self.stale = run_dir, config, list(prior), stale
        self.started = False

    def __call__(self, epoch: int, record: dict[str, float]) -> None:
        if not self.started:
            for name in self.stale:
                (self.run_dir / name).unlink(missing_ok=True)
            write_json(self.run_dir / CONFIG_NAME, self.config)
            self.started = True
        self.history.append(dict(record))
        write_history(self.run_dir / HISTORY_NAME, self.history)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's ``config`` and ``metrics`` (None while the run has not finished)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it has no {CONFIG_NAME}")
    metrics_path = run_dir / METRICS_NAME
    return {
        "config": json.loads(path.read_text()),
        "metrics": json.loads(metrics_path.read_text()) if metrics_path.is_file() else None,
    }


def load_estimator(run_dir: str | Path):
    """The fitted estimator of a finished run (``aekit.load`` on its model file)."""
    from .estimators import load

    run_dir = Path(run_dir)
    if not (run_dir / MODEL_NAME).is_file():
        raise FileNotFoundError(f"{run_dir} holds no fitted model ({MODEL_NAME}); has the run finished?")
    return load(run_dir)


class Samples(NamedTuple):
    """What :func:`run_data` returns: samples for a fitted estimator and what the data knows of them."""

    X: np.ndarray  # (n, *est.input_shape_) float32
    y: np.ndarray | None  # (n,) labels, None when the data has none
    layout: tuple  # the data's own per-sample shape
    factors: np.ndarray | None  # (n, n_factors) known factors of variation (Dataset.factors), else None
    factor_names: tuple[str, ...] | None


def run_data(est, data, split: str = DEFAULT_SPLIT, limit: int | None = None, *,
             allow_nan: bool = False, root=None) -> Samples:
    """``data`` (a dataset name or path) as samples for a fitted estimator: float32 in the layout
    it was fitted on (``input_shape_``), the data's labels (None when it has none), the data's
    own per-sample shape (to give results back in it) and its known factors of variation (None
    when it has none). NaNs are refused unless ``allow_nan``.

    ``split``: "test" (the default: a built-in dataset's test split; a user file, which has no
    splits, whole), "train" or "all"."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if split == "test" and str(data) not in available_datasets():
        split = "all"
    ds = load_dataset(str(data), split, root)
    X = np.asarray(ds.X[:limit], dtype=np.float32)
    if len(X) == 0:
        raise ValueError(f"{data}: no samples")
    if X[0].size != est.n_features_in_:
        raise ValueError(f"{data}: samples have {X[0].size} values, but the model was trained on {est.n_features_in_}")
    if not allow_nan and np.isnan(X).any():
        raise ValueError(f"{data}: has missing values (NaN); fill them first (aekit impute, aekit.run.impute_run)")
    y = None if ds.y is None else np.asarray(ds.y[:limit])
    factors = None if ds.factors is None else np.asarray(ds.factors[:limit])
    return Samples(X.reshape(len(X), *est.input_shape_), y, X.shape[1:], factors, ds.factor_names)


def run_samples(est, data, split: str = DEFAULT_SPLIT, limit: int | None = None, *,
                allow_nan: bool = False, root=None) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """``(X, y, layout)`` of :func:`run_data`: the samples, their labels and the data's per-sample shape."""
    return run_data(est, data, split, limit, allow_nan=allow_nan, root=root)[:3]


def training_samples(run_dir: Path, est) -> np.ndarray:
    """The run's training samples again (config.json's data, seed and limit), for the parts of an
    application fitted on training data like the weights: codec tables, the PCA baseline."""
    config = read_run(run_dir)["config"]
    try:
        rd = load_run_data(config["data"], seed=config["seed"], limit=config.get("limit"), root=config.get("data_root"))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"the run's training data is needed and could not be read: {e}") from None
    return np.asarray(rd.X_train, dtype=np.float32).reshape(len(rd.X_train), *est.input_shape_)


def in_range(X: np.ndarray, index: int, name: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(X):
        raise ValueError(f"{name} must be a sample index in [0, {len(X)}), got {index!r}")
    return int(index)
