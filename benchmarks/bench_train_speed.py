"""Training throughput of an MLP VAE (D-512-256-32, Bernoulli decoder) on MNIST and digits:
aekit.train.train next to a plain PyTorch loop over the same aekit module, a pure-PyTorch model and
loop (with torch's default AdamW, and with the fused AdamW that aekit.train uses), pythae and PyOD
(each with its own default optimizer), in one process, same data, architecture, epochs, batch size,
learning rate and threads.

Every run starts from the same weights (copied layer by layer; PyOD builds its own). Runs are
repeated and interleaved (the order rotates each repeat) and medians are reported, since this
machine may be shared. Validation -ELBO is computed after every epoch outside the timed region
(the same evaluator for every library) for the time-to-target table. Also measured in the same
run: the matmul ceiling of the machine and the fraction of it training reaches.

    python benchmarks/bench_train_speed.py                       # MNIST (3 epochs) and digits (20)
    benchmarks/.venv-peers/bin/python benchmarks/bench_train_speed.py   # with pythae (see README)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HIDDEN, LATENT, header, linear_flops_per_sample, load, load_average, matmul_ceiling, median, table  # noqa: E402

from aekit._registry import build_model  # noqa: E402
from aekit._utils import seeded  # noqa: E402
from aekit.train import evaluate_loss, train  # noqa: E402


# ----------------------------------------------------------------------------- models


def aekit_vae(shape) -> nn.Module:
    with seeded(0):
        return build_model("vae", input_shape=shape, latent_dim=LATENT, hidden_dims=HIDDEN)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy weights between two VAEs whose encoder and decoder have the same Linear layers."""
    for part in ("encoder", "decoder"):
        a, b = linears(getattr(src, part)), linears(getattr(dst, part))
        assert [l.weight.shape for l in a] == [l.weight.shape for l in b], part
        for x, y in zip(a, b):
            y.weight.copy_(x.weight)
            y.bias.copy_(x.bias)


def _mlp(dims):
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PlainVAE(nn.Module):
    """The same VAE written directly in PyTorch (no aekit code)."""

    def __init__(self, d: int):
        super().__init__()
        self.encoder = _mlp([d, *HIDDEN, 2 * LATENT])
        self.decoder = _mlp([LATENT, *HIDDEN[::-1], d])

    def forward(self, x, eps):
        x = x.flatten(1)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return (recon + kl).mean()


# ----------------------------------------------------------------------------- runners
# Each runner trains for `epochs` from the shared initial weights and returns
# (per-epoch training seconds, per-epoch validation -ELBO, end-to-end seconds).


class Validator:
    """-ELBO (nats per sample) of any of the same-architecture models on the validation set,
    via a fresh aekit VAE holding copied weights; its time is kept out of the training time."""

    def __init__(self, X_val, shape):
        self.X_val, self.probe, self.spent = torch.as_tensor(X_val), aekit_vae(shape), 0.0

    def __call__(self, model) -> float:
        t0 = time.perf_counter()
        copy_weights(model, self.probe)
        loss = evaluate_loss(self.probe, self.X_val, batch_size=2048, seed=0)["loss"]
        self.spent += time.perf_counter() - t0
        return loss


def run_aekit(X, X_val, shape, epochs, batch_size, lr):
    model = aekit_vae(shape)
    val = Validator(X_val, shape)
    losses = []
    t0 = time.perf_counter()
    history = train(
        model, X, epochs=epochs, batch_size=batch_size, lr=lr, seed=0, progress=False, device="cpu",
        callbacks=(lambda epoch, record: losses.append(val(model)),),
    )
    total = time.perf_counter() - t0 - val.spent
    return [r["time_s"] for r in history], losses, total


def _plain_loop(model, step, X, X_val, shape, epochs, batch_size, lr, fused):
    """The hand-written loop: shuffle, slice, forward, backward, AdamW step. `step(xb)` -> loss."""
    val = Validator(X_val, shape)
    Xt = torch.as_tensor(X)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=fused)
    shuffle = torch.Generator().manual_seed(0)
    times, losses = [], []
    t_start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(Xt), generator=shuffle).split(batch_size):
            loss = step(Xt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(val(model))
    return times, losses, time.perf_counter() - t_start - val.spent


def run_plain_same_module(X, X_val, shape, epochs, batch_size, lr):
    """Same module and optimizer as aekit.train (fused AdamW): isolates the loop's own cost."""
    model = aekit_vae(shape)
    noise = torch.Generator().manual_seed(1)
    return _plain_loop(model, lambda xb: model(xb, generator=noise).loss, X, X_val, shape, epochs, batch_size, lr, True)


def _pure(X, X_val, shape, epochs, batch_size, lr, fused):
    model = PlainVAE(math.prod(shape))
    copy_weights(aekit_vae(shape), model)
    noise = torch.Generator().manual_seed(1)

    def step(xb):
        eps = torch.randn(xb.shape[0], LATENT, generator=noise)
        return model(xb, eps)

    return _plain_loop(model, step, X, X_val, shape, epochs, batch_size, lr, fused)


def run_pure_pytorch(X, X_val, shape, epochs, batch_size, lr):
    """What one writes by default: torch.optim.AdamW as constructed with no options."""
    return _pure(X, X_val, shape, epochs, batch_size, lr, fused=None)


def run_pure_pytorch_fused(X, X_val, shape, epochs, batch_size, lr):
    return _pure(X, X_val, shape, epochs, batch_size, lr, fused=True)


def run_pythae(X, X_val, shape, epochs, batch_size, lr):
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    d = math.prod(shape)

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.net = _mlp([d, *HIDDEN, 2 * LATENT])

        def forward(self, x):
            mu, logvar = self.net(x.flatten(1)).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.net = _mlp([LATENT, *HIDDEN[::-1], d])

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, *shape))

    model = VAE(VAEConfig(input_dim=shape, latent_dim=LATENT, reconstruction_loss="bce"), encoder=Encoder(), decoder=Decoder())
    copy_weights(aekit_vae(shape), model)
    val = Validator(X_val, shape)
    times, losses = [], []

    class Timer(TrainingCallback):
        def on_epoch_begin(self, training_config, **kw):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, training_config, **kw):
            times.append(time.perf_counter() - self.t0)
            losses.append(val(model))

    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(
            output_dir=out, num_epochs=epochs, per_device_train_batch_size=batch_size, learning_rate=lr,
            optimizer_cls="AdamW", optimizer_params={"weight_decay": 0.0}, keep_best_on_train=True, no_cuda=True,
        )
        data = BaseDataset(torch.as_tensor(X), torch.zeros(len(X)))
        trainer = BaseTrainer(model=model, train_dataset=data, training_config=config, callbacks=[Timer()])
        t_start = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - t_start - val.spent
    return times, losses, total


def run_pyod(X, X_val, shape, epochs, batch_size, lr):
    from pyod.models.vae import VAE

    flat = np.asarray(X).reshape(len(X), -1)
    det = VAE(
        epoch_num=epochs, batch_size=batch_size, lr=lr, optimizer_params={"weight_decay": 0.0}, preprocessing=False,
        encoder_neuron_list=list(HIDDEN), decoder_neuron_list=list(HIDDEN[::-1]), latent_dim=LATENT,
        output_activation_name="sigmoid", batch_norm=False, dropout_rate=0.0, capacity=1e9, verbose=0,
        device=torch.device("cpu"), random_state=0,
    )
    t0 = time.perf_counter()
    det.fit(flat)  # trains, then scores the training set once (timed below and taken out)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    det.decision_function(flat)
    score = time.perf_counter() - t0
    return [(fit - score) / epochs] * epochs, [], fit - score


RUNNERS = {
    "aekit.train": run_aekit,
    "plain loop, aekit module, fused AdamW": run_plain_same_module,
    "pure PyTorch": run_pure_pytorch,
    "pure PyTorch, fused AdamW": run_pure_pytorch_fused,
    "pythae 0.1.2": run_pythae,
    "PyOD VAE": run_pyod,
}
BASELINE = "pure PyTorch"  # default torch.optim.AdamW


def available(name: str) -> str | None:
    """None when the runner can run here, else why not."""
    module = {"pythae 0.1.2": "pythae", "PyOD VAE": "pyod"}.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as e:  # noqa: BLE001 (any import failure means: skip this peer)
        return f"{module} not importable ({type(e).__name__}); see benchmarks/README.md"
    return None


SLOW = {"PyOD VAE"}  # per-sample data loading: run once per dataset, not `repeats` times


@contextlib.contextmanager
def quiet():
    """Hide the libraries' own progress bars and logs (they still pay for writing them)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def bench(dataset: str, epochs: int, repeats: int, batch_size: int, lr: float, limit: int | None, runners):
    X, X_val = load(dataset, "train", limit), load(dataset, "test")
    shape = tuple(X.shape[1:])
    n = len(X)
    flops = 3 * linear_flops_per_sample(aekit_vae(shape))  # forward + backward ~ 3x forward matmuls
    for name in runners:  # warm-up: lazy imports (the first optimizer costs seconds), allocator
        with quiet():
            RUNNERS[name](X[: 2 * batch_size], X_val[:256], shape, 1, batch_size, lr)
    results = {name: [] for name in runners}
    for rep in range(repeats):
        order = runners[rep % len(runners):] + runners[: rep % len(runners)]
        for name in order:
            if name in SLOW and results[name]:
                continue
            with quiet():
                times, losses, total = RUNNERS[name](X, X_val, shape, epochs, batch_size, lr)
            results[name].append((times, losses, total))
            print(f"  [{dataset} repeat {rep + 1}] {name}: {epochs * n / sum(times):,.0f} samples/s "
                  f"(end to end {total:.1f} s), val -ELBO {losses[-1] if losses else float('nan'):.2f}", flush=True)
    return shape, n, flops, results


def report(dataset, epochs, shape, n, flops, results, ceiling):
    base = median([epochs * n / sum(t) for t, _, _ in results[BASELINE]]) if BASELINE in results else None
    big = max(ceiling.values())
    shaped = ceiling.get((128, 784, 512)) if shape == (1, 28, 28) else None
    rows = []
    for name, runs in results.items():
        sps = median([epochs * n / sum(t) for t, _, _ in runs])
        all_sps = [epochs * n / sum(t) for t, _, _ in runs]
        row = {
            "trainer": name, "samples/s": sps, "epoch s": median([sum(t) / epochs for t, _, _ in runs]),
            "min-max samples/s": f"{min(all_sps):,.0f}-{max(all_sps):,.0f}",
            "end-to-end s": median([tot for _, _, tot in runs]),
            "vs pure PyTorch": sps / base if base else float("nan"),
            "GFLOP/s": sps * flops / 1e9, "of matmul ceiling": sps * flops / 1e9 / big,
        }
        if shaped:
            row["of same-shape GEMM"] = sps * flops / 1e9 / shaped
        rows.append(row)
    cols = ["trainer", "samples/s", "min-max samples/s", "vs pure PyTorch", "epoch s", "end-to-end s", "GFLOP/s", "of matmul ceiling"]
    if shaped:
        cols.append("of same-shape GEMM")
    reps = max(len(v) for v in results.values())
    print(f"\n## {dataset}: {n} training samples, input {shape}, {epochs} epochs, {reps} repeats (medians; {', '.join(SLOW)}: 1 run)")
    print(f"model FLOPs per training sample (3 x forward matmuls): {flops / 1e6:.2f} MFLOP")
    print(table(rows, cols))

    # time to a target validation loss: the worst final loss among the trainers, so all reach it
    with_losses = {k: v for k, v in results.items() if v[0][1]}
    if not with_losses:
        return
    target = max(median([l[-1] for _, l, _ in runs]) for runs in with_losses.values())
    rows = []
    for name, runs in with_losses.items():
        reach = []
        for times, losses, _ in runs:
            hit = next((i for i, l in enumerate(losses) if l <= target), None)
            reach.append((sum(times[: hit + 1]), hit + 1) if hit is not None else (math.inf, math.inf))
        rows.append({
            "trainer": name, "seconds to target": median([r[0] for r in reach]),
            "epochs to target": median([r[1] for r in reach]),
            "final val -ELBO": median([l[-1] for _, l, _ in runs]),
        })
    print(f"\ntime to validation -ELBO <= {target:.2f} nats (the worst final value among the trainers; "
          "checked after each epoch, training time only)")
    print(table(rows, ["trainer", "seconds to target", "epochs to target", "final val -ELBO"]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["mnist", "digits"])
    p.add_argument("--epochs", type=int, nargs="+", default=[3, 20], help="epochs per dataset, in order")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--limit", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--only", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    header("training throughput: aekit vs plain PyTorch vs pythae vs PyOD")
    runners = []
    for name in args.only:
        why = available(name)
        if why:
            print(f"skipping {name}: {why}")
        else:
            runners.append(name)
    ceiling = matmul_ceiling()
    print("matmul ceiling (float32 GEMM GFLOP/s, best of 1 s):", ", ".join(f"{m}x{k}x{n}: {g:.1f}" for (m, k, n), g in ceiling.items()))
    epochs = dict(zip(args.datasets, args.epochs + args.epochs[-1:] * len(args.datasets)))
    reports = []
    for ds in args.datasets:
        reports.append((ds, epochs[ds], *bench(ds, epochs[ds], args.repeats, args.batch_size, args.lr, args.limit, runners)))
        assert torch.get_num_threads() == args.threads, "a library changed the thread count"
    after = matmul_ceiling()
    print("matmul ceiling after the runs:", ", ".join(f"{m}x{k}x{n}: {g:.1f}" for (m, k, n), g in after.items()))
    ceiling = {k: max(v, after[k]) for k, v in ceiling.items()}
    for r in reports:
        report(*r, ceiling)
    print(f"\nload average at end {load_average()}; batch size {args.batch_size}, lr {args.lr}, AdamW without weight decay, "
          f"{args.threads} threads")


if __name__ == "__main__":
    main()
