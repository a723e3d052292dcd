"""Test NLL (importance-weighted, nats) on binarized MNIST at a stated, small training budget, for
aekit's VAE and HVAE, next to published figures. Optionally pythae's VAE with the same
architecture and budget, evaluated by the same estimator.

Training data are binarized dynamically: every batch is a fresh Bernoulli draw of the grey-level
images (train's ``batch_transform``). The test set is ``binarized-mnist`` (one seeded draw of the
official test images). NLL = -log (1/K sum_k p(x, z_k) / q(z_k | x)) (Burda et al. 2016) via
``aekit.evaluate``, on the first ``--test-limit`` test images.

    python benchmarks/bench_nll.py                          # 10 epochs each, K = 1000 on 2000 test images
    python benchmarks/bench_nll.py --epochs 100 --k 5000 --test-limit 10000   # closer to the papers
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, load, load_average, table  # noqa: E402

from aekit._registry import build_model  # noqa: E402
from aekit._utils import seeded  # noqa: E402
from aekit.evaluate import evaluate  # noqa: E402
from aekit.train import train  # noqa: E402

# Burda et al. 2016 architectures: 784-200-200-50 (tanh) for one stochastic layer; for two,
# z1 = 100 and z2 = 50. aekit's HVAE is a ladder VAE (top-down inference), not Burda's bottom-up one.
CONFIGS = {
    "vae": dict(latent_dim=50, hidden_dims=(200, 200), activation="tanh"),
    "hvae": dict(latent_dim=50, lower_latent_dims=(100,), hidden_dims=(200, 200), activation="tanh"),
}
CONFIGS["hvae-no-free-bits"] = {**CONFIGS["hvae"], "free_bits": 0.0}  # HVAE's default is 0.25 nats per dim

PUBLISHED = [
    ("VAE, 1 stochastic layer (784-200-200-50)", "86.76", "K = 5000", "3,280 epochs, dynamic binarisation",
     "Burda, Grosse & Salakhutdinov 2016, IWAE paper, Table 1 (VAE, k = 1)"),
    ("VAE, 2 stochastic layers (z 100, 50)", "85.33", "K = 5000", "3,280 epochs, dynamic binarisation",
     "Burda et al. 2016, Table 1 (VAE, k = 1)"),
    ("VAE (pythae reproduction)", "89.78", "K = 200", "pythae's published run, binary MNIST",
     "huggingface.co/clementchadebec/reproduced_vae (reference 89.9, Rezende & Mohamed 2015)"),
]


def binarize_batch(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dynamic binarisation: a fresh Bernoulli(pixel) draw for every batch."""
    return torch.bernoulli(xb, generator=generator)


def train_aekit(name, X, epochs, batch_size, lr):
    with seeded(0):
        model = build_model(name.split("-")[0], input_shape=X.shape[1:], **CONFIGS[name])
    t0 = time.perf_counter()
    train(model, X, epochs=epochs, batch_size=batch_size, lr=lr, seed=0, progress=False, batch_transform=binarize_batch)
    return model, time.perf_counter() - t0


def train_pythae(X, epochs, batch_size, lr):
    """pythae's VAE with the same networks, dynamic binarisation in its dataset; weights copied
    into an aekit VAE afterwards so that the same estimator evaluates it."""
    from pythae.data.datasets import DatasetOutput
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    with seeded(0):
        probe = build_model("vae", input_shape=X.shape[1:], **CONFIGS["vae"])
    shape = tuple(X.shape[1:])

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.net = probe.encoder

        def forward(self, x):
            mu, logvar = self.net(x).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.net = probe.decoder

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    class Dynamic(torch.utils.data.Dataset):
        def __init__(self, X):
            self.X = torch.as_tensor(X)

        def __len__(self):
            return len(self.X)

        def __getitem__(self, i):
            return DatasetOutput(data=torch.bernoulli(self.X[i]))

    model = VAE(VAEConfig(input_dim=shape, latent_dim=CONFIGS["vae"]["latent_dim"], reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as null, \
            contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        logging.disable(logging.CRITICAL)
        config = BaseTrainerConfig(output_dir=out, num_epochs=epochs, per_device_train_batch_size=batch_size,
                                   learning_rate=lr, optimizer_cls="AdamW", optimizer_params={"weight_decay": 0.0},
                                   keep_best_on_train=True, no_cuda=True)
        t0 = time.perf_counter()
        BaseTrainer(model=model, train_dataset=Dynamic(X), training_config=config).train()
        elapsed = time.perf_counter() - t0
        logging.disable(logging.NOTSET)
    return probe, elapsed  # probe shares the trained encoder and decoder modules


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["vae", "hvae"], choices=["vae", "hvae", "hvae-no-free-bits", "pythae-vae"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--k", type=int, default=1000, help="importance samples per test image")
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images only (smoke runs)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    header("test NLL on binarized MNIST at a fixed budget")
    X = load("mnist", "train", args.train_limit)
    X_test = load("binarized-mnist", "test", args.test_limit)
    rows = []
    for name in args.models:
        model, train_s = train_pythae(X, args.epochs, args.batch_size, args.lr) if name == "pythae-vae" else \
            train_aekit(name, X, args.epochs, args.batch_size, args.lr)
        t0 = time.perf_counter()
        r = evaluate(model, X_test, nll_samples=args.k, batch_size=8192, seed=0)
        eval_s = time.perf_counter() - t0
        label = {"vae": "aekit VAE (784-200-200-50, tanh)", "hvae": "aekit HVAE (ladder, z 100 + 50, tanh, free bits 0.25)",
                 "hvae-no-free-bits": "aekit HVAE (same, free bits 0)", "pythae-vae": "pythae 0.1.2 VAE (same networks)"}[name]
        rows.append({
            "model": label, "test NLL (nats)": r["nll"], "test -ELBO": -r["elbo"], "K": args.k,
            "active units": f"{r['active_units']}/{r['latent_dim']}",
            "train min": train_s / 60, "NLL eval min": eval_s / 60,
        })
        print(f"  {label}: NLL {r['nll']:.2f}, -ELBO {-r['elbo']:.2f} (train {train_s:.0f} s, eval {eval_s:.0f} s)", flush=True)
    print(f"\n## measured: {args.epochs} epochs each on {len(X):,} training images (batch {args.batch_size}, AdamW lr {args.lr}), "
          f"NLL with K = {args.k} on the first {len(X_test)} test images, {args.threads} threads")
    print(table(rows, ["model", "test NLL (nats)", "test -ELBO", "K", "active units", "train min", "NLL eval min"]))
    print("\n## published (trained far longer; lower is better)")
    print(table([dict(zip(["model", "test NLL (nats)", "K", "budget", "source"], r)) for r in PUBLISHED],
                ["model", "test NLL (nats)", "K", "budget", "source"]))
    print(f"\nload average at end {load_average()}")


if __name__ == "__main__":
    main()
