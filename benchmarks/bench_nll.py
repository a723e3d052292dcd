"""Test NLL (importance-weighted, nats) on binarized MNIST, one model per command, next to the
published figures: aekit's VAE, HVAE and IWAE (k = 5, 50), and pythae's VAE with the same networks
and budget as the peer.

Protocol (Burda, Grosse & Salakhutdinov 2016): train on the 60,000 MNIST training images,
binarized dynamically (every batch is a fresh Bernoulli draw of the grey levels, train's
``batch_transform``); test on ``binarized-mnist`` (one seeded draw of the 10,000 official test
images); NLL = -log (1/K sum_k p(x, z_k) / q(z_k | x)) with K = 5000 draws per test image
(``aekit.evaluate``), over the full test set. Architectures: Burda et al.'s 784-200-200-50 tanh
for one stochastic layer; for two, z_1 = 100 below z_2 = 50 (aekit's HVAE is a ladder VAE, so
its inference network is top-down, unlike Burda's bottom-up one).

    python benchmarks/bench_nll.py vae --epochs 100                     # one row: train, evaluate, print
    python benchmarks/bench_nll.py iwae-k50 --epochs 100 --save runs/iwae50.pt
    benchmarks/.venv-peers/bin/python benchmarks/bench_nll.py pythae-vae --epochs 100
    python benchmarks/bench_nll.py vae --quick                          # smoke run: 2 epochs, small sets
    python benchmarks/bench_nll.py --published                          # the published table only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, load, load_average, machine, table  # noqa: E402

from aekit._registry import build_model  # noqa: E402
from aekit._utils import seeded  # noqa: E402
from aekit.evaluate import evaluate  # noqa: E402
from aekit.train import train  # noqa: E402

BURDA_1 = dict(latent_dim=50, hidden_dims=(200, 200), activation="tanh")
BURDA_2 = dict(BURDA_1, lower_latent_dims=(100,))
TRAIN = dict(batch_size=100, lr=1e-3, lr_schedule="cosine")  # every row; epochs from the command line

# row name -> (family, model settings, training settings beyond TRAIN, label)
ROWS = {
    "vae": ("vae", dict(BURDA_1, kl_warmup_epochs=5.0), {}, "aekit VAE"),
    "vae-bn": ("vae", dict(BURDA_1, batch_norm=True, kl_warmup_epochs=5.0), {}, "aekit VAE, batch norm (as the HVAE row)"),
    "vae-constant-lr": ("vae", BURDA_1, dict(lr_schedule="constant"), "aekit VAE, constant lr, no warm-up (the old recipe)"),
    "hvae": ("hvae", dict(BURDA_2, batch_norm=True, kl_warmup_epochs=5.0, free_bits=0.0), {}, "aekit HVAE (ladder)"),
    "iwae-k5": ("iwae", dict(BURDA_1, k=5, kl_warmup_epochs=5.0), {}, "aekit IWAE, k = 5"),
    "iwae-k50": ("iwae", dict(BURDA_1, k=50, kl_warmup_epochs=5.0), {}, "aekit IWAE, k = 50"),
    "pythae-vae": ("vae", BURDA_1, {}, "pythae 0.1.2 VAE, same networks and schedule"),
}

PUBLISHED = [
    ("VAE, 1 stochastic layer (784-200-200-50)", "86.76", "5000", "3,280 epochs", "Burda et al. 2016, Table 1 (VAE, k = 1)"),
    ("VAE, 2 stochastic layers (z 100, 50)", "85.33", "5000", "3,280 epochs", "Burda et al. 2016, Table 1"),
    ("IWAE k = 5, 1 layer", "85.54", "5000", "3,280 epochs", "Burda et al. 2016, Table 1"),
    ("IWAE k = 50, 1 layer", "84.78", "5000", "3,280 epochs", "Burda et al. 2016, Table 1"),
    ("IWAE k = 5, 2 layers", "83.89", "5000", "3,280 epochs", "Burda et al. 2016, Table 1"),
    ("IWAE k = 50, 2 layers", "82.90", "5000", "3,280 epochs", "Burda et al. 2016, Table 1"),
    ("VAE, pythae's reproduction (784-400-40)", "89.78", "200", "500 epochs",
     "huggingface.co/clementchadebec/reproduced_vae (reference 89.9, Rezende & Mohamed 2015)"),
    ("Ladder VAE, 5 layers", "81.7", "5000", "2,000 epochs, BN, warm-up", "Sønderby et al. 2016"),
]
COLUMNS = ["model", "test NLL (nats)", "test -ELBO", "K", "test images", "active units", "epochs",
           "train min", "NLL eval min", "NLL eval CPU min"]


def binarize_batch(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dynamic binarisation: a fresh Bernoulli(pixel) draw for every batch."""
    return torch.bernoulli(xb, generator=generator)


def train_aekit(row: str, X, epochs: int, seed: int):
    family, config, extra, _ = ROWS[row]
    with seeded(seed):
        model = build_model(family, input_shape=X.shape[1:], **config)
    t0 = time.perf_counter()
    train(model, X, epochs=epochs, **{**TRAIN, **extra}, seed=seed, progress=False, batch_transform=binarize_batch)
    return model, time.perf_counter() - t0


def train_pythae(X, epochs: int, seed: int):
    """pythae's VAE and trainer with aekit's VAE networks (same initial weights), dynamic
    binarisation in its dataset, AdamW with pythae's per-epoch cosine annealing; the weights are
    then evaluated by the same estimator as aekit's, through an aekit VAE that shares the modules."""
    from pythae.data.datasets import DatasetOutput
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    with seeded(seed):
        probe = build_model("vae", input_shape=X.shape[1:], **BURDA_1)

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

    model = VAE(VAEConfig(input_dim=tuple(X.shape[1:]), latent_dim=BURDA_1["latent_dim"], reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as null, \
            contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        logging.disable(logging.CRITICAL)
        config = BaseTrainerConfig(
            output_dir=out, num_epochs=epochs, per_device_train_batch_size=TRAIN["batch_size"],
            learning_rate=TRAIN["lr"], optimizer_cls="AdamW", optimizer_params={"weight_decay": 0.0},
            scheduler_cls="CosineAnnealingLR", scheduler_params={"T_max": epochs}, keep_best_on_train=True,
            no_cuda=True, seed=seed,
        )
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        BaseTrainer(model=model, train_dataset=Dynamic(X), training_config=config).train()
        elapsed = time.perf_counter() - t0
        logging.disable(logging.NOTSET)
    return probe, elapsed  # probe shares the trained encoder and decoder modules


def settings_text(row: str) -> str:
    family, config, extra, _ = ROWS[row]
    cfg = {k: v for k, v in config.items() if k not in BURDA_1 or row == "pythae-vae"}
    return ", ".join(f"{k}={v}" for k, v in {**cfg, **TRAIN, **extra}.items())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row", nargs="?", choices=list(ROWS), help="the model to train and evaluate")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images (default: all)")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nll-batch", type=int, default=4096, help="rows per decoder pass in the NLL")
    p.add_argument("--train-seconds", type=float, default=None, help="with --load: the training time to report")
    p.add_argument("--save", help="write the trained model's state dict here (torch.save)")
    p.add_argument("--load", help="evaluate this saved state dict instead of training (--epochs is then a label)")
    p.add_argument("--json", help="append the row as JSON to this file")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs on 2,000 images, K = 50 on 200")
    p.add_argument("--published", action="store_true", help="print the published figures and exit")
    args = p.parse_args(argv)
    if args.published or args.row is None:
        print(table([dict(zip(["model", "test NLL (nats)", "K", "budget", "source"], r)) for r in PUBLISHED],
                    ["model", "test NLL (nats)", "K", "budget", "source"]))
        return
    if args.quick:
        args.epochs, args.train_limit, args.k, args.test_limit = 2, 2000, 50, 200
    torch.set_num_threads(args.threads)
    header(f"test NLL on binarized MNIST: {args.row}")
    X = load("mnist", "train", args.train_limit)
    X_test = torch.as_tensor(load("binarized-mnist", "test", args.test_limit))

    family, config, _, label = ROWS[args.row]
    if args.load:
        with seeded(args.seed):
            model = build_model(family, input_shape=X.shape[1:], **config)
        model.load_state_dict(torch.load(args.load))
        train_s = float("nan") if args.train_seconds is None else args.train_seconds
    elif args.row == "pythae-vae":
        model, train_s = train_pythae(X, args.epochs, args.seed)
    else:
        model, train_s = train_aekit(args.row, X, args.epochs, args.seed)
    if args.save:
        torch.save(model.state_dict(), args.save)
    t0, c0 = time.perf_counter(), time.process_time()
    r = evaluate(model, X_test, nll_samples=args.k, batch_size=args.nll_batch, seed=0, progress=sys.stderr.isatty())
    eval_s, eval_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    active = f"{r['active_units']}/{r['latent_dim']}"
    if "levels" in r:
        active = " + ".join(f"{lv['active_units']}/{lv['latent_dim']}" for lv in r["levels"])
    row = {"model": label, "test NLL (nats)": round(r["nll"], 2), "test -ELBO": round(-r["elbo"], 2), "K": args.k,
           "test images": len(X_test), "active units": active, "epochs": args.epochs,
           "train min": round(train_s / 60, 1), "NLL eval min": round(eval_s / 60, 1),
           "NLL eval CPU min": round(eval_cpu_s / 60, 1)}
    print(f"\nsettings: {settings_text(args.row)}; {len(X):,} training images, seed {args.seed}, {args.threads} thread(s)")
    print(f"KL per layer (nats): {[round(lv['kl'], 2) for lv in r['levels']] if 'levels' in r else round(r['kl_total'], 2)}")
    print(table([row], COLUMNS))
    print(f"\nload average at end {load_average()}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"row": args.row, **row, "settings": settings_text(args.row), "machine": machine(),
                                "load_average_end": load_average(), "seed": args.seed}) + "\n")


if __name__ == "__main__":
    main()
