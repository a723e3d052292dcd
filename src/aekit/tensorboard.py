"""TensorBoard logging for the training loop, as a callback of :func:`aekit.train.train`.

Every epoch it writes, with ``torch.utils.tensorboard``:

- the loss and each of its parts (``loss/total``, ``loss/recon``, ``loss/kl``, ...) and the
  model's batch statistics (``stats/perplexity``, ...), for training and for validation, as two
  runs (``LOG_DIR/train``, ``LOG_DIR/validation``) so that TensorBoard draws both curves of a tag
  on one chart;
- the learning rate (``optim/lr``) and the epoch's time (``time/epoch_s``);
- for variational models, the KL of each latent dimension from the prior (``kl_per_dim/z00``,
  ...) and the number of active units (``latent/active_units``) on a fixed batch of training
  data;
- for image data, the image grids ``reconstructions`` (rows of originals above their
  reconstructions) and, for generative models, ``samples`` (the same prior draws every epoch).

Needs the tensorboard package: ``pip install aekit[tensorboard]``. Estimators attach it with
``fit(X, log_dir=...)``, the command line with ``aekit fit --tensorboard``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch

from . import losses
from ._utils import optional_import
from .evaluate import ACTIVE_UNIT_THRESHOLD

__all__ = ["TensorBoardLogger", "require_tensorboard"]

_NOT_LOGGED = ("epoch", "lr", "time_s")  # record keys that are not losses or statistics


def require_tensorboard():
    """``torch.utils.tensorboard.SummaryWriter``, or an ImportError naming the extra that installs it."""
    return optional_import("torch.utils.tensorboard", "TensorBoard logging", "tensorboard", "tensorboard").SummaryWriter


class TensorBoardLogger:
    """Write TensorBoard event files while a model trains; pass it in ``callbacks``.

    Parameters
    ----------
    log_dir : str or Path
        Folder of the event files: ``log_dir/train`` and ``log_dir/validation`` (the latter only
        when training has a validation set). Point ``tensorboard --logdir`` at it or at a parent.
    model : aekit model
        The model being trained (any registered family); what is logged follows its
        capabilities.
    X : tensor, (n, *model.config.input_shape)
        A fixed batch in the model's layout and units, for KL per dimension (all of it; at most
        ``batch_size`` rows are used) and images (the first ``n_images``).
    y : tensor of int, (n,), optional
        Labels of ``X`` (conditional models).
    n_images : int, default=16
        Images per grid; a multiple of 8 fills the rows.
    to_data : callable, optional
        Maps a model-space batch to data space for the images (the estimator's
        de-standardization); identity by default.
    seed : int, default=0
        Seeds the prior draws of ``samples`` (the same draws every epoch).

    Examples
    --------
    >>> import tempfile, torch
    >>> from aekit import build_model
    >>> from aekit.tensorboard import TensorBoardLogger
    >>> from aekit.train import train
    >>> X = torch.rand(256, 1, 8, 8)
    >>> model = build_model("vae", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=(32,))
    >>> with TensorBoardLogger(tempfile.mkdtemp(), model, X[:64]) as tb:
    ...     history = train(model, X, epochs=2, validation_fraction=0.2, progress=False, callbacks=[tb])
    >>> sorted(tb.scalar_tags)
    ['kl_per_dim/z00', 'kl_per_dim/z01', 'latent/active_units', 'loss/kl', 'loss/recon', 'loss/total', 'optim/lr', 'time/epoch_s']
    """

    batch_size = 256  # rows of the fixed batch that KL per dimension is measured on
    columns = 8  # images per row of a grid

    def __init__(self, log_dir, model, X: torch.Tensor, y: torch.Tensor | None = None, *, n_images: int = 16,
                 to_data: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0):
        SummaryWriter = require_tensorboard()
        if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
            raise ValueError(f"n_images must be a positive integer, got {n_images!r}")
        X = torch.as_tensor(X)
        shape = tuple(model.config.input_shape)
        if X.ndim < 2 or tuple(X.shape[1:]) != shape or len(X) == 0:
            raise ValueError(f"X must be a non-empty batch shaped (n, {', '.join(map(str, shape))}) like the model's "
                             f"input, got {tuple(X.shape)}")
        if model.conditional and y is None:
            raise ValueError("this model is conditional: pass the labels y of X")
        self.log_dir = Path(log_dir)
        self.model = model
        self.X = X[: self.batch_size].detach().cpu()
        self.y = None if y is None else torch.as_tensor(y)[: self.batch_size].detach().cpu()
        self.n_images = n_images
        self.to_data = to_data or (lambda t: t)
        self.seed = seed
        self.scalar_tags: set[str] = set()  # every scalar tag written so far, either run
        self._images = len(shape) == 3 and shape[0] in (1, 3)  # (C, H, W) pictures, not a table
        self._range = self._display_range() if self._images else None
        self._stats: set[str] | None = None  # names of the model's batch statistics (not losses)
        self._writer_class = SummaryWriter
        self._writers: dict[str, Any] = {}

    # -- the callback ------------------------------------------------------------------------
    def __call__(self, epoch: int, record: dict[str, float]) -> None:
        step = int(record.get("epoch", epoch + 1))
        model, was_training = self.model, self.model.training
        model.eval()
        try:
            with torch.no_grad():
                self._log_record(step, record)
                if model.variational:
                    self._log_kl(step)
                if self._images:
                    self._log_images(step)
        finally:
            model.train(was_training)
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what is written ----------------------------------------------------------------------
    def _writer(self, run: str):
        if run not in self._writers:
            self._writers[run] = self._writer_class(log_dir=str(self.log_dir / run))
        return self._writers[run]

    def _scalar(self, run: str, tag: str, value: float, step: int) -> None:
        self._writer(run).add_scalar(tag, float(value), step)
        self.scalar_tags.add(tag)

    def _tag(self, name: str) -> str:
        if name == "loss":
            return "loss/total"
        return f"stats/{name}" if name in self._stat_names() else f"loss/{name}"

    def _stat_names(self) -> set[str]:
        """The model's batch statistics (e.g. codebook perplexity), from one forward pass."""
        if self._stats is None:
            x, y = self._batch(self.X[:2], self.y)
            gen = torch.Generator(device=x.device).manual_seed(self.seed)
            self._stats = set(self.model(x, y, generator=gen).stats)
        return self._stats

    def _log_record(self, step: int, record: dict[str, float]) -> None:
        for key, value in record.items():
            if key in _NOT_LOGGED or not isinstance(value, (int, float)):
                continue
            run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._scalar(run, self._tag(name), value, step)
        if "lr" in record:
            self._scalar("train", "optim/lr", record["lr"], step)
        if "time_s" in record:
            self._scalar("train", "time/epoch_s", record["time_s"], step)

    def _log_kl(self, step: int) -> None:
        """KL(q(z_k|x) || N(0, 1)) of each code dimension (the top layer's for hierarchical
        models), averaged over the fixed batch, and the active units (Burda et al. 2016)."""
        x, y = self._batch(self.X, self.y)
        mu, logvar = self.model.posterior(x, y)  # (n, K) each
        kl = losses.kl_normal(mu, logvar, per_dim=True).mean(dim=0)  # (K,)
        width = max(2, len(str(len(kl) - 1)))
        for k, v in enumerate(kl.tolist()):
            self._scalar("train", f"kl_per_dim/z{k:0{width}d}", v, step)
        if len(mu) > 1:
            active = int((mu.var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
            self._scalar("train", "latent/active_units", active, step)

    def _log_images(self, step: int) -> None:
        writer = self._writer("train")
        x, y = self._batch(self.X[: self.n_images], self.y)
        recon = self.model.reconstruct(x, y)  # (n, C, H, W)
        originals, recon = self._picture(x), self._picture(recon)
        rows = []
        for start in range(0, len(x), self.columns):
            rows += [originals[start : start + self.columns], recon[start : start + self.columns]]
        writer.add_image("reconstructions", _grid(rows, self.columns), step)
        if self.model.generative:
            device = x.device
            gen = torch.Generator(device=device).manual_seed(self.seed)
            labels = None
            if self.model.conditional:  # one class after another
                labels = torch.arange(self.n_images, device=device) % self.model.config.n_classes
            samples = self._picture(self.model.sample(self.n_images, labels, generator=gen))
            rows = [samples[s : s + self.columns] for s in range(0, len(samples), self.columns)]
            writer.add_image("samples", _grid(rows, self.columns), step)

    # -- helpers ------------------------------------------------------------------------------
    def _batch(self, x: torch.Tensor, y: torch.Tensor | None):
        device = next(self.model.parameters()).device
        return x.to(device), None if y is None else y[: len(x)].to(device)

    def _display_range(self) -> tuple[float, float]:
        """Values shown black and white: [0, 1] for data in [0, 1], else the fixed batch's range
        (fixed for the run, so grids of different epochs compare)."""
        data = self.to_data(self.X)
        lo, hi = float(data.min()), float(data.max())
        if lo >= 0 and hi <= 1:
            return 0.0, 1.0
        return lo, hi if hi > lo else lo + 1.0

    def _picture(self, t: torch.Tensor) -> torch.Tensor:
        """Model-space images (n, C, H, W) -> display values in [0, 1], enlarged (nearest) to
        at least 32 pixels a side so small images stay visible."""
        lo, hi = self._range
        t = ((self.to_data(t).float() - lo) / (hi - lo)).clamp(0.0, 1.0).cpu()
        factor = max(1, math.ceil(32 / min(t.shape[-2:])))
        return t.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def _grid(rows: list[torch.Tensor], columns: int, pad: int = 2) -> torch.Tensor:
    """Rows of images, each (<= columns, C, H, W) in [0, 1] -> one (C, H', W') picture on white."""
    c, h, w = rows[0].shape[1:]
    canvas = torch.ones(c, pad + len(rows) * (h + pad), pad + columns * (w + pad))
    for r, row in enumerate(rows):
        for i, img in enumerate(row):
            top, left = pad + r * (h + pad), pad + i * (w + pad)
            canvas[:, top : top + h, left : left + w] = img
    return canvas
