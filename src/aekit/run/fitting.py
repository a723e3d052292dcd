"""Training into a run folder: :func:`fit_run`, :func:`resume_run` and :func:`demo`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._threads import default_threads, torch_threads
from ..apps._common import make_estimator
from ..distributed import is_main_process
from ..evaluate import evaluate_estimator
from ..runfolder import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    EXPLORER_NAME,
    HISTORY_NAME,
    METRICS_NAME,
    MODEL_NAME,
    REPORT_NAME,
    TENSORBOARD_NAME,
    RunWriter,
    checkpoint_history,
    data_source,
    load_run_data,
    read_run,
    versions,
    write_history,
    write_json,
)

__all__ = ["DEMO_PARAMS", "Run", "demo", "fit_run", "resume_run"]

# The demo: a 2-D VAE on the embedded digits, so the latent space is plotted as it is; both
# dimensions stay active (about 1.2 nats of KL each).
DEMO_PARAMS: dict[str, Any] = {"latent_dim": 2, "hidden_dims": (256, 128), "epochs": 100, "batch_size": 64}


@dataclass
class Run:
    """What :func:`fit_run` returns: the folder, the fitted estimator and its metrics."""

    run_dir: Path
    estimator: Any
    metrics: dict[str, Any]
    tensorboard: Path | None = None  # the TensorBoard log folder, when the run writes one

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT_NAME


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
    data_root: str | Path | None = None,
    tensorboard: bool = False,
) -> Run:
    """Train a model into a run folder, writing it as training goes, then evaluate and report.

    Parameters
    ----------
    run_dir : folder to write (created).
    model : a registered model family (``aekit.model_names()``: "ae", "vae", ...).
    data : a built-in dataset name or a path (``.npy``, ``.npz``, ``.csv``, image folder).
    params : estimator parameters (those of the model's estimator class); ``random_state`` is
        ``seed`` unless given here.
    seed : seeds the model and, for user data, the held-out split.
    limit : use the first ``limit`` samples of the training and of the evaluation data.
    resume : continue from ``run_dir/checkpoint.safetensors`` (same settings; ``epochs`` may grow).
    overwrite : allow writing into a folder that already holds a run.
    progress : show a progress bar with ETA.
    report : build report.html at the end.
    data_root : folder of the MNIST-style IDX files, when they are not where aekit looks.
    threads : CPU threads torch may use during the run (None: aekit's choice, see
        :func:`aekit._threads.default_threads`); restored after.
    tensorboard : also write TensorBoard event files to ``run_dir/tensorboard`` every epoch
        (:class:`aekit.tensorboard.TensorBoardLogger`; needs ``pip install aekit[tensorboard]``).

    Returns
    -------
    Run

    Examples
    --------
    >>> import tempfile
    >>> from aekit.datasets import load_dataset
    >>> from aekit.run import fit_run
    >>> run = fit_run(tempfile.mkdtemp(), "ae", params={"epochs": 2, "latent_dim": 3}, limit=200, report=False)
    >>> sorted(p.name for p in run.run_dir.iterdir())
    ['checkpoint.safetensors', 'config.json', 'history.csv', 'metrics.json', 'model.safetensors']
    >>> run.metrics["eval_split"], run.estimator.transform(load_dataset("digits", "test").X[:2]).shape
    ('test', (2, 3))
    """
    run_dir = Path(run_dir)
    existing = [n for n in (MODEL_NAME, CHECKPOINT_NAME) if (run_dir / n).exists()]
    if resume and not (run_dir / CHECKPOINT_NAME).exists():
        raise FileNotFoundError(f"nothing to resume: {run_dir / CHECKPOINT_NAME} does not exist")
    if existing and not (resume or overwrite):
        raise ValueError(f"{run_dir} already holds a run ({', '.join(existing)}); resume it, choose another "
                         "folder, or overwrite it (CLI: --resume, --out, --overwrite)")
    params = {"random_state": seed, **(params or {})}
    if threads is not None:
        params["threads"] = threads
    est = make_estimator(model, params)
    est.set_params(verbose=progress)
    rd = load_run_data(data, seed=seed, limit=limit, root=data_root)
    if est.capabilities()["conditional"] and rd.y_train is None:
        raise ValueError(f"model {model!r} is conditional and needs labels, but {data} has none")

    config = {
        "model": model,
        "estimator": type(est).__name__,
        "data": data_source(data),
        "train_split": "train",
        "eval_split": rd.eval_split,
        "eval_data": rd.eval_description,
        "seed": seed,
        "limit": limit,
        "data_root": None if data_root is None else str(Path(data_root).expanduser().resolve()),
        "threads": threads,
        "tensorboard": bool(tensorboard),
        "n_train": len(rd.X_train),
        "n_eval": len(rd.X_eval),
        "image_shape": list(rd.image_shape) if rd.image_shape else None,
        "params": {k: v for k, v in est.get_params().items() if k != "verbose"},
        "versions": versions(),
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    prior = checkpoint_history(run_dir) if resume else []
    writer = RunWriter(run_dir, config, prior, stale=() if resume else (MODEL_NAME, METRICS_NAME, REPORT_NAME, EXPLORER_NAME))
    log_dir = run_dir / TENSORBOARD_NAME if tensorboard else None
    fit_kw = {"checkpoint_dir": run_dir, "resume": resume, "callbacks": (writer,), "log_dir": log_dir}
    with torch_threads(threads or default_threads()):  # for evaluation and the report too
        est.fit(rd.X_train, rd.y_train if est.capabilities()["conditional"] else None, **fit_kw)
        est.set_params(verbose=False)
        if not is_main_process():  # under torchrun, rank 0 alone writes the run folder
            return Run(run_dir, est, None, log_dir)
        write_history(run_dir / HISTORY_NAME, est.history_)  # the full history (also after early stopping)
        est.save(run_dir / MODEL_NAME)
        metrics = evaluate_estimator(est, rd.X_eval, rd.y_eval, factors=rd.factors_eval, factor_names=rd.factor_names)
        metrics.update({"eval_split": rd.eval_split, "eval_data": rd.eval_description, "epochs_trained": len(est.history_)})
        metrics["final"] = {k: v for k, v in est.history_[-1].items() if k not in ("epoch", "lr", "time_s")}
        write_json(run_dir / METRICS_NAME, metrics)
        # the training time of every epoch, resumed stretches included (each epoch records its own)
        train_time = sum(r.get("time_s", 0.0) for r in est.history_)
        resumed = (read_run(run_dir)["config"].get("resumed", 0) + 1) if resume else 0
        config.update({"status": "finished", "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "train_time_s": round(train_time, 2), "resumed": resumed})
        write_json(run_dir / CONFIG_NAME, config)
        if report:
            from ..report import build_report

            build_report(run_dir)
    return Run(run_dir, est, metrics, log_dir)


def resume_run(run_dir: str | Path, *, progress: bool = False, report: bool = True, **overrides) -> Run:
    """Continue an interrupted run (or extend a finished one: ``epochs=`` more than before) with
    the settings in its config.json; ``overrides`` are ``fit_run`` arguments or estimator params."""
    config = read_run(run_dir)["config"]
    run_args = {k: config.get(k) for k in ("model", "data", "seed", "limit", "threads", "data_root", "tensorboard")}
    params = dict(config["params"])
    for k, v in overrides.items():
        (run_args if k in run_args else params)[k] = v
    return fit_run(run_dir, params=params, resume=True, progress=progress, report=report, **run_args)


def demo(out: str | Path = "runs/demo", *, epochs: int | None = None, progress: bool = True,
         overwrite: bool = False) -> Run:
    """Train the demo (a 2-D VAE on the embedded digits, seed 0) into ``out`` with metrics and a
    report. Like :func:`fit_run`, it refuses a folder that already holds a run unless
    ``overwrite``. ``epochs`` overrides the demo's 100."""
    params = dict(DEMO_PARAMS)
    if epochs is not None:
        params["epochs"] = epochs
    return fit_run(out, "vae", "digits", params, seed=0, overwrite=overwrite, progress=progress)
