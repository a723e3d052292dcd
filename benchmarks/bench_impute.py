"""Missing-value imputation: RMSE on the missing entries of aekit.apps.AutoencoderImputer against
scikit-learn's SimpleImputer (mean), KNNImputer and IterativeImputer, on MNIST (subsampled;
pixels missing at random at 25% and 50%, and a 12x12 square patch) and on three bundled tabular
datasets (diabetes, breast cancer, wine; 25% missing at random; standardised units).

aekit rows: the default imputer (a MaskedAutoEncoder trained on the incomplete data, defaults
but for the number of epochs), and for reference the previous default (an AE trained on the
mean-filled data, 10 reconstruct-and-replace rounds) and a VAE with Metropolis-within-Gibbs
sampling. Every imputer is fitted on training data with the same kind of missingness and
measured on held-out rows.

    python benchmarks/bench_impute.py [--quick]
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _apps import header, load, setup, table
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.preprocessing import StandardScaler

from aekit.apps import AutoencoderImputer


def mcar(X, rate, seed):
    Xm = X.copy()
    Xm[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return Xm


def square_patch(X, size, seed, side=28):
    """One size x size square per image, its corner drawn uniformly in [4, side - size - 4]."""
    Xm = X.copy().reshape(len(X), side, side)
    rng = np.random.default_rng(seed)
    for img in Xm:
        r, c = rng.integers(4, side - size - 4 + 1, 2)
        img[r : r + size, c : c + size] = np.nan
    return Xm.reshape(len(X), -1)


def run(methods, X_train_m, X_test, X_test_m):
    """RMSE on the test set's missing entries, and fit + transform seconds, per method."""
    miss = np.isnan(X_test_m)
    out = {}
    for name, make in methods.items():
        t0 = time.perf_counter()
        filled = make().fit(X_train_m).transform(X_test_m)
        out[name] = (float(np.sqrt(((filled - X_test)[miss] ** 2).mean())), time.perf_counter() - t0)
    return out


def make_methods(epochs, net, iterative):
    """The imputers compared: ``epochs`` for aekit's default imputer (else its defaults), ``net``
    (architecture and training settings) for the reference AE and VAE rows."""
    return {
        "mean (SimpleImputer)": lambda: SimpleImputer(keep_empty_features=True),
        "KNNImputer (k=5)": lambda: KNNImputer(n_neighbors=5, keep_empty_features=True),
        iterative[0]: iterative[1],
        f"aekit AutoencoderImputer (default: masked AE, {epochs} epochs)": lambda: AutoencoderImputer(
            epochs=epochs, random_state=0, device="cpu"),
        "aekit AE on mean-filled data, 10 rounds (previous default)": lambda: AutoencoderImputer("ae", n_iter=10, **net),
        "aekit VAE, Metropolis-within-Gibbs, 10 steps": lambda: AutoencoderImputer("vae", strategy="sample", n_iter=10, **net),
    }


def main() -> None:
    args = setup(__doc__).parse_args()
    warnings.filterwarnings("ignore", message=r"\[IterativeImputer\] Early stopping")
    header("Imputation: RMSE on missing entries (bench_impute.py)")
    quick = args.quick
    n_train, n_test, epochs, ref_epochs = (1500, 300, 10, 3) if quick else (5000, 1000, 100, 15)
    X_train, _ = load("mnist", "train", n_train)
    X_test, _ = load("mnist", "test", n_test)
    net = {"latent_dim": 32, "hidden_dims": (256, 128), "epochs": ref_epochs, "batch_size": 128, "validation_fraction": 0.0,
           "random_state": 0, "device": "cpu"}
    methods = make_methods(epochs, net, ("IterativeImputer (BayesianRidge, 20 nearest features, 3 rounds)", lambda: IterativeImputer(
        max_iter=3, n_nearest_features=20, random_state=0, keep_empty_features=True)))
    patterns = {
        "MCAR 25%": lambda X, s: mcar(X, 0.25, s),
        "MCAR 50%": lambda X, s: mcar(X, 0.50, s),
        "12x12 square": lambda X, s: square_patch(X, 12, s),
    }
    print(f"### MNIST: fit on {n_train} training images with missing pixels, RMSE (pixel units, [0, 1]) on the "
          f"missing pixels of {n_test} test images; aekit default imputer: MaskedAutoEncoder with its defaults "
          f"(MLP 1568-256-128-64, batch 64, 10% of rows held out for validation), {epochs} epochs; reference AE/VAE: "
          f"MLP 784-256-128-32, {ref_epochs} epochs\n")
    results = {p: run(methods, make(X_train, 0), X_test, make(X_test, 1)) for p, make in patterns.items()}
    names = list(next(iter(results.values())))
    rows = [{"imputer": n, **{f"{p} RMSE": results[p][n][0] for p in patterns},
             "seconds (fit+transform, MCAR 25%)": f"{results['MCAR 25%'][n][1]:.1f}"} for n in names]
    print(table(rows, ["imputer"] + [f"{p} RMSE" for p in patterns] + ["seconds (fit+transform, MCAR 25%)"], 4))

    n_splits = 2 if quick else 5
    tab_epochs = 30 if quick else 300
    for label, loader in (("diabetes (442 x 10)", load_diabetes), ("breast cancer (569 x 30)", load_breast_cancer),
                          ("wine (178 x 13)", load_wine)):
        X = loader().data.astype(np.float32)
        d = X.shape[1]
        tab_net = {"latent_dim": max(2, d // 4), "hidden_dims": (64,), "epochs": tab_epochs, "batch_size": 32,
                   "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}
        tab_methods = make_methods(tab_epochs, tab_net, ("IterativeImputer (BayesianRidge, defaults)",
                                                         lambda: IterativeImputer(random_state=0, keep_empty_features=True)))
        per = {}
        for seed in range(n_splits):
            perm = np.random.default_rng(seed).permutation(len(X))
            cut = int(0.7 * len(X))
            tr_m = mcar(X[perm[:cut]], 0.25, 100 + seed)
            scaler = StandardScaler().fit(tr_m)  # NaN-aware: statistics of the observed entries
            te = scaler.transform(X[perm[cut:]]).astype(np.float32)
            te_m = mcar(te, 0.25, 200 + seed)
            for n, (rmse, secs) in run(tab_methods, scaler.transform(tr_m).astype(np.float32), te, te_m).items():
                per.setdefault(n, []).append((rmse, secs))
        print(f"### {label}: 25% missing at random, 70/30 split, standardised (observed training entries); "
              f"RMSE in standard deviations over {n_splits} splits; aekit default imputer: MaskedAutoEncoder with its "
              f"defaults (MLP {2 * d}-256-128-64), {tab_epochs} epochs; reference AE/VAE: MLP {d}-64-{max(2, d // 4)}, "
              f"{tab_epochs} epochs\n")
        rows = [{"imputer": n, "RMSE mean": float(np.mean([r for r, _ in v])), "RMSE std": float(np.std([r for r, _ in v])),
                 "seconds per split": f"{np.mean([s for _, s in v]):.1f}"} for n, v in per.items()]
        print(table(rows, ["imputer", "RMSE mean", "RMSE std", "seconds per split"], 4))


if __name__ == "__main__":
    main()
