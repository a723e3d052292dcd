"""The families that shape the code distribution (beta_tcvae, factorvae, infovae, vampprior, wae,
rae, aae) against the plain VAE, on MNIST, at a stated small CPU budget. Two measurements:

``--part nll``: test NLL of the variational families on binarized MNIST, bench_nll.py's protocol.
  Training: the 60,000 grey-level training images, binarized afresh every batch (dynamic
  binarisation), Burda et al.'s 784-200-200-50 tanh networks, batch 128, AdamW lr 1e-3, seed 0,
  ``--epochs`` epochs. Each family keeps its defaults (beta_tcvae beta 6, factorvae gamma 10,
  infovae MMD weight 10) except the VampPrior's K = 500 pseudo-inputs, the paper's MNIST setting.
  NLL: importance-weighted, K = ``--k`` samples (Burda et al. 2016, via ``aekit.evaluate``), on the
  first ``--test-limit`` images of ``binarized-mnist`` test (one seeded Bernoulli draw).
``--part samples``: sample quality of every generative family, bench_generate.py's protocol.
  10,000 random MNIST training images, MLP 784-256-128-16, 20 epochs, batch 128, seed 0, each
  estimator's defaults otherwise (VAEs: Bernoulli decoder; deterministic families: MSE); 1,000
  samples each, judged by bench_generate's classifier score (a logistic regression trained on the
  same training images; Inception-score formula, 10 at best). Writes ``families_samples.png``.

    python benchmarks/bench_families.py --part nll --epochs 10 --k 1000 --test-limit 2000
    python benchmarks/bench_families.py --part samples
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _apps import figures_dir, header, load, table  # noqa: E402
from bench_generate import classifier_score  # noqa: E402

import aekit  # noqa: E402
from aekit._registry import build_model  # noqa: E402
from aekit._utils import seeded  # noqa: E402
from aekit.evaluate import evaluate  # noqa: E402
from aekit.train import train  # noqa: E402

BURDA = {"latent_dim": 50, "hidden_dims": (200, 200), "activation": "tanh"}
NLL_FAMILIES = {  # family -> settings beyond Burda's networks
    "vae": {},
    "vampprior": {"n_pseudo_inputs": 500},
    "beta_tcvae": {},
    "factorvae": {},
    "infovae": {},
}
SAMPLE_FAMILIES = {  # estimator -> row label
    "VAE": "vae",
    "VampPriorVAE": "vampprior",
    "BetaTCVAE": "beta_tcvae (beta 6)",
    "FactorVAE": "factorvae (gamma 10)",
    "InfoVAE": "infovae (MMD weight 10, rbf)",
    "WassersteinAutoEncoder": "wae (MMD weight 10, imq; MSE)",
    "RegularizedAutoEncoder": "rae (10-component GMM on codes; MSE)",
    "AdversarialAutoEncoder": "aae (adversarial weight 0.1; MSE)",
}


def binarize(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dynamic binarisation: a fresh Bernoulli(pixel) draw for every batch."""
    return torch.bernoulli(xb, generator=generator)


def part_nll(args) -> None:
    X = load("mnist", "train", flat=False)[0][: args.train_limit]
    X_test = load("binarized-mnist", "test", flat=False)[0][: args.test_limit]
    rows = []
    NLL_FAMILIES["vampprior"].update(n_pseudo_inputs=args.vampprior_k, kl_warmup_epochs=args.vampprior_warmup)
    for name in args.families or NLL_FAMILIES:
        with seeded(0):
            model = build_model(name, input_shape=X.shape[1:], **{**BURDA, "activation": args.activation}, **NLL_FAMILIES[name])
        t0 = time.perf_counter()
        train(model, X, epochs=args.epochs, batch_size=128, lr=1e-3, seed=0, progress=False, batch_transform=binarize,
              threads=1)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = evaluate(model, X_test, nll_samples=args.k, batch_size=8192, seed=0)
        eval_s = time.perf_counter() - t0
        label = name + (f" (K = {args.vampprior_k} pseudo-inputs, KL warm-up {args.vampprior_warmup:g} epochs)"
                        if name == "vampprior" else "")
        rows.append({"family": label, "test NLL (nats)": r["nll"], "test -ELBO": -r["elbo"],
                     "active units": f"{r['active_units']}/{r['latent_dim']}", "train min": train_s / 60,
                     "NLL eval min": eval_s / 60})
        print(f"  {label}: NLL {r['nll']:.2f}, -ELBO {-r['elbo']:.2f} (train {train_s:.0f} s, eval {eval_s:.0f} s)",
              file=sys.stderr, flush=True)
    print(f"#### binarized MNIST: {args.epochs} epochs on {len(X):,} training images (dynamic binarisation), "
          f"784-200-200-50 {args.activation}, batch 128, AdamW lr 1e-3, seed 0; NLL with K = {args.k} on the first "
          f"{len(X_test):,} test images\n")
    print(table(rows, ["family", "test NLL (nats)", "test -ELBO", "active units", "train min", "NLL eval min"], digits=2))


def part_samples(args) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from aekit.apps import image_grid

    n_train, epochs, n_samples = (2000, 2, 200) if args.quick else (10_000, 20, 1000)
    X, y = load("mnist", "train", n_train)
    X_test, _ = load("mnist", "test", 2000)
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    rows = [{"source": f"real test images ({len(X_test)})", "classifier score": classifier_score(clf.predict_proba(X_test))}]
    pca = PCA(16, random_state=0).fit(X)
    Z = pca.transform(X)
    ppca = np.clip(pca.inverse_transform(np.random.default_rng(0).standard_normal((n_samples, 16)) * Z.std(0)), 0, 1)
    rows.append({"source": "PPCA (Gaussian over 16 PCA codes)", "classifier score": classifier_score(clf.predict_proba(ppca))})
    grids = []
    for est_name in args.estimators or SAMPLE_FAMILIES:
        est = getattr(aekit, est_name)(latent_dim=16, hidden_dims=(256, 128), epochs=epochs, batch_size=128,
                                      validation_fraction=0.0, random_state=0, device="cpu", threads=1)
        t0 = time.perf_counter()
        est.fit(X)
        fit_s = time.perf_counter() - t0
        S = est.sample(n_samples, random_state=0)
        R = est.reconstruct(X_test[:1000])
        rows.append({"source": f"{SAMPLE_FAMILIES[est_name]} (`{est_name}`)",
                     "classifier score": classifier_score(clf.predict_proba(S.reshape(len(S), -1))),
                     "test recon MSE": float(((R - X_test[:1000]) ** 2).mean()), "fit s": fit_s})
        grids.append(S[:10])
        print(f"  {est_name}: {rows[-1]['classifier score']:.3f} ({fit_s:.0f} s)", file=sys.stderr, flush=True)
    print(f"#### MNIST: {n_train:,} training images, MLP 784-256-128-16, {epochs} epochs, batch 128, seed 0, "
          f"family defaults; {n_samples:,} samples per source; classifier: logistic regression on the same "
          "training images\n")
    print(table(rows, ["source", "classifier score", "test recon MSE", "fit s"]))
    if not args.estimators:
        path = figures_dir(args.quick) / "families_samples.png"
        image_grid(np.concatenate(grids), path, ncols=10, image_shape=(28, 28), scale=2)
        print(f"Figure: `benchmarks/figures/{path.name}` (one row per family, in the table's order)")


def main(argv=None) -> None:
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["nll", "samples"], required=True)
    p.add_argument("--epochs", type=int, default=10, help="training epochs for --part nll")
    p.add_argument("--k", type=int, default=1000, help="importance samples per test image (--part nll)")
    p.add_argument("--test-limit", type=int, default=2000, help="first N binarized-MNIST test images (--part nll)")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images only (smoke runs, --part nll)")
    p.add_argument("--families", nargs="+", choices=list(NLL_FAMILIES), help="a subset (--part nll)")
    p.add_argument("--vampprior-k", type=int, default=500,
                   help="the VampPrior's pseudo-inputs for --part nll (500: the paper's MNIST setting; the family's default is 100)")
    p.add_argument("--activation", default="tanh", help="hidden activation of Burda's networks (--part nll)")
    p.add_argument("--vampprior-warmup", type=float, default=0.0,
                   help="the VampPrior's KL warm-up epochs for --part nll (the paper: 100 epochs of a linear ramp)")
    p.add_argument("--estimators", nargs="+", choices=list(SAMPLE_FAMILIES), help="a subset (--part samples)")
    p.add_argument("--quick", action="store_true", help="a smoke run (--part samples)")
    args = p.parse_args(argv)
    title = {"nll": "Test NLL of the variational families (bench_families.py --part nll)",
             "samples": "Sample quality of the generative families (bench_families.py --part samples)"}[args.part]
    header(title, argv)
    (part_nll if args.part == "nll" else part_samples)(args)


if __name__ == "__main__":
    main()
