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
- ``report.html``: the page built by :func:`aekit.report.build_report`.

Everything the ``aekit`` command line does with run folders is a function here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._registry import get_model_class
from ._utils import atomic_write_text
from .apps._common import estimator_names, make_estimator
from .checkpoint import read_safetensors
from .datasets import available_datasets, load_dataset
from .train import CHECKPOINT_NAME

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEMO_PARAMS",
    "KL_ACTIVE_THRESHOLD",
    "Run",
    "RunData",
    "compute_metrics",
    "demo",
    "encode_run",
    "fit_run",
    "generate_run",
    "load_run_data",
    "read_run",
    "resume_run",
]

CONFIG_NAME, HISTORY_NAME, MODEL_NAME = "config.json", "history.csv", "model.safetensors"
METRICS_NAME, REPORT_NAME = "metrics.json", "report.html"
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
    with _torch_threads(threads):
        est.fit(rd.X_train, rd.y_train if _conditional(est) else None, **fit_kw)
        train_time = time.perf_counter() - t0
        est.set_params(verbose=False)
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


def compute_metrics(estimator, X, y=None) -> dict[str, Any]:
    """Evaluation of a fitted estimator on X with :func:`aekit.evaluate.evaluate`, plus the latent
    dimensions whose KL is below ``KL_ACTIVE_THRESHOLD`` (``inactive_dims``) for VAEs."""
    from .evaluate import evaluate

    model = estimator.model_
    labels = None
    if model.conditional:
        if y is None:
            raise ValueError("a conditional model is evaluated with labels, but the evaluation data has none")
        known = np.isin(y, estimator.classes_)
        X, labels = X[known], np.searchsorted(estimator.classes_, np.asarray(y)[known])
    result = evaluate(model, _model_input(estimator, X), labels, seed=int(estimator.seed_))
    result["units"] = "standardized" if getattr(estimator, "mean_", None) is not None else "data"
    if "kl_per_dim" in result:
        kl = np.asarray(result["kl_per_dim"])
        result["kl_total"] = float(kl.sum())
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


def encode_run(run_dir: str | Path, data: str | Path, *, split: str = "all", limit: int | None = None) -> np.ndarray:
    """Codes (n, latent_dim) of ``data`` (a dataset name or path) under a run's fitted model.
    A conditional model uses the data's labels when it has them, else infers each label."""
    est = _load_for_use(run_dir)
    ds = load_dataset(str(data), split)
    X = np.asarray(ds.X[:limit], dtype=np.float32)
    if X[0].size != est.n_features_in_:
        raise ValueError(f"{data}: samples have {X[0].size} values, but the model was trained on {est.n_features_in_}")
    X = X.reshape(len(X), *est.input_shape_)
    y = None if ds.y is None else ds.y[:limit]
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


def demo(out: str | Path = "runs/demo", *, epochs: int | None = None, progress: bool = True) -> Run:
    """Train the demo (a 2-D VAE on the embedded digits, seed 0) into ``out`` with metrics and a
    report; an earlier demo there is replaced. ``epochs`` overrides the demo's 100."""
    params = dict(DEMO_PARAMS)
    if epochs is not None:
        params["epochs"] = epochs
    return fit_run(out, "vae", "digits", params, seed=0, overwrite=True, progress=progress, threads=DEMO_THREADS)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
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
