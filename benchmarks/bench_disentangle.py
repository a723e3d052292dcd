"""Disentanglement on procedural sprites (aekit.load_dataset("sprites"), dSprites-like: shape,
scale, orientation, x, y on 64x64 binary images): MIG, the FactorVAE metric and DCI of VAE,
beta-VAE and the disentangling families, with a latent traversal per factor for each model.

Models are given as ``family`` or ``family:param=value,param=value`` (estimator parameters);
families that are not registered in this aekit are skipped with a message. Two reference rows
bound the metrics on this data: the true factor values used as the code (what a perfect code
scores under these estimators) and random Gaussian codes (what nothing scores).

    python benchmarks/bench_disentangle.py [--models vae vae:beta=4 beta_tcvae factorvae] [--architecture mlp]
        [--n-train N] [--epochs E] [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _apps import figures_dir, header, setup, table

from aekit import estimator_class, model_names
from aekit.apps import traverse_factors
from aekit.datasets import load_dataset
from aekit.evaluate import disentanglement_metrics, evaluate_estimator
from aekit.report.figures import image_rows
from aekit.sprites import factor_values

DEFAULT_MODELS = ["vae", "vae:beta=4", "beta_tcvae", "factorvae"]

PUBLISHED = [  # approximate values read off the papers' figures; the metric estimators differ (see RESULTS.md)
    ("beta-TCVAE, dSprites, best beta", "MIG about 0.2-0.4",
     "Chen et al. 2018, *Isolating Sources of Disentanglement in VAEs*, NeurIPS, Sec. 6 (MIG against beta on "
     "dSprites; their estimator samples q(z|x) instead of binning the mean)"),
    ("beta-VAE, dSprites, same study", "MIG below beta-TCVAE's at every beta", "same section"),
    ("FactorVAE, dSprites", "FactorVAE metric about 0.8",
     "Kim & Mnih 2018, *Disentangling by Factorising*, ICML, Sec. 4 (dSprites, 300k iterations, best settings)"),
    ("beta-VAE (beta 4), dSprites, same study", "FactorVAE metric about 0.7", "same section"),
    ("many models x 50 seeds, dSprites", "MIG about 0.05-0.4; FactorVAE metric about 0.5-0.85",
     "Locatello et al. 2019, *Challenging Common Assumptions in the Unsupervised Learning of Disentangled "
     "Representations*, ICML (disentanglement_lib; its estimators are the ones used here)"),
]


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"family:key=value,key=value"`` -> (family, params); values read as int, float or text."""
    family, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        for cast in (int, float):
            try:
                params[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            params[key] = value
    return family, params


def factor_code(factors: np.ndarray) -> np.ndarray:
    """The true factor values as a code, each standardised: what a perfect code scores."""
    values = factor_values()
    code = np.column_stack([values[name][factors[:, k]] for k, name in enumerate(values)]).astype(float)
    return (code - code.mean(0)) / code.std(0)


def main() -> None:
    p = setup(__doc__)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="family or family:param=value,...")
    p.add_argument("--n-train", type=int, default=20_000, help="training images (the first of the sprites train split)")
    p.add_argument("--n-eval", type=int, default=10_000, help="evaluation images (the first of the test split)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent-dim", type=int, default=10)
    p.add_argument("--architecture", default="conv", choices=("conv", "mlp"))
    p.add_argument("--hidden-dims", default=None,
                   help="conv channels of the stride-2 stages (default 32,32,64,64) or MLP layer sizes (default 1200,1200)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--verbose", action="store_true", help="training progress lines on stderr")
    p.add_argument("--save-dir", default="/tmp/aekit-bench-disentangle", help="where the fitted models are saved")
    args = p.parse_args()
    if args.quick:
        args.n_train, args.n_eval, args.epochs = 2000, 2000, 1
    header("Disentanglement on procedural sprites (bench_disentangle.py)")

    train, test = load_dataset("sprites", "train"), load_dataset("sprites", "test")
    X, X_eval = train.X[: args.n_train], test.X[: args.n_eval]
    factors, names = test.factors[: args.n_eval], list(test.factor_names)
    del train
    conv = args.architecture == "conv"
    hidden = tuple(int(c) for c in (args.hidden_dims or ("32,32,64,64" if conv else "1200,1200")).split(","))
    common = {"latent_dim": args.latent_dim, "architecture": args.architecture, "hidden_dims": hidden,
              "epochs": args.epochs, "batch_size": args.batch_size, "lr": 1e-3, "validation_fraction": 0.0,
              "random_state": 0, "device": "cpu", "threads": 1, "verbose": args.verbose}
    net = (f"conv encoder with 3x3 stride-2 stages of {hidden} channels (64 -> {64 // 2 ** len(hidden)} pixels) and a "
           f"linear head to {args.latent_dim} latent dimensions" if conv else
           f"MLP encoder 4096-{'-'.join(map(str, hidden))}-{args.latent_dim} (ReLU)")
    print(f"Data: the first {len(X):,} images of the sprites training split (a seeded uniform draw from the "
          f"737,280-image grid), evaluated on the first {len(X_eval):,} of its test split (disjoint). Models: {net}, "
          f"the decoder its mirror, Bernoulli likelihood; {args.epochs} epochs, batch {args.batch_size} "
          f"({args.epochs * len(X) // args.batch_size:,} steps), AdamW lr 1e-3, seed 0, 1 thread. "
          f"Codes: the posterior mean. Metrics (aekit.evaluate): MIG with "
          "20 histogram bins; FactorVAE metric with L = 64, 10,000 training and 5,000 evaluation votes, batches drawn "
          "from the evaluation images that share the fixed factor's value; DCI from random forests (held-out R^2 as "
          "informativeness).\n")

    rows, figures = [], []
    rng = np.random.default_rng(0)
    for label, code in (("true factors as the code (ceiling)", factor_code(factors)),
                        ("random Gaussian code, 10 dims (floor)", rng.normal(size=(len(factors), 10)))):
        rows.append({"model": label, **_scores(disentanglement_metrics(code, factors, names))})
    save_dir = Path(args.save_dir)
    for spec in args.models:
        family, params = parse_spec(spec)
        if family not in model_names():
            print(f"- skipped {spec}: no family {family!r} in this aekit (registered: {', '.join(model_names())})")
            continue
        try:
            est = estimator_class(family)(**{**common, **params})
        except (TypeError, ValueError) as e:
            print(f"- skipped {spec}: {e}")
            continue
        t0 = time.perf_counter()
        est.fit(X)
        minutes = (time.perf_counter() - t0) / 60
        est.save(save_dir / f"{args.architecture}_{_slug(spec)}.safetensors")
        m = evaluate_estimator(est, X_eval, factors=factors, factor_names=names)
        row = {"model": spec, **_scores(m), "recon BCE (nats)": m.get("recon_bce"), "KL (nats)": m.get("kl_total"),
               "active units": f"{m['active_units']}/{m['latent_dim']}" if "active_units" in m else "",
               "train min": minutes}
        rows.append(row)
        print(f"- {spec}: {minutes:.1f} min; factor -> dimension {m['factor_latents']}", flush=True)
        trav = traverse_factors(est, X_eval, factors, names, steps=10, normalised_mi=np.asarray(m["normalised_mi"]))
        figures.append((spec, trav))

    print()
    print(table(rows, ["model", "MIG", "FactorVAE metric", "DCI D", "DCI C", "DCI I", "MIG per factor",
                       "recon BCE (nats)", "KL (nats)", "active units", "train min"]))
    print("Published on dSprites (the original 737,280 images, trained far longer), for orientation:\n")
    print(table([{"model": a, "reported": b, "source": c} for a, b, c in PUBLISHED], ["model", "reported", "source"]))
    out = figures_dir(args.quick)
    factor_figure(out / "sprites_factors.png")
    print("Figure: `benchmarks/figures/sprites_factors.png` (the data: each factor swept from one base sprite)  ")
    for spec, trav in figures:
        name = f"disentangle_traversals_{args.architecture}_{_slug(spec)}.png"
        labels = [f"{r.factor}: z[{r.dim}] ({r.normalised_mi:.2f})" for r in trav]
        (out / name).write_bytes(image_rows([r.images for r in trav], labels, (1, 64, 64)))
        print(f"Figure: `benchmarks/figures/{name}` (rows: each factor's most informative dimension, swept over "
              "its 2nd-98th percentile in the code of the first test image)  ")


def factor_figure(path: Path) -> None:
    """The generator's factors, one per row, each swept over (up to 10 of) its values from one base
    sprite (a heart, scale index 3, orientation 0, in the middle)."""
    from aekit.sprites import FACTOR_NAMES, FACTOR_SIZES, render

    base = np.array([2, 3, 0, 16, 16])
    rows = []
    for k, size in enumerate(FACTOR_SIZES):
        f = np.repeat(base[None], min(size, 10), axis=0)
        f[:, k] = np.linspace(0, size - 1, len(f)).round().astype(int)
        rows.append(render(f))
    path.write_bytes(image_rows(rows, [f"{n} ({s} values)" for n, s in zip(FACTOR_NAMES, FACTOR_SIZES)], (1, 64, 64)))


def _slug(spec: str) -> str:
    return spec.replace(":", "_").replace(",", "_").replace("=", "")


def _scores(m: dict) -> dict:
    return {"MIG": m["mig"], "FactorVAE metric": m["factorvae_score"], "DCI D": m["dci_disentanglement"],
            "DCI C": m["dci_completeness"], "DCI I": m["dci_informativeness"],
            "MIG per factor": " ".join(f"{k[:5]} {v:.2f}" for k, v in m["mig_per_factor"].items())}


if __name__ == "__main__":
    main()
