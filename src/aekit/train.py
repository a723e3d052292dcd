"""The one training loop (any registered model), written as a function.

Batches are index slices of tensors in memory (no per-sample DataLoader). Randomness comes from
two generators seeded by ``seed``: one shuffles, one drives the model's noise (reparameterisation,
corruption). Model-specific needs go through the model's hooks (``on_train_start``, ``param_groups``
for the optimizer, ``on_train_progress``, ``on_train_end``), never through branches on model names.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ._threads import default_threads, torch_threads
from ._utils import as_source, resolve_device, take_labels, take_rows
from .checkpoint import load_train_state, save_train_state
from .distributed import replicas_from_environment

__all__ = ["train", "NonFiniteLossError", "TrainingInterrupted", "evaluate_loss", "CHECKPOINT_NAME", "LR_SCHEDULES"]

CHECKPOINT_NAME = "checkpoint.safetensors"
LR_SCHEDULES = ("constant", "cosine")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss (or gradient)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training with a checkpoint folder: says where the resumable state is."""


def _batch_order(n: int, batch_size: int, generator: torch.Generator, memmapped: bool, rows=None) -> list[torch.Tensor]:
    """Shuffled batches of row indices (of ``rows`` when given, else of 0..n-1)."""
    perm = torch.randperm(n, generator=generator)
    if rows is not None:
        perm = rows[perm]
    batches = list(perm.split(batch_size))
    if memmapped:  # read sorted rows from disk (the batch's content is the same set)
        batches = [b.sort().values for b in batches]
    return batches


def _part_means(out) -> dict[str, float]:
    d = {name: float(v.detach().mean()) for name, v in out.parts.items()}
    d.update({name: float(v.detach()) for name, v in out.stats.items()})
    return d


def _nonfinite_message(out, epoch: int, step: int, params) -> str:
    bad = [n for n, v in out.parts.items() if not torch.isfinite(v).all()]
    where = f"part(s) {', '.join(repr(b) for b in bad)}" if bad else "the weighted total"
    weights = "" if _all_finite(params) else " The weights were already non-finite: the previous step's gradient was NaN or infinite."
    return (
        f"loss became non-finite at epoch {epoch + 1}, step {step + 1}: {where} is NaN or infinite.{weights} "
        "Try a lower lr, grad_clip, or check the data for NaN/inf and the loss against the data range "
        "(BCE/Bernoulli needs values in [0, 1]); on_nonfinite='rollback' retries with a lower lr."
    )


def _all_finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


@torch.no_grad()
def evaluate_loss(model, X, y=None, *, batch_size: int = 1024, seed: int = 0, device=None) -> dict[str, float]:
    """Mean loss and parts of ``model`` on X in eval mode (sample-weighted over batches)."""
    device = device or next(model.parameters()).device
    src = as_source(X)
    gen = torch.Generator(device=device).manual_seed(seed)
    was = model.training
    model.eval()
    totals: dict[str, float] = {}
    n = len(src)
    for idx in torch.arange(n).split(batch_size):
        out = model(take_rows(src, idx, device), take_labels(y, idx, device), generator=gen)
        for k, v in {"loss": float(out.loss), **_part_means(out)}.items():
            totals[k] = totals.get(k, 0.0) + v * len(idx)
    model.train(was)
    return {k: v / n for k, v in totals.items()}


def _split_validation(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {fraction!r}")
    n_val = max(1, int(round(n * fraction)))
    if n - n_val < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training samples out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def train(
    model: torch.nn.Module,
    X,
    y=None,
    *,
    X_val=None,
    y_val=None,
    validation_fraction: float = 0.0,
    epochs: int = 50,
    batch_size: int = 128,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    weight_decay: float = 0.0,
    early_stopping: bool = False,
    patience: int = 10,
    grad_clip: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    batch_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_nonfinite: str = "raise",
    callbacks: tuple[Callable[[int, dict[str, Any]], None], ...] = (),
    threads: int | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on X (and labels y for conditional models) with AdamW.

    Parameters
    ----------
    X : array or tensor, (n, *model.config.input_shape); a ``np.memmap`` is read batch by batch.
    X_val, validation_fraction : a validation set, or the fraction of X held out as one.
    early_stopping : stop when the validation loss has not improved for ``patience`` epochs and
        restore the best weights, the starting ones included (a validation fraction of 0.1 is
        used if none was given).
    lr_schedule : ``"constant"``, or ``"cosine"``: the learning rate follows
        lr * (1 + cos(pi * t / epochs)) / 2 with t the epochs done, step by step, down to 0 at the end
        (Loshchilov & Hutter 2017, without restarts).
    grad_clip : max global gradient norm, or None.
    seed : seeds shuffling, model noise and the validation split; same seed, same result.
    checkpoint_dir : write ``checkpoint.safetensors`` there after every epoch (atomically).
    resume : continue from the checkpoint in ``checkpoint_dir`` (same settings) exactly where it stopped.
    batch_transform : f(batch, generator) applied to each training batch (e.g. dynamic binarisation).
    on_nonfinite : ``"raise"`` (default) stops with NonFiniteLossError naming the part; ``"rollback"``
        restores the state at the start of the epoch, halves the learning rate and retries (5 times).
    callbacks : f(epoch, record) called after every epoch.
    threads : CPU threads torch uses while training (restored afterwards); None lets aekit choose
        (:func:`aekit._threads.default_threads`: 1 for small models, else the cores not already
        busy; ``AEKIT_THREADS`` overrides). Pass ``torch.get_num_threads()`` to keep torch's setting.

    Under ``torchrun`` (or an initialised ``torch.distributed``) the model trains data-parallel:
    each rank takes a slice of every global batch of ``batch_size`` and only rank 0 shows
    progress, calls back and writes checkpoints; see ``aekit.distributed`` and docs/distributed.md.

    Returns
    -------
    history : list of per-epoch dicts: ``loss`` and every named part for training, ``val_*`` for
        validation, ``lr`` and ``time_s``.
    """
    if on_nonfinite not in ("raise", "rollback"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'rollback', got {on_nonfinite!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.safetensors)")
    if threads is None:
        threads = default_threads(sum(p.numel() for p in model.parameters()))
    with torch_threads(threads):
        return _train(
            model, X, y, X_val, y_val, validation_fraction, epochs, batch_size, lr, lr_schedule, weight_decay,
            early_stopping, patience, grad_clip, seed, device, progress, checkpoint_dir, resume, batch_transform,
            on_nonfinite, callbacks,
        )


def _train(model, X, y, X_val, y_val, validation_fraction, epochs, batch_size, lr, lr_schedule, weight_decay, early_stopping,
           patience, grad_clip, seed, device, progress, checkpoint_dir, resume, batch_transform, on_nonfinite, callbacks):
    replicas = replicas_from_environment(resolve_device(device))
    dev = replicas.device
    model.to(dev)
    src, ysrc = as_source(X), (None if y is None else torch.as_tensor(np.asarray(y)))
    if early_stopping and X_val is None and not validation_fraction:
        validation_fraction = 0.1
    memmapped = isinstance(src, np.ndarray)
    rows = None  # training rows of src when they are not all of it (a memory-mapped src stays whole on disk)
    if X_val is None and validation_fraction:
        tr_idx, va_idx = _split_validation(len(src), validation_fraction, seed)
        X_val, y_val = take_rows(src, va_idx, torch.device("cpu")), take_labels(ysrc, va_idx, torch.device("cpu"))
        if memmapped:
            rows = tr_idx
        else:
            src, ysrc = take_rows(src, tr_idx, torch.device("cpu")), take_labels(ysrc, tr_idx, torch.device("cpu"))
    if not memmapped and dev.type == "cuda":
        src = src.to(dev)  # whole data set on the GPU: batches are then pure index slices
        ysrc = ysrc.to(dev) if ysrc is not None else None
    n = len(src) if rows is None else len(rows)
    if n < 1:
        raise ValueError("no training samples")

    model.on_train_start(*_start_sample(src, ysrc, rows, dev))  # data-dependent init (a resumed state replaces it)
    optimizer = _adamw(model, lr, weight_decay)
    shuffle_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=dev).manual_seed(seed + 1 + replicas.noise_seed_offset)
    history: list[dict[str, float]] = []
    start_epoch, best_val, bad_epochs, best_state = 0, math.inf, 0, None
    lr_scale = 1.0  # halved by each rollback
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        extra, t = load_train_state(ckpt, model, optimizer)
        start_epoch, history = extra["epoch"], extra["history"]
        best_val, bad_epochs = extra["best_val"], extra["bad_epochs"]
        shuffle_gen.set_state(t["shuffle_rng"])
        noise_key = "noise_rng" if replicas.is_main else f"noise_rng.{replicas.rank}"
        if noise_key in t:  # else resumed on more processes than saved: this rank keeps its fresh seed
            noise_gen.set_state(t[noise_key].to(noise_gen.get_state().device))
        if extra["has_best"]:
            best_state = {k[5:]: v.to(dev) for k, v in t.items() if k.startswith("best.")}
        lr_scale = extra.get("lr_scale", 1.0)  # with any rollback halvings

    if early_stopping and X_val is not None and start_epoch == 0:
        # the starting weights are a candidate too: training never returns worse ones (on validation)
        best_val = replicas.from_main(evaluate_loss(model, X_val, y_val, seed=seed + 2, device=dev))["loss"]
        best_state = copy.deepcopy(model.state_dict())

    schedule = _LRSchedule(lr_schedule, optimizer, epochs, lr_scale)
    net = replicas.wrap(model)  # forward goes through DDP when distributed; hooks stay on model
    n_batches = math.ceil(n / batch_size)
    bar = _Progress(epochs, start_epoch, enabled=progress and replicas.is_main)
    try:
        for epoch in range(start_epoch, epochs):
            if early_stopping and bad_epochs >= patience:
                break
            t0 = time.perf_counter()
            snapshot = _snapshot(model, optimizer, shuffle_gen, noise_gen) if on_nonfinite == "rollback" else None
            for attempt in range(6):
                try:
                    record = _run_epoch(
                        model, net, replicas, optimizer, src, ysrc, rows, n, epoch, n_batches, batch_size, shuffle_gen,
                        noise_gen, dev, memmapped, grad_clip, batch_transform, schedule,
                    )
                    break
                except NonFiniteLossError:
                    if snapshot is None or attempt == 5:
                        raise
                    _restore(snapshot, model, optimizer, shuffle_gen, noise_gen)
                    schedule.scale *= 0.5
            record = {"epoch": epoch + 1, **record, "lr": optimizer.param_groups[0]["lr"]}
            if X_val is not None:
                val = replicas.from_main(evaluate_loss(model, X_val, y_val, seed=seed + 2, device=dev))
                record.update({f"val_{k}": v for k, v in val.items()})
                if val["loss"] < best_val:
                    best_val, bad_epochs = val["loss"], 0
                    if early_stopping:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
            record["time_s"] = time.perf_counter() - t0
            history.append(record)
            if ckpt is not None:
                noise_states = replicas.gather(noise_gen.get_state().cpu())
                if replicas.is_main:
                    _save(ckpt, model, optimizer, epoch + 1, history, best_val, bad_epochs, best_state, shuffle_gen, noise_states,
                          schedule.scale)
            if replicas.is_main:
                for cb in callbacks:
                    cb(epoch, record)
            bar.update(record)
    except KeyboardInterrupt:
        # Everything up to the last finished epoch is already in the checkpoint (written atomically
        # after every epoch), so an interrupted run resumes from there with resume=True.
        if ckpt is not None and ckpt.exists():
            raise TrainingInterrupted(
                f"training interrupted; the state after epoch {len(history)} is saved in {ckpt}: "
                "resume with resume=True (CLI: --resume)"
            ) from None
        raise
    finally:
        bar.close()
    if early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    replicas.sync_from_main(model)
    model.eval()
    model.on_train_end(src, ysrc)  # a memory-mapped src is passed as it is, to be read in batches
    return history


# Rows the on_train_start hook sees when the data are memory-mapped (in memory: all of them).
_START_SAMPLE_ROWS = 65536


def _start_sample(src, ysrc, rows, dev):
    """(X, y) for ``model.on_train_start``: the training rows, or for a memory-mapped source an
    evenly spaced sample of at most 65,536 of them."""
    if not isinstance(src, np.ndarray) and rows is None:
        return src, ysrc
    idx = rows if rows is not None else torch.arange(len(src))
    if len(idx) > _START_SAMPLE_ROWS:
        idx = idx[torch.linspace(0, len(idx) - 1, _START_SAMPLE_ROWS).long()]
    return take_rows(src, idx, dev), take_labels(ysrc, idx, dev)


def _run_epoch(model, net, replicas, optimizer, src, ysrc, rows, n, epoch, n_batches, batch_size, shuffle_gen, noise_gen, dev, memmapped, grad_clip, batch_transform, schedule):
    model.train()
    sums: dict[str, float] = {}
    seen = 0
    params = [p for p in model.parameters() if p.requires_grad]
    for step, batch in enumerate(_batch_order(n, batch_size, shuffle_gen, memmapped, rows)):
        model.on_train_progress(epoch + step / n_batches)
        schedule.apply(optimizer, epoch + step / n_batches)
        idx, b, weight = replicas.shard(batch)  # this rank's slice of the global batch
        xb, yb = take_rows(src, idx, dev), take_labels(ysrc, idx, dev)
        if batch_transform is not None:
            xb = batch_transform(xb, noise_gen)
        out = net(xb, yb, generator=noise_gen)
        if replicas.any(not torch.isfinite(out.loss)):
            raise NonFiniteLossError(_nonfinite_message(out, epoch, step, params))
        optimizer.zero_grad(set_to_none=True)
        replicas.scale(out.loss, weight).backward()
        if grad_clip and not torch.isfinite(torch.nn.utils.clip_grad_norm_(params, grad_clip)):
            raise NonFiniteLossError(_nonfinite_gradient_message(epoch, f"step {step + 1}"))
        optimizer.step()
        replicas.sync_frozen()
        seen += b
        for k, v in {"loss": float(out.loss.detach()), **_part_means(out)}.items():
            sums[k] = sums.get(k, 0.0) + v * b
    # Without grad_clip the gradients are not read every step (a norm pass cost ~4% of an MNIST
    # step): a NaN/inf gradient makes the weights non-finite, which the next step's loss check
    # reports (naming it) and this check catches for the epoch's last step.
    if not _all_finite(params):
        raise NonFiniteLossError(_nonfinite_gradient_message(epoch, "its last step"))
    model.on_train_progress(epoch + 1.0)
    return replicas.mean(sums, seen)


class _LRSchedule:
    """The learning rate at a point of training (in epochs), set on every step: each parameter
    group's own starting rate (``initial_lr``, kept in the optimizer's state, so a discriminator's
    group keeps its own) times the schedule's factor times ``scale``, what on_nonfinite='rollback'
    halves."""

    def __init__(self, kind: str, optimizer, epochs: int, scale: float = 1.0):
        self.kind, self.epochs, self.scale = kind, epochs, scale
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])

    def apply(self, optimizer, epochs_done: float) -> None:
        factor = self.scale
        if self.kind == "cosine":
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, epochs_done / self.epochs)))
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * factor


def _nonfinite_gradient_message(epoch: int, where: str) -> str:
    return (
        f"gradient became non-finite at epoch {epoch + 1}, {where} (the loss was finite). "
        "Try a lower lr or grad_clip; on_nonfinite='rollback' retries with a lower lr."
    )


def _adamw(model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the model's parameter groups (``model.param_groups()``: one group, or a group of
    its own for a second player such as a discriminator, with its own settings), with the fused
    kernel where torch has one for the parameters' device (CPU since torch 2.4, CUDA): same
    update, one pass over the parameters instead of ~10 per-tensor ops each; on CPU it cut an
    MNIST MLP step by ~30% (benchmarks/RESULTS.md). Otherwise the default AdamW."""
    groups = model.param_groups()
    listed = [id(p) for g in groups for p in g["params"]]
    if len(listed) != len(set(listed)) or set(listed) != {id(p) for p in model.parameters()}:
        raise ValueError(f"{type(model).__name__}.param_groups() must list every parameter of the model exactly once")
    try:
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


def _snapshot(model, optimizer, *gens):
    return copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()), [g.get_state() for g in gens]


def _restore(snapshot, model, optimizer, *gens):
    m, o, states = snapshot
    model.load_state_dict(m)
    optimizer.load_state_dict(o)
    for g, s in zip(gens, states):
        g.set_state(s)


def _save(path, model, optimizer, epoch, history, best_val, bad_epochs, best_state, shuffle_gen, noise_states, lr_scale):
    tensors = {"shuffle_rng": shuffle_gen.get_state(), "noise_rng": noise_states[0]}
    tensors.update({f"noise_rng.{r}": s for r, s in enumerate(noise_states) if r > 0})  # other ranks
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    extra = {"epoch": epoch, "history": history, "best_val": best_val, "bad_epochs": bad_epochs, "has_best": best_state is not None,
             "lr_scale": lr_scale}
    save_train_state(path, model, optimizer, extra, tensors)


class _Progress:
    """Training progress, updated once per epoch; silent when disabled.

    On a terminal: a rich bar (epoch count, bar, ETA, the loss and validation loss), sized to fit
    an 80-column window. Otherwise (a log file, a pipe): one plain line per epoch, or every
    ``ceil(epochs / 20)`` epochs and the last, so a 100-epoch log has about 20 lines."""

    MAX_PLAIN_LINES = 20

    def __init__(self, epochs: int, start: int, enabled: bool, console=None):
        import sys

        self.bar = None
        self.enabled, self.epochs, self.done = enabled, epochs, start
        self.every = max(1, math.ceil(epochs / self.MAX_PLAIN_LINES))
        self.stream = sys.stderr
        if not enabled:
            return
        if console is None and not self.stream.isatty():
            return  # plain lines
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("epoch {task.completed}/{task.total}"), BarColumn(bar_width=20), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), transient=False, console=console or Console(stderr=True),
        )
        self.task = self.bar.add_task("train", total=epochs, completed=start, info="")
        self.bar.start()

    def update(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.done += 1
        if self.bar is not None:
            info = " ".join(f"{k}={record[k]:.4g}" for k in ("loss", "val_loss") if k in record)
            self.bar.update(self.task, advance=1, info=info)
            return
        if self.done % self.every and self.done != self.epochs:
            return
        parts = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "lr", "time_s"))
        per_epoch = record.get("time_s", 0.0)
        print(f"epoch {self.done}/{self.epochs}  {parts}  ({per_epoch:.2f} s/epoch, "
              f"{_duration((self.epochs - self.done) * per_epoch)} left)", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
