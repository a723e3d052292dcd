"""Run folders: one training run on disk, written as training goes.

A run folder holds

- ``config.json``: every setting (model, estimator parameters, data source and split, seed,
  limit) and the versions of aekit, torch, numpy and Python; written after the first epoch
  (``status: "running"``) and again, ``"finished"``, at the end;
- ``checkpoint.safetensors``: the training state after the last finished epoch (``--resume``
  continues from it);
- ``history.csv``: one row per epoch (loss and each part, train and ``val_``), rewritten after
  every epoch;
- ``model.safetensors``: the fitted estimator (``aekit.load(run_dir)`` reads it);
- ``metrics.json``: evaluation on the dataset's test split, or on a held-out part of user data;
- ``report.html``: the page built by :func:`aekit.report.build_report`;
- ``evaluation.json``: written by :func:`evaluate_run` (``aekit evaluate``);
- ``codec-<bits>bit-<model hash>.npz``: the codec tables of :func:`run_codec` (``aekit compress``).

Everything the ``aekit`` command line does with run folders is a function here: training
(:func:`fit_run`, :func:`resume_run`, :func:`demo`), reading (:func:`read_run`), and the
applications over a run's fitted model, each taking ``(run_dir, data, ...)`` where ``data`` is a
dataset name or path: :func:`encode_run`, :func:`generate_run`, :func:`evaluate_run`,
:func:`denoise_run`, :func:`detect_run`, :func:`impute_run`, :func:`compress_run` /
:func:`decompress_run`, :func:`search_run`, :func:`interpolate_run` and :func:`compare_pca_run`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import platform
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._registry import get_model_class
from ._utils import atomic_write_bytes, atomic_write_text
from .apps._common import estimator_names, is_variational, make_estimator
from .checkpoint import read_safetensors
from .distributed import is_main_process
from .datasets import available_datasets, load_dataset
from .train import CHECKPOINT_NAME

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEMO_PARAMS",
    "KL_ACTIVE_THRESHOLD",
    "Compressed",
    "Denoised",
    "Detection",
    "Imputed",
    "Neighbours",
    "Run",
    "RunData",
    "compare_pca_run",
    "compress_run",
    "compute_metrics",
    "decompress_run",
    "demo",
    "denoise_run",
    "detect_run",
    "encode_run",
    "evaluate_run",
    "fit_run",
    "generate_run",
    "impute_run",
    "interpolate_run",
    "load_run_data",
    "read_run",
    "resume_run",
    "run_codec",
    "search_run",
    "torch_threads",
]

CONFIG_NAME, HISTORY_NAME, MODEL_NAME = "config.json", "history.csv", "model.safetensors"
METRICS_NAME, REPORT_NAME, EVALUATION_NAME = "metrics.json", "report.html", "evaluation.json"
HOLDOUT_FRACTION = 0.2  # of user data without a test split, kept for evaluation
KL_ACTIVE_THRESHOLD = 0.01  # nats: a latent dimension with less KL than this carries no information

# The demo: a 2-D VAE on the embedded digits, so the latent space is plotted as it is; both
# dimensions stay active (about 1.2 nats of KL each). One torch thread: these matrices are too small
# to share, and a second thread on a busy 2-core machine made training 15x slower (measured).
DEMO_PARAMS: dict[str, Any] = {"latent_dim": 2, "hidden_dims": (256, 128), "epochs": 100, "batch_size": 64}
DEMO_THREADS = 1


@dataclass
class Run:
    """What :func:`fit_run` returns: the folder, the fitted estimator and its metrics."""

    run_dir: Path
    estimator: Any
    metrics: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT_NAME


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


def load_run_data(data: str | Path = "digits", *, seed: int = 0, limit: int | None = None) -> RunData:
    """Training and evaluation data for a run.

    Built-in datasets give their train and test splits. User files have no test split: a seeded
    random ``HOLDOUT_FRACTION`` (20%) of the samples is held out for evaluation. ``limit`` keeps the
    first ``limit`` samples of each part (for quick runs).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 2):
        raise ValueError(f"limit must be an integer >= 2, got {limit!r}")
    data = str(data)
    train = load_dataset(data, "train")
    if data in available_datasets():
        test = load_dataset(data, "test")
        parts = (train.X, train.y, test.X, test.y)
        split, description = "test", f"the test split of {data}"
    else:
        n = len(train.X)
        n_eval = max(1, round(n * HOLDOUT_FRACTION))
        if n - n_eval < 2:
            raise ValueError(f"{data}: {n} samples are too few to train on and hold out a part for evaluation")
        order = np.random.default_rng(seed).permutation(n)
        ev, tr = np.sort(order[:n_eval]), np.sort(order[n_eval:])
        y = train.y
        parts = (np.asarray(train.X[tr]), None if y is None else y[tr], np.asarray(train.X[ev]), None if y is None else y[ev])
        split = "held-out"
        description = f"a held-out {HOLDOUT_FRACTION:.0%} of {Path(data).name} (seed {seed})"
    X_tr, y_tr, X_ev, y_ev = (None if a is None else a[:limit] for a in parts)
    return RunData(X_tr, y_tr, X_ev, y_ev, train.image_shape, split, description)


def _versions() -> dict[str, str]:
    import torch

    return {"aekit": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _data_source(data) -> str:
    """Built-in names stay names; paths become absolute so the run folder can be used from anywhere."""
    data = str(data)
    return data if data in available_datasets() else str(Path(data).expanduser().resolve())


def _write_json(path: Path, obj) -> None:
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


def _checkpoint_history(run_dir: Path) -> list[dict[str, float]]:
    """The epochs already recorded in a run's checkpoint (what training resumes after)."""
    _, meta = read_safetensors(run_dir / CHECKPOINT_NAME)
    return list(json.loads(meta.get("extra", "{}")).get("history", []))


class _RunWriter:
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
            _write_json(self.run_dir / CONFIG_NAME, self.config)
            self.started = True
        self.history.append(dict(record))
        write_history(self.run_dir / HISTORY_NAME, self.history)


def fit_run(
    run_dir: str | Path,
    model: str = "vae",
    data: str | Path = "digits",
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    report: bool = True,
    threads: int | None = None,
) -> Run:
    """Train a model into a run folder, writing it as training goes, then evaluate and report.

    Parameters
    ----------
    run_dir : folder to write (created).
    model : registry name: one of ``aekit.apps._common.estimator_names()`` ("ae", "vae", ...).
    data : a built-in dataset name or a path (``.npy``, ``.npz``, ``.csv``, image folder).
    params : estimator parameters (those of the model's estimator class); ``random_state`` is
        ``seed`` unless given here.
    seed : seeds the model and, for user data, the held-out split.
    limit : use the first ``limit`` samples of the training and of the evaluation data.
    resume : continue from ``run_dir/checkpoint.safetensors`` (same settings; ``epochs`` may grow).
    overwrite : allow writing into a folder that already holds a run.
    progress : show a progress bar with ETA.
    report : build report.html at the end.
    threads : CPU threads torch may use during the run (None: torch's default); restored after.

    Returns
    -------
    Run

    Examples
    --------
    >>> import tempfile
    >>> from aekit.run import fit_run
    >>> run = fit_run(tempfile.mkdtemp(), "ae", params={"epochs": 2, "latent_dim": 3}, limit=200, report=False)
    >>> sorted(p.name for p in run.run_dir.iterdir())
    ['checkpoint.safetensors', 'config.json', 'history.csv', 'metrics.json', 'model.safetensors']
    >>> run.metrics["eval_split"], run.estimator.transform(load_dataset("digits", "test").X[:2]).shape
    ('test', (2, 3))
    """
    run_dir = Path(run_dir)
    if model not in estimator_names():
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(estimator_names())}")
    existing = [n for n in (MODEL_NAME, CHECKPOINT_NAME) if (run_dir / n).exists()]
    if resume and not (run_dir / CHECKPOINT_NAME).exists():
        raise FileNotFoundError(f"nothing to resume: {run_dir / CHECKPOINT_NAME} does not exist")
    if existing and not (resume or overwrite):
        raise ValueError(f"{run_dir} already holds a run ({', '.join(existing)}); resume it, choose another folder, or overwrite it")
    params = {"random_state": seed, **(params or {})}
    est = make_estimator(model, params)
    est.set_params(verbose=progress)
    rd = load_run_data(data, seed=seed, limit=limit)
    if _conditional(est) and rd.y_train is None:
        raise ValueError(f"model {model!r} is conditional and needs labels, but {data} has none")

    config = {
        "model": model,
        "estimator": type(est).__name__,
        "data": _data_source(data),
        "train_split": "train",
        "eval_split": rd.eval_split,
        "eval_data": rd.eval_description,
        "seed": seed,
        "limit": limit,
        "threads": threads,
        "n_train": len(rd.X_train),
        "n_eval": len(rd.X_eval),
        "image_shape": list(rd.image_shape) if rd.image_shape else None,
        "params": {k: v for k, v in est.get_params().items() if k != "verbose"},
        "versions": _versions(),
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    prior = _checkpoint_history(run_dir) if resume else []
    writer = _RunWriter(run_dir, config, prior, stale=() if resume else (MODEL_NAME, METRICS_NAME, REPORT_NAME))
    t0 = time.perf_counter()
    fit_kw = {"checkpoint_dir": run_dir, "resume": resume, "callbacks": (writer,)}
    with torch_threads(threads):
        est.fit(rd.X_train, rd.y_train if _conditional(est) else None, **fit_kw)
        train_time = time.perf_counter() - t0
        est.set_params(verbose=False)
        if not is_main_process():  # under torchrun, rank 0 alone writes the run folder
            return Run(run_dir, est, None)
        write_history(run_dir / HISTORY_NAME, est.history_)  # the full history (also after early stopping)
        est.save(run_dir / MODEL_NAME)
        metrics = compute_metrics(est, rd.X_eval, rd.y_eval)
        metrics.update({"eval_split": rd.eval_split, "eval_data": rd.eval_description, "epochs_trained": len(est.history_)})
        metrics["final"] = {k: v for k, v in est.history_[-1].items() if k not in ("epoch", "lr", "time_s")}
        _write_json(run_dir / METRICS_NAME, metrics)
        config.update({"status": "finished", "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "train_time_s": round(train_time, 2)})
        _write_json(run_dir / CONFIG_NAME, config)
        if report:
            from .report import build_report

            build_report(run_dir)
    return Run(run_dir, est, metrics)


def _conditional(est) -> bool:
    """Whether the estimator's model family takes labels (cvae)."""
    return bool(get_model_class(est._model).conditional)


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


def resume_run(run_dir: str | Path, *, progress: bool = False, report: bool = True, **overrides) -> Run:
    """Continue an interrupted run (or extend a finished one: ``epochs=`` more than before) with
    the settings in its config.json; ``overrides`` are ``fit_run`` arguments or estimator params."""
    config = read_run(run_dir)["config"]
    run_args = {k: config.get(k) for k in ("model", "data", "seed", "limit", "threads")}
    params = dict(config["params"])
    for k, v in overrides.items():
        (run_args if k in run_args else params)[k] = v
    return fit_run(run_dir, params=params, resume=True, progress=progress, report=report, **run_args)


def compute_metrics(estimator, X, y=None, *, nll_samples: int = 0, progress: bool = False) -> dict[str, Any]:
    """Evaluation of a fitted estimator on X with :func:`aekit.evaluate.evaluate`, plus the latent
    dimensions whose KL is below ``KL_ACTIVE_THRESHOLD`` (``inactive_dims``) for VAEs.
    ``nll_samples`` > 0 adds the importance-weighted NLL (variational models only), with a
    progress bar when ``progress``."""
    from .evaluate import evaluate

    if nll_samples and not is_variational(estimator):
        raise ValueError(f"the NLL needs a variational model (vae, cvae, hvae); {type(estimator).__name__} has no likelihood")

    model = estimator.model_
    labels = None
    if model.conditional:
        if y is None:
            raise ValueError("a conditional model is evaluated with labels, but the evaluation data has none")
        known = np.isin(y, estimator.classes_)
        X, labels = X[known], np.searchsorted(estimator.classes_, np.asarray(y)[known])
    result = evaluate(model, _model_input(estimator, X), labels, nll_samples=nll_samples, seed=int(estimator.seed_),
                      progress=progress)
    result["units"] = "standardized" if getattr(estimator, "mean_", None) is not None else "data"
    if "kl_per_dim" in result:  # (kl_total, every layer's KL, comes from evaluate)
        kl = np.asarray(result["kl_per_dim"])
        result["kl_threshold"] = KL_ACTIVE_THRESHOLD
        result["inactive_dims"] = [int(i) for i in np.flatnonzero(kl < KL_ACTIVE_THRESHOLD)]
    return result


def _model_input(estimator, X) -> torch.Tensor:
    """X as the estimator's model sees it: validated, in the model's layout and, when the
    estimator standardizes, in standardized units."""
    return estimator._to_model(estimator._validate_X(X, reset=False))


def _load_for_use(run_dir: str | Path):
    from .estimators import load

    run_dir = Path(run_dir)
    if not (run_dir / MODEL_NAME).is_file():
        raise FileNotFoundError(f"{run_dir} holds no fitted model ({MODEL_NAME}); has the run finished?")
    return load(run_dir)


def _samples(est, data, split: str = "all", limit: int | None = None, *,
             allow_nan: bool = False) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """``data`` (a dataset name or path) as samples for a fitted estimator: float32 in the layout
    it was fitted on (``input_shape_``), the data's labels (None when it has none) and the data's
    own per-sample shape (to give results back in it). NaNs are refused unless ``allow_nan``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    ds = load_dataset(str(data), split)
    X = np.asarray(ds.X[:limit], dtype=np.float32)
    if len(X) == 0:
        raise ValueError(f"{data}: no samples")
    if X[0].size != est.n_features_in_:
        raise ValueError(f"{data}: samples have {X[0].size} values, but the model was trained on {est.n_features_in_}")
    if not allow_nan and np.isnan(X).any():
        raise ValueError(f"{data}: has missing values (NaN); fill them first (aekit impute, aekit.run.impute_run)")
    y = None if ds.y is None else np.asarray(ds.y[:limit])
    return X.reshape(len(X), *est.input_shape_), y, X.shape[1:]


def _training_samples(run_dir: Path, est) -> np.ndarray:
    """The run's training samples again (config.json's data, seed and limit), for the parts of an
    application fitted on training data like the weights: codec tables, the PCA baseline."""
    config = read_run(run_dir)["config"]
    try:
        rd = load_run_data(config["data"], seed=config["seed"], limit=config.get("limit"))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"the run's training data is needed and could not be read: {e}") from None
    return np.asarray(rd.X_train, dtype=np.float32).reshape(len(rd.X_train), *est.input_shape_)


def _peak(X: np.ndarray) -> float:
    """PSNR's peak value, as :func:`aekit.evaluate.evaluate` takes it: 1 for data in [0, 1], else
    the data's range."""
    lo, hi = float(np.min(X)), float(np.max(X))
    return 1.0 if lo >= 0 and hi <= 1 else (hi - lo) or 1.0


def _in_range(X: np.ndarray, index: int, name: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(X):
        raise ValueError(f"{name} must be a sample index in [0, {len(X)}), got {index!r}")
    return int(index)


def encode_run(run_dir: str | Path, data: str | Path, *, split: str = "all", limit: int | None = None) -> np.ndarray:
    """Codes (n, latent_dim) of ``data`` (a dataset name or path) under a run's fitted model.
    A conditional model uses the data's labels when it has them, else infers each label."""
    est = _load_for_use(run_dir)
    X, y, _ = _samples(est, data, split, limit)
    if _conditional(est) and y is not None and np.isin(y, est.classes_).all():
        return est.transform(X, y)
    return est.transform(X)


def generate_run(run_dir: str | Path, n: int = 64, *, seed: int = 0, label=None) -> np.ndarray:
    """``n`` samples from a run's generative model (per class for a conditional one: ``label``, or
    every class when None), in the layout the model was trained on."""
    from .apps import sample_grid

    est = _load_for_use(run_dir)
    if not hasattr(est, "sample"):
        raise ValueError(f"model {type(est).__name__} is not generative; generate needs vae, cvae, hvae or vqvae")
    if _conditional(est):
        return sample_grid(est, n, y=est.classes_ if label is None else [label], random_state=seed)
    return sample_grid(est, n, random_state=seed)


# -- applications over a run's model ---------------------------------------------------------------


def evaluate_run(run_dir: str | Path, data: str | Path, split: str = "test", nll_samples: int = 0,
                 limit: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate a run's fitted model on ``data`` and write ``run_dir/evaluation.json``.

    The estimator is read with ``aekit.load(run_dir)`` and the data reach its model exactly as in
    its own methods (validated, reshaped and, when the estimator standardizes, standardized); a
    conditional model gets the data's labels.

    Parameters
    ----------
    run_dir : a finished run folder.
    data : a built-in dataset name or a path, as for ``fit_run``.
    split : "test", "train" or "all" (user files have only "train"/"all").
    nll_samples : importance samples K for the NLL (variational models); 0 skips it.
    limit : evaluate on the first ``limit`` samples only.
    progress : show a progress bar while the NLL is estimated.

    Returns
    -------
    dict : :func:`compute_metrics` (``recon_mse``, ``psnr``; for VAEs ``elbo``, ``kl_per_dim``,
        ``active_units``, ...; ``nll`` when K > 0) plus ``nll_samples``, ``data``, ``split``,
        ``limit`` and ``run_dir``; the same dict is in ``evaluation.json``.
    """
    run_dir = Path(run_dir)
    est = _load_for_use(run_dir)
    X, y, _ = _samples(est, data, split, limit)
    result = compute_metrics(est, X, y, nll_samples=nll_samples, progress=progress)
    result.update({"nll_samples": nll_samples, "data": _data_source(data), "split": split, "limit": limit,
                   "run_dir": str(run_dir)})
    _write_json(run_dir / EVALUATION_NAME, result)
    return result


@dataclass
class Denoised:
    """What :func:`denoise_run` returns; arrays shaped like the data given."""

    denoised: np.ndarray
    noisy: np.ndarray  # the model's input: the data with noise added, or the data as given
    clean: np.ndarray | None  # the data before the noise (None when none was added)
    psnr_noisy: float | None  # dB, noisy against clean
    psnr_denoised: float | None  # dB, denoised against clean


def denoise_run(run_dir: str | Path, data: str | Path, *, noise: str | None = None, level: float = 0.3, seed: int = 0,
                split: str = "all", limit: int | None = None) -> Denoised:
    """Denoise ``data`` with a run's model (its reconstruction; Vincent et al. 2008).

    With ``noise`` ("gaussian" (``level`` = std), "masking" or "salt_and_pepper" (``level`` =
    fraction), seeded by ``seed``) the data are taken as clean: noise is added first and the PSNR
    of the noisy and the denoised samples against them is reported. Without, the data are taken
    as noisy already. Data in [0, 1] stay clipped to [0, 1]; PSNR's peak is 1 there, else the
    data's range.
    """
    from .apps import add_noise, denoise, psnr

    est = _load_for_use(run_dir)
    X, _, layout = _samples(est, data, split, limit)
    unit = float(X.min()) >= 0 and float(X.max()) <= 1
    clip = (0.0, 1.0) if unit else None
    noisy = X if noise is None else add_noise(X, noise, level, random_state=seed, clip=clip)
    out = denoise(est, noisy, clip=clip)
    back = [a.reshape(len(a), *layout) for a in (out, noisy, X)]
    if noise is None:
        return Denoised(back[0], back[1], None, None, None)
    return Denoised(*back, psnr(X, noisy, _peak(X)), psnr(X, out, _peak(X)))


@dataclass
class Detection:
    """What :func:`detect_run` returns."""

    scores: np.ndarray  # (n,) normality scores: higher is more normal (AnomalyDetector.score_samples)
    is_outlier: np.ndarray  # (n,) bool: score below the threshold
    threshold: float
    detector: Any  # the fitted AnomalyDetector


def detect_run(run_dir: str | Path, data: str | Path, *, contamination: float = 0.1, threshold: float | None = None,
               scoring: str = "reconstruction", split: str = "all", limit: int | None = None) -> Detection:
    """Anomaly scores of ``data`` under a run's model (:class:`aekit.apps.AnomalyDetector` over the
    fitted estimator, which is used as it is).

    ``scoring``: "reconstruction" (minus the mean squared error per value) or "elbo"
    (variational models). Samples scoring below the threshold are outliers: the
    ``contamination`` quantile of the data's own scores, or ``threshold`` when given.
    """
    from .apps import AnomalyDetector

    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    est = _load_for_use(run_dir)
    X, _, _ = _samples(est, data, split, limit)
    if len(X) < 2:
        raise ValueError(f"{data}: anomaly detection needs at least 2 samples, got {len(X)}")
    det = AnomalyDetector(est, contamination=contamination, scoring=scoring).fit(X)
    scores = det.score_samples(X)
    cut = det.threshold_ if threshold is None else float(threshold)
    return Detection(scores, scores < cut, cut, det)


@dataclass
class Imputed:
    """What :func:`impute_run` returns."""

    filled: np.ndarray  # the data with every NaN filled, shaped as given; observed values unchanged
    missing: np.ndarray  # bool, where the data had NaNs


def impute_run(run_dir: str | Path, data: str | Path, *, n_iter: int = 10, strategy: str = "reconstruct",
               seed: int = 0, split: str = "all", limit: int | None = None) -> Imputed:
    """Fill the NaNs of ``data`` with a run's model (:class:`aekit.apps.AutoencoderImputer` over
    the fitted estimator): start from each feature's observed mean in ``data``, then ``n_iter``
    rounds of "reconstruct, overwrite the missing entries"; ``strategy="sample"`` (vae only)
    runs the Metropolis-within-Gibbs sampler seeded by ``seed``. Only NaNs change."""
    from .apps import AutoencoderImputer

    est = _load_for_use(run_dir)
    X, _, layout = _samples(est, data, split, limit, allow_nan=True)
    imputer = AutoencoderImputer(est, n_iter=n_iter, strategy=strategy, random_state=seed).fit(X)
    return Imputed(imputer.transform(X).reshape(len(X), *layout), np.isnan(X).reshape(len(X), *layout))


def _model_hash(run_dir: Path) -> str:
    """First 12 hex digits of the SHA-256 of the run's model.safetensors."""
    h = hashlib.sha256()
    with open(run_dir / MODEL_NAME, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _codec_tables(run_dir: Path, est):
    """(path, Codec) for every readable codec-tables file of the run's current model."""
    from .apps import Codec

    for path in sorted(run_dir.glob(f"codec-*bit-{_model_hash(run_dir)}.npz")):
        try:
            yield path, Codec.load(path, est)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile):
            continue  # unreadable tables: refitted by run_codec, skipped by decompress_run


def run_codec(run_dir: str | Path, bits: int = 8):
    """The :class:`aekit.apps.Codec` (arithmetic coder, ``bits`` per code dimension) over a run's model.

    The codec's tables (quantiser ranges and symbol frequencies) belong to the model like its
    weights: they are fitted once on the run's training data and kept in the run folder as
    ``codec-<bits>bit-<hash>.npz``, ``<hash>`` naming the model file they were fitted with, so a
    retrained model never meets stale tables. Streams carry a fingerprint of the tables, not
    the tables, so ``run_dir`` plus a compressed file is all :func:`decompress_run` needs.
    """
    from .apps import Codec

    run_dir = Path(run_dir)
    est = _load_for_use(run_dir)
    if _conditional(est):
        raise ValueError(f"{type(est).__name__} cannot be used as a codec: decoding needs labels that a stream does not carry")
    path = run_dir / f"codec-{bits}bit-{_model_hash(run_dir)}.npz"
    for found, codec in _codec_tables(run_dir, est):
        if found == path:
            return codec
    codec = Codec(est, bits=bits).fit(_training_samples(run_dir, est))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        codec.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return codec


@dataclass
class Compressed:
    """What :func:`compress_run` returns."""

    path: Path
    n_samples: int
    n_bytes: int  # of the file, headers and checksum included
    raw_bytes: int  # of the samples as float32
    bits_per_sample: float
    psnr: float  # dB, the decompressed samples against the originals


def compress_run(run_dir: str | Path, data: str | Path, path: str | Path, *, bits: int = 8, split: str = "all",
                 limit: int | None = None) -> Compressed:
    """Compress ``data`` with a run's codec (:func:`run_codec`) into the file ``path``; decompress it
    again to measure the PSNR. Read it back with :func:`decompress_run`."""
    from .apps import psnr

    codec = run_codec(run_dir, bits)
    X, _, _ = _samples(codec.estimator_, data, split, limit)
    blob = codec.encode(X)
    atomic_write_bytes(path, blob)
    quality = psnr(X, codec.decode(blob), _peak(X))
    return Compressed(Path(path), len(X), len(blob), X.nbytes, 8 * len(blob) / len(X), quality)


def decompress_run(run_dir: str | Path, path: str | Path) -> np.ndarray:
    """The samples (n, *sample shape) in a file written by :func:`compress_run` with this run.

    Raises ValueError for a damaged file or one written with another model or codec."""
    run_dir = Path(run_dir)
    blob = Path(path).read_bytes()
    est = _load_for_use(run_dir)
    errors = []
    for _, codec in _codec_tables(run_dir, est):
        try:
            return codec.decode(blob)
        except ValueError as e:  # another bit depth's tables, or a damaged file (every table says so)
            errors.append(str(e))
    if not errors:
        raise FileNotFoundError(f"{run_dir} holds no codec tables for its model (codec-<bits>bit-*.npz); "
                                "files are decompressed with the run they were compressed with")
    raise ValueError(f"cannot decompress {path}: {errors[0]}")


@dataclass
class Neighbours:
    """What :func:`search_run` returns: for each of m queries its k nearest samples of the data."""

    indices: np.ndarray  # (m, k) into the data, nearest first
    distances: np.ndarray  # (m, k)
    labels: np.ndarray | None  # (m, k) the neighbours' labels, when the data has labels
    query_labels: np.ndarray | None  # (m,)


def search_run(run_dir: str | Path, data: str | Path, query: str | Path | None = None, *, index: int | None = None,
               k: int = 10, metric: str = "euclidean", split: str = "all", limit: int | None = None) -> Neighbours:
    """Nearest neighbours in a run's code space (:class:`aekit.apps.LatentIndex` over ``data``).

    The queries are the samples of ``query`` (a dataset name or path, all of it) or, with
    ``index``, the ``index``-th sample of ``data`` itself (which is then its own nearest
    neighbour). ``metric``: "euclidean" or "cosine".
    """
    from .apps import LatentIndex

    if query is None and index is None:
        raise ValueError("search needs a query: a dataset or path, or the index of a sample of the data")
    if query is not None and index is not None:
        raise ValueError("search takes a query dataset or the index of a sample of the data, not both")
    est = _load_for_use(run_dir)
    X, y, _ = _samples(est, data, split, limit)
    if index is not None:
        i = _in_range(X, index, "index")
        Q, qy = X[i : i + 1], None if y is None else y[i : i + 1]
    else:
        Q, qy, _ = _samples(est, query, "all")
    idx = LatentIndex(est, metric=metric).fit(X)
    indices, distances = idx.query(Q, k)
    return Neighbours(indices, distances, None if y is None else y[indices], qy)


def interpolate_run(run_dir: str | Path, data: str | Path, a: int, b: int, *, steps: int = 8, method: str = "linear",
                    split: str = "all", limit: int | None = None) -> np.ndarray:
    """Decoded points (steps, *sample shape) on the path between the codes of samples ``a`` and
    ``b`` of ``data`` (:func:`aekit.apps.interpolate`; ``method`` "linear" or "slerp"). A
    conditional model decodes the whole path with sample ``a``'s label (inferred when the data
    has none)."""
    from .apps import interpolate

    est = _load_for_use(run_dir)
    X, y, _ = _samples(est, data, split, limit)
    a, b = _in_range(X, a, "a"), _in_range(X, b, "b")
    label = None
    if _conditional(est):
        known = y is not None and np.isin(y[a], est.classes_)
        label = y[a] if known else est.predict(X[a : a + 1])[0]
    return interpolate(est, X[a], X[b], steps=steps, method=method, y=label)


def compare_pca_run(run_dir: str | Path, data: str | Path, path: str | Path, *, split: str = "all",
                    limit: int | None = None) -> dict[str, Any]:
    """Plot a run's 2-D code of ``data`` next to PCA's 2-D projection (:func:`aekit.apps.compare_pca`,
    coloured by label) into the PNG ``path``, and measure both reconstructions at the run's code
    size: the model's, and that of a PCA with ``latent_dim`` components fitted on the run's
    training data (as the model was).

    Returns
    -------
    dict with ``path``, ``latent_dim``, ``components`` (PCA's, at most the data's dimension),
    ``n_samples``, ``autoencoder_mse`` and ``pca_mse`` (mean squared error per value, data units).
    """
    from sklearn.decomposition import PCA

    from .apps import compare_pca, reconstruction_error
    from .apps._common import flat

    run_dir = Path(run_dir)
    est = _load_for_use(run_dir)
    X, y, _ = _samples(est, data, split, limit)
    latent_dim = int(est.model_.config.latent_dim)
    X_train = flat(_training_samples(run_dir, est))
    components = min(latent_dim, *X_train.shape)
    pca = PCA(components).fit(X_train)
    result = {
        "path": Path(path), "latent_dim": latent_dim, "components": components, "n_samples": len(X),
        "autoencoder_mse": reconstruction_error(est, X), "pca_mse": reconstruction_error(pca, flat(X)),
    }
    title = f"{type(est).__name__} ({latent_dim}-D code) vs PCA on {Path(str(data)).name}"
    compare_pca(est, X, np.zeros(len(X)) if y is None else y, path, title=title)
    return result


def demo(out: str | Path = "runs/demo", *, epochs: int | None = None, progress: bool = True) -> Run:
    """Train the demo (a 2-D VAE on the embedded digits, seed 0) into ``out`` with metrics and a
    report; an earlier demo there is replaced. ``epochs`` overrides the demo's 100."""
    params = dict(DEMO_PARAMS)
    if epochs is not None:
        params["epochs"] = epochs
    return fit_run(out, "vae", "digits", params, seed=0, overwrite=True, progress=progress, threads=DEMO_THREADS)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for a block (unchanged when None), then restored."""
    import torch

    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
